"""Live progress: a rich table on a terminal, log lines in a pipe, JSON lines for machines."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config


def priced_run_config(tmp_path: Path, fake: FakeServer) -> Path:
    fake.configure(latency_median=0.01, fault_500=0.05, seed=2)
    prices = {"price_in": 3.0, "price_out": 15.0, "concurrency": 4}
    models = [model(name, fake.base_url, **prices) for name in ("alpha", "beta")]
    judge = {"name": "judge-a", "base_url": fake.base_url, **prices}
    return write_config(tmp_path, models=models, judge=judge)


def test_a_pipe_gets_a_progress_line_per_phase_every_interval(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = priced_run_config(tmp_path, fake)
    code, _, err = mtbench(capsys, "run", "-c", str(config), "--progress-interval", "0.2")
    assert code == 0
    generation = [line for line in err.splitlines() if line.startswith("progress generation:")]
    judging = [line for line in err.splitlines() if line.startswith("progress judging:")]
    assert len(generation) >= 3 and len(judging) >= 3  # updates while running, then a final one
    assert generation[-1].startswith("progress generation: 320/320 done (0 cached, 0 failed)")
    assert judging[-1].startswith("progress judging: 320/320 done")
    for part in ("req/s", "tok/s", "retries", "429s", "ETA", "cost $"):
        assert part in generation[-1]
    retries = int(generation[-1].split(" retries")[0].rsplit(" ", 1)[1])
    assert retries > 0  # the injected 500s were retried, and it shows


def test_json_progress_lines_and_a_json_summary(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = priced_run_config(tmp_path, fake)
    argv = ["run", "-c", str(config), "--json", "--progress-interval", "0.2"]
    code, out, err = mtbench(capsys, *argv)
    assert code == 0
    ticks = [orjson.loads(line)["progress"] for line in err.splitlines() if line.startswith("{")]
    assert len(ticks) >= 2
    final = {snapshot["name"]: snapshot for snapshot in ticks[-1]}
    assert set(final) == {"generation", "judging", "alpha", "beta", "judge-a"}
    roles = [(s["role"], s["name"]) for s in ticks[-1]]
    assert roles == [
        ("phase", "generation"),
        ("model", "alpha"),
        ("model", "beta"),
        ("phase", "judging"),
        ("judge", "judge-a"),
    ]
    assert all(s["finished"] == s["jobs"] for s in final.values())
    assert final["generation"]["cost"] == pytest.approx(
        final["alpha"]["cost"] + final["beta"]["cost"]
    )
    summary = orjson.loads(out)
    assert summary["total"]["sent"] == 640
    assert summary["total"]["cost"] == pytest.approx(
        final["generation"]["cost"] + final["judging"]["cost"]
    )


def test_quiet_shows_no_progress(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = priced_run_config(tmp_path, fake)
    code, _, err = mtbench(capsys, "run", "-c", str(config), "--quiet")
    assert code == 0
    assert "progress" not in err


def test_a_terminal_gets_a_live_table_redrawn_in_place(tmp_path: Path, fake: FakeServer) -> None:
    config = priced_run_config(tmp_path, fake)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "-c", str(config), "--progress-interval", "0.1"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "160", "TERM": "xterm-256color"},
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(controller)
    assert process.returncode == 0
    text = output.decode("utf-8", "replace")
    for part in ("generation", "judging", "alpha", "judge-a", "320/320", "req/s", "ETA"):
        assert part in text
    assert "\x1b[" in text  # cursor control: the table is redrawn, not appended
    assert "━" in text  # the bars
