"""What every throughput scenario needs: a fake server process, run configs, a timed engine process.

The benchmarks measure the engine as a user runs it — `python -m engine run -c FILE` in its own
process — against `fake_server.py` in another process, so neither shares an event loop or a GIL with
the harness. Wall time is taken around the engine subprocess and its peak RSS comes from `wait4`
(the kernel's own figure, KiB on Linux), so start-up, imports and shutdown all count.
"""

from __future__ import annotations

import json
import os
import platform
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BENCHMARKS",
    "EngineRun",
    "FakeServerProcess",
    "Process",
    "engine_revision",
    "machine_info",
    "run_engine",
    "run_timed",
    "write_config",
]

BENCHMARKS = Path(__file__).resolve().parent
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_ELAPSED = re.compile(r"(\d+) jobs in ([0-9.]+)s")


class FakeServerProcess:
    """`fake_server.py --port 0` in its own process; admin calls over plain HTTP."""

    def __init__(self, **options: Any) -> None:
        command = [sys.executable, "-m", "fake", "--port", "0", *_flags(options)]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=BENCHMARKS)
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], 15.0)
        line = self._process.stdout.readline().decode() if ready else ""
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"fake server did not start (said {line!r})")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.base_url = self.url + "/v1"

    def _call(self, method: str, path: str, payload: object = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with _OPENER.open(request, timeout=60) as response:
            return json.loads(response.read())

    def stats(self, *, arrivals: str = "0") -> dict[str, Any]:
        """`/stats`; arrivals "0" (left out), "1" (4 fields each) or "full" (latency, digest)."""
        result: dict[str, Any] = self._call("GET", f"/stats?arrivals={arrivals}")
        return result

    def configure(self, **options: Any) -> None:
        self._call("POST", "/admin/config", options)

    def reset(self) -> None:
        self._call("POST", "/admin/reset", {})

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> FakeServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _flags(options: Mapping[str, object]) -> list[str]:
    """`latency_median=0.2` -> `--latency-median=0.2`; booleans as `--x` / `--no-x`."""
    flags = []
    for name, value in options.items():
        flag = name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            flags.append(f"--{flag}={value}")
    return flags


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def write_config(
    path: Path,
    *,
    store: Path,
    data: Path,
    models: Iterable[Mapping[str, object]],
    judge: Mapping[str, object] | None = None,
    questions: Iterable[int] | None = None,
) -> Path:
    """A run config (README "Configuration"): top-level keys, `[[model]]` tables, `[judge]`."""
    lines = [f"store = {_toml(store)}", f"data = {_toml(data)}"]
    if questions is not None:
        lines.append(f"questions = {_toml(list(questions))}")
    tables = [("[[model]]", model) for model in models]
    if judge is not None:
        tables.append(("[judge]", judge))
    for header, table in tables:
        lines += ["", header, *(f"{key} = {_toml(value)}" for key, value in table.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class Process:
    """A finished subprocess: exit code, wall and CPU seconds, peak RSS, what it printed."""

    returncode: int
    wall: float
    cpu: float  # user + system seconds, from wait4 like the peak RSS
    peak_rss_kib: int
    stdout: str
    stderr: str

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss_kib * 1024 / 1e6


def run_timed(argv: list[str], workdir: Path, name: str) -> Process:
    """Run `argv` in `workdir` with output to files there (a pipe could stall it), timed."""
    out_path, err_path = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, cwd=workdir)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Process(
        returncode=process.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_kib=usage.ru_maxrss,
        stdout=out_path.read_text(),
        stderr=err_path.read_text(),
    )


@dataclass(frozen=True)
class EngineRun(Process):
    """One engine process, and what the run recorded in its store."""

    command: str
    counts: dict[str, Any]  # the store's `runs.counts` of this run: sent, cached, failed, elapsed

    @property
    def elapsed(self) -> float:
        """The engine's own run time (from `runs.counts`, else its `N jobs in X.Xs` line)."""
        if "elapsed" in self.counts:
            return float(self.counts["elapsed"])
        match = _ELAPSED.search(self.stdout)
        return float(match[2]) if match else float("nan")

    @property
    def failed(self) -> int:
        return int(self.counts.get("failed", -1))

    def describe_failure(self) -> str:
        tail = (self.stderr or self.stdout).strip().splitlines()[-5:]
        return f"`mtbench {self.command}` exited {self.returncode}: " + " | ".join(tail)


def run_engine(
    command: str, config: Path, store: Path, *, step: str, profile: Path | None = None
) -> EngineRun:
    """Run `python -m engine COMMAND -c CONFIG` (under cProfile if `profile`), timed.

    Its output goes to `<step>.stdout` and `<step>.stderr` beside the config.
    """
    argv = [sys.executable]
    if profile is not None:
        profile.parent.mkdir(parents=True, exist_ok=True)
        argv += ["-m", "cProfile", "-o", str(profile)]
    argv += ["-m", "engine", command, "-c", str(config)]
    process = run_timed(argv, config.parent, step)
    return EngineRun(**vars(process), command=command, counts=_last_run_counts(store))


def _last_run_counts(store: Path) -> dict[str, Any]:
    if not store.exists():
        return {}
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        row = db.execute("SELECT counts FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    return json.loads(row[0]) if row and row[0] else {}


def _git(*args: str) -> str:
    # No optional locks: never touch the index of a checkout someone may be committing in.
    command = ["git", "--no-optional-locks", "-C", str(BENCHMARKS.parent), *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def engine_revision() -> str:
    """The commit the engine was measured at, and whether `engine/` had uncommitted changes."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--", "engine")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} + uncommitted changes in engine/" if dirty else commit


def machine_info() -> dict[str, str]:
    """CPU model, cores, RAM, Python and OS: what a reader needs to compare two result sections."""
    cpu = platform.processor() or "unknown"
    memory = "unknown"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        cpu = next(
            line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line
        )
        meminfo = Path("/proc/meminfo").read_text().split()
        memory = f"{int(meminfo[meminfo.index('MemTotal:') + 1]) / 1024**2:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": f"{os.cpu_count()} ({usable} usable)",
        "ram": memory,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
    }
