"""Start, probe and stop model servers, so a checkpoint sweep can serve each checkpoint in turn.

A sweep runs a command such as `vllm serve {path} --port {port}` once per checkpoint. Each server
gets its own process group (`start_new_session`), so stopping it reaches the workers it forked
too: SIGTERM to the group, a grace period, then SIGKILL. A server is ready when its probe path
answers 200; one that exits first, or is not ready in time, raises `ServerFailed` with the command
and the last lines it printed, because "server failed" alone sends the user digging for a log.

Nor may a server outlive an engine that dies without stopping it (SIGKILL, OOM): the kernel sends
it SIGTERM then (`engine.serving.processes.exit_with_parent`), and `ServerRecords` (in a run, the
store's `servers` table) lets the next run on the store stop whatever that signal did not reach.

    async with ManagedServer(ServerSpec(command, path=ckpt, name=label)) as base_url:
        ...  # point a model's base_url at it
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import shlex
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Protocol

from engine.errors import ConfigError, ServerFailed
from engine.redact import redact
from engine.serving.ports import PortTaken, free_port, listening, retry_lost_ports
from engine.serving.processes import (
    ProcessIdentity,
    exit_with_parent,
    group_gone,
    identify,
    signal_group,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "ManagedServer",
    "ServerRecords",
    "ServerSpec",
    "StartedServer",
    "free_port",
]

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 50
_PROBE_INTERVAL = 0.1
ABORT_STOP_TIMEOUT = 2.0  # seconds an aborted run's server has to end after SIGTERM
_PROBE_TIMEOUT = 5.0
_PLACEHOLDERS = ("path", "name", "port", "gpus", "num_gpus")
# Process groups still running; killed at interpreter exit so a crash of the sweep does not leave
# a model holding a GPU.
_LIVE_GROUPS: set[int] = set()


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to run one server: a command template and the values for its `{placeholders}`.

    The template is split like a shell would (`shlex`) before the values are filled in, so a path
    with spaces stays one argument. `port=None` picks a free port at start. `ready_path` is probed
    on the server's root (`/v1/models`, or `/health` for servers that have it). `env` adds to the
    environment. `gpus` are the server's GPUs (`engine.serving.gpus`): its `CUDA_VISIBLE_DEVICES`,
    and the `{gpus}` (comma list) and `{num_gpus}` placeholders.
    """

    command: str
    path: str | Path = ""
    name: str = ""
    port: int | None = None
    host: str = "127.0.0.1"
    ready_path: str = "/v1/models"
    ready_timeout: float = 600.0
    stop_timeout: float = 30.0
    log_file: Path | None = None
    env: tuple[tuple[str, str], ...] = ()
    gpus: tuple[str, ...] = ()
    num_gpus: int = 0

    def argv(self, port: int | str, gpus: str | None = None) -> list[str]:
        """The command line for `port`; a ConfigError for an unusable template.

        `gpus` stands in for the GPU list where it is known only where the server runs.
        """
        try:
            words = shlex.split(self.command)
        except ValueError as exc:
            raise ConfigError(f"server command {self.command!r}: {exc}") from None
        if not words:
            raise ConfigError("server command is empty")
        values = {
            "path": self.path,
            "name": self.name,
            "port": port,
            "gpus": ",".join(self.gpus) if gpus is None else gpus,
            "num_gpus": self.num_gpus,
        }
        try:
            return [word.format(**values) for word in words]
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"server command {self.command!r}: bad placeholder {exc} "
                f"(known: {', '.join('{' + p + '}' for p in _PLACEHOLDERS)})"
            ) from None


@dataclass(frozen=True, slots=True)
class StartedServer:
    """A server as it was started: enough to find and stop it from another process.

    A local server is a process group (`process`); a batch job has its launcher's `job_id` and
    the `host` that submitted it instead.
    """

    process: ProcessIdentity | None
    name: str
    command: str
    log_file: Path | None
    started: float  # time.time()
    launcher: str = "local"
    job_id: str | None = None
    host: str = ""


class ServerRecords(Protocol):
    """Where started servers are recorded until they are stopped (the store's `servers` table).

    A batch job is added before its submission, without its id, then again with it. Neither method
    raises: a record is a safety net for a crash, not a reason to fail a server."""

    async def add(self, server: StartedServer) -> None: ...

    async def remove(self, server: StartedServer) -> None: ...


class ManagedServer:
    """One server process: `start()` returns its base URL once ready; `stop()` ends its group."""

    def __init__(
        self,
        spec: ServerSpec,
        records: ServerRecords | None = None,
        pick_port: Callable[[str], int] = free_port,
    ) -> None:
        self.spec = spec
        self._records = records
        self._pick_port = pick_port  # for a spec without a port: given the host
        self._started: StartedServer | None = None
        self.port: int | None = spec.port
        self._argv: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._log: IO[str] | None = None
        self._stop_timeout = spec.stop_timeout

    @property
    def base_url(self) -> str:
        return f"http://{self.spec.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        """The server's pid, which is also its process group id."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has ended (negative: killed by that signal)."""
        return None if self._process is None else self._process.returncode

    def log_tail(self) -> list[str]:
        """The last lines the server printed (stdout and stderr), oldest first."""
        return list(self._tail)

    async def start(self) -> str:
        """Spawn the server and wait until its probe answers 200; stop it if that never happens.
        Started again on another port if a port picked here is taken first (`serving.ports`)."""
        if self._process is not None:
            raise RuntimeError("ManagedServer.start() called twice")
        return await retry_lost_ports(self._start_once, self.log_tail, self.spec.port is None)

    async def _start_once(self) -> str:
        self._process, self._reader = None, None  # the last attempt's, stopped
        self._tail.clear()
        self.port = self._pick_port(self.spec.host) if self.spec.port is None else self.spec.port
        self._argv = self.spec.argv(self.port)
        if listening(self.spec.host, self.port):
            # Else the probe would find that other server ready while ours fails to bind.
            raise PortTaken(
                f"server `{self._command()}`: port {self.port} is already in use on "
                f"{self.spec.host}; pick another port or leave it unset"
            )
        try:
            await self._spawn()
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        return self.base_url

    async def _spawn(self) -> None:
        if self.spec.log_file is not None:
            self._log = self._open_log(self.spec.log_file)
        pinned = (("CUDA_VISIBLE_DEVICES", ",".join(self.spec.gpus)),) if self.spec.gpus else ()
        extra = (*self.spec.env, *pinned)
        env = {**os.environ, **dict(extra)} if extra else None
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=exit_with_parent(),
                env=env,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServerFailed(f"cannot run server command `{self._command()}`: {exc}") from None
        _LIVE_GROUPS.add(self._process.pid)
        assert self._process.stdout is not None
        self._reader = asyncio.create_task(self._read_output(self._process.stdout))
        logger.info("started server pid %d: %s", self._process.pid, self._command())
        await self._record_start(self._process.pid)

    def _open_log(self, path: Path) -> IO[str]:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ServerFailed(
                f"server `{self.spec.command}`: cannot write its log {path} ({exc.strerror}); "
                f"make {path.parent} a writable directory"
            ) from None

    async def _record_start(self, pid: int) -> None:
        # The server leads its own group (start_new_session), so its group id is its pid.
        process = identify(pid, group=pid)
        if self._records is None or process is None:  # None: it has exited already
            return
        spec = self.spec
        self._started = StartedServer(
            process, spec.name, self._command(), spec.log_file, time.time()
        )
        await self._records.add(self._started)

    async def _read_output(self, stream: asyncio.StreamReader) -> None:
        """Drain the server's output for its whole life: a full pipe would block the server."""
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # longer than the stream's limit; asyncio has dropped it
                raw = b"(an over-long line was skipped)"
            if not raw:
                return
            line = redact(raw.decode("utf-8", "replace").rstrip())  # it may print the key we send
            self._tail.append(line)
            if self._log is not None:
                self._log.write(line + "\n")
                self._log.flush()

    async def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.spec.ready_timeout
        url = f"http://{self.spec.host}:{self.port}{self.spec.ready_path}"
        exited = asyncio.ensure_future(self._process.wait())
        import aiohttp  # only here: importing it costs a quarter of a second

        timeout = aiohttp.ClientTimeout(total=_PROBE_TIMEOUT)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while True:
                    probe = asyncio.ensure_future(_answers_ok(session, url))
                    # Race every probe against the exit, so a crash is reported at once.
                    await asyncio.wait(
                        {probe, exited},
                        timeout=max(deadline - time.monotonic(), 0),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if not probe.done():
                        probe.cancel()
                    if exited.done():
                        await self._drain_output()
                        raise self._failure(f"exited with code {exited.result()} before ready")
                    if probe.done() and not probe.cancelled() and probe.result():
                        logger.info("server ready at %s", self.base_url)
                        return
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self._failure(f"was not ready within {self.spec.ready_timeout:g}s")
                    await asyncio.wait({exited}, timeout=min(_PROBE_INTERVAL, remaining))
        finally:
            exited.cancel()

    async def _drain_output(self) -> None:
        """Let the reader take in the last lines a dying server printed."""
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), timeout=2.0)

    def _failure(self, what: str) -> ServerFailed:
        tail = "\n".join(f"  | {line}" for line in self._tail) or "  | (no output)"
        return ServerFailed(
            f"server `{self._command()}` {what} (probe {self.spec.ready_path}); "
            f"its last output:\n{tail}"
        )

    def _command(self) -> str:
        return shlex.join(self._argv) if self._argv else self.spec.command

    async def wait(self) -> int:
        """Until the process exits (for whatever reason); its exit code."""
        assert self._process is not None
        return await self._process.wait()

    async def ended(self) -> str:
        """Until the process exits; how it ended, for a message."""
        return f"exited with code {await self.wait()}"

    def hurry(self) -> None:
        """The run is aborted (a second signal, the stop grace over): a stop under way or to come
        kills the group `ABORT_STOP_TIMEOUT` s after its SIGTERM, not `stop_timeout` s."""
        self._stop_timeout = min(self._stop_timeout, ABORT_STOP_TIMEOUT)

    async def stop(self) -> None:
        """SIGTERM the process group, wait `stop_timeout`, then SIGKILL it. Safe to call twice."""
        process = self._process
        if process is not None:
            group = process.pid
            gone = True
            if signal_group(group, signal.SIGTERM):
                sent = time.monotonic()  # the deadline moves closer if the run is aborted
                if not await group_gone(process, group, lambda: sent + self._stop_timeout):
                    logger.warning("server pid %d ignored SIGTERM; killing its group", group)
                    signal_group(group, signal.SIGKILL)
                    killed = time.monotonic() + 5.0
                    gone = await group_gone(process, group, lambda: killed)
            await process.wait()
            _LIVE_GROUPS.discard(group)
            await self._record_stop(gone)
        if self._reader is not None:
            await self._drain_output()
            self._reader.cancel()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def _record_stop(self, gone: bool) -> None:
        """Forget the record once the whole group is gone; else the next run retries the kill."""
        started, self._started = self._started, None
        if started is not None and self._records is not None and gone:
            await self._records.remove(started)

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def _answers_ok(session: aiohttp.ClientSession, url: str) -> bool:
    import aiohttp

    try:
        async with session.get(url) as response:
            return response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return False


@atexit.register
def _kill_leftover_groups() -> None:
    for group in list(_LIVE_GROUPS):
        signal_group(group, signal.SIGKILL)
