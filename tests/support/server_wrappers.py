"""Shell scripts that run a server the way real ones are built: a leader that forks a worker.

vLLM's API server forks engine processes; on SIGTERM it stops them. `server_wrapper` writes such a
server as a script around any command: it starts a `sleep` worker, runs the command, and writes
their pids to files, so a test can check each process after the engine that started them is
killed. With `passes_sigterm_on=False` the script `exec`s the command instead: the worker is then
a grandchild that nothing signals when the leader dies, as with a server that dies on SIGTERM
without stopping its workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from tests.support.llamacpp import process_running

__all__ = ["ServerPids", "kill_quietly", "server_wrapper", "wait_gone"]


class ServerPids:
    """The pids a wrapper wrote: its worker's, and (when it forks the server) the server's."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def worker(self) -> int | None:
        return self._read("worker.pid")

    def server(self) -> int | None:
        return self._read("server.pid")

    def sigterms(self) -> int:
        """How many SIGTERMs the wrapper received."""
        path = self.directory / "sigterm"
        return len(path.read_text().split()) if path.exists() else 0

    def _read(self, name: str) -> int | None:
        text = (self.directory / name).read_text() if (self.directory / name).exists() else ""
        return int(text) if text.strip() else None


def server_wrapper(directory: Path, server: str, *, passes_sigterm_on: bool) -> Path:
    """Write the script into `directory`; `server` is a shell command line (it may use "$@")."""
    directory.mkdir(parents=True, exist_ok=True)
    out = f'"{directory}"'
    if passes_sigterm_on:
        stop = f"echo TERM >> {out}/sigterm; kill $worker $server; wait $server; exit 0"
        body = f"""trap '{stop}' TERM
sleep 300 &
worker=$!
echo $worker > {out}/worker.pid.tmp && mv {out}/worker.pid.tmp {out}/worker.pid
{server} &
server=$!
echo $server > {out}/server.pid.tmp && mv {out}/server.pid.tmp {out}/server.pid
wait $server
"""
    else:
        body = f"""sleep 300 &
echo $! > {out}/worker.pid.tmp && mv {out}/worker.pid.tmp {out}/worker.pid
exec {server}
"""
    script = directory / "server.sh"
    script.write_text(body)
    return script


def wait_gone(pids: list[int], *, timeout: float) -> list[int]:
    """Wait until none of `pids` runs (zombies count as gone); those still running at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        running = [pid for pid in pids if process_running(pid)]
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.05)


def kill_quietly(pids: list[int | None]) -> None:
    """Test clean-up: SIGKILL whatever of `pids` is left, by pid."""
    for pid in pids:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
