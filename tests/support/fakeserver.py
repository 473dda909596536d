"""Start the fake server (`python -m benchmarks.fake`) for a test, and talk to its admin endpoints.

Tests run the fake server in its own process, as the benchmarks do, so the engine under test owns
its event loop and the sockets are real. The admin calls use plain `urllib` (never through a proxy)
so they work the same from sync tests and from inside an `asyncio.run`.

    with FakeServer(rpm=60, latency_median=0.05) as server:
        ...  # point the engine at server.base_url
        server.configure(fault_500=0.1)
        assert server.stats()["ok"] == 10

    @pytest.fixture
    def fake_server():
        yield from serve_fake(latency_median=0.05)
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["REPOSITORY", "FakeServer", "option_flags", "serve_fake"]

REPOSITORY = Path(__file__).resolve().parents[2]  # where `benchmarks.fake` is importable from
_STARTUP_SECONDS = 10.0
_STOP_SECONDS = 5.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def option_flags(options: dict[str, Any]) -> list[str]:
    """CLI flags for option names and values: `latency_median=0.2` -> `--latency-median=0.2`."""
    flags = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, (list, tuple)):
            flags.append(f"{flag}={','.join(value)}")
        elif value is not None:
            flags.append(f"{flag}={value}")
    return flags


class FakeServer:
    """A running fake server; `start()` (or `with`) launches it, `stop()` ends it."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server process's id (to measure its CPU time), or None when not running."""
        return None if self._process is None else self._process.pid

    @property
    def url(self) -> str:
        """Root URL, for `/stats`, `/health` and the admin endpoints."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (what a client appends `/chat/completions` to)."""
        return f"{self.url}/v1"

    def start(self) -> FakeServer:
        """Launch the server and wait until it announces its port."""
        command = [sys.executable, "-m", "benchmarks.fake", "--port", "0"]
        process = subprocess.Popen(
            command + option_flags(self.options), stdout=subprocess.PIPE, cwd=REPOSITORY
        )
        self._process = process
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], _STARTUP_SECONDS)
        line = process.stdout.readline().decode() if ready else ""
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"fake server did not start (said {line!r})")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within a few seconds."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, method: str, path: str, payload: object = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with _OPENER.open(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read().decode()}") from None

    def stats(self, *, arrivals: bool = True, full: bool = False) -> dict[str, Any]:
        """The server's `/stats` object (see benchmarks/fake/stats.py for the schema); `full`
        adds each arrival's latency and body digest."""
        query = "?arrivals=full" if full else "" if arrivals else "?arrivals=0"
        result: dict[str, Any] = self._call("GET", "/stats" + query)
        return result

    def current_options(self) -> dict[str, Any]:
        """Every option's current value."""
        result: dict[str, Any] = self._call("GET", "/admin/config")
        return result

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change options while running; returns every option's new value."""
        result: dict[str, Any] = self._call("POST", "/admin/config", options)
        return result

    def reset(self) -> None:
        """Zero the stats, the rate-limit windows and the memory of answered requests; unload
        any script."""
        self._call("POST", "/admin/reset", {})

    def script(self, replies: list[dict[str, Any]]) -> dict[str, int]:
        """Answer every chat request with the next of `replies` (see tests/support/scripted.py),
        cycling; an empty list goes back to normal answers. Returns {"replies": n, "served": 0}."""
        result: dict[str, int] = self._call("POST", "/admin/script", {"replies": replies})
        return result

    def scripted_requests(self) -> int:
        """How many requests the loaded script has answered."""
        served: int = self._call("GET", "/admin/script")["served"]
        return served

    def scripted_replies_served(self) -> list[int]:
        """How many requests each reply of the loaded script has answered, in its order."""
        served: list[int] = self._call("GET", "/admin/script")["served_by"]
        return served


def serve_fake(**options: Any) -> Iterator[FakeServer]:
    """A fixture body: `yield from serve_fake(rpm=60)` runs a server for the fixture's scope."""
    with FakeServer(**options) as server:
        yield server
