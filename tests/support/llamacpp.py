"""A real llama.cpp server with SmolLM2-135M for tests, started and stopped through `ManagedServer`.

`ServerThread` keeps the server's event loop in a thread of its own, so one server can outlive many
tests and every `mtbench` call (each runs its own `asyncio.run`) can use it. `JUDGE_GRAMMAR` makes
SmolLM2, which ignores the judge prompt's format, answer the way FastChat's parser expects.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import threading
from pathlib import Path
from types import TracebackType

from engine.serving.serve import ManagedServer, ServerSpec
from engine.serving.serve_gguf import smollm2_path

__all__ = ["JUDGE_GRAMMAR", "JUDGE_MAX_TOKENS", "ServerThread", "process_running", "smollm2_spec"]

from engine.serving.demo import JUDGE_GRAMMAR, JUDGE_MAX_TOKENS

THREADS = min(2, os.cpu_count() or 1)


def smollm2_spec(
    *,
    alias: str = "smollm2",
    n_parallel: int = 2,
    ctx: int = 4096,
    log_file: Path | None = None,
    stop_timeout: float = 10.0,
    extra_args: tuple[str, ...] = (),
) -> ServerSpec:
    """The command a sweep would use to serve SmolLM2 with `engine.serving.serve_gguf`."""
    command = (
        f"{shlex.quote(sys.executable)} -m engine.serving.serve_gguf --model {{path}} "
        f"--port {{port}} --alias {{name}} --n-parallel {n_parallel} --ctx {ctx} "
        f"--threads {THREADS}"
    )
    command += "".join(f" {shlex.quote(arg)}" for arg in extra_args)
    return ServerSpec(
        command,
        path=smollm2_path(),
        name=alias,
        ready_timeout=60.0,
        stop_timeout=stop_timeout,
        log_file=log_file,
    )


class ServerThread:
    """A ManagedServer whose event loop runs in a background thread: `with ... as server`."""

    def __init__(self, spec: ServerSpec, *, start_timeout: float = 120.0) -> None:
        self.server = ManagedServer(spec)
        self._start_timeout = start_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> ManagedServer:
        self._thread.start()
        try:
            future = asyncio.run_coroutine_threadsafe(self.server.start(), self._loop)
            future.result(timeout=self._start_timeout)
        except BaseException:
            self._shutdown()
            raise
        return self.server

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def process_running(pid: int) -> bool:
    """Whether `pid` runs; a zombie (dead, waiting for its parent to reap it) does not count."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"
