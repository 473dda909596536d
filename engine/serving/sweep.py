"""Model servers inside a run: start one when its model has requests to send, stop it when done.

A `[[model]]` with `serve` has no base URL of its own. Its endpoint calls `acquire()` before its
first request: that waits for server slots (`engine.serving.slots`: a set of GPUs each, or a
Slurm job each), starts the servers (one per replica, each in a slot of its own) and returns
their base URLs. When the model's last job is finished the pipeline calls `release()`: the
servers stop and the slots go to the next checkpoint, while the judge goes on judging the answers
just made. A server that fails to start, or dies while its model still has work, fails that model
with the server's last log lines; the sweep goes on with the next checkpoint. A model whose
answers are all cached never starts a server at all. Each running server is in the store's
`servers` table (the `records`), so one that outlives a crashed engine is stopped by the next run
on the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from engine.config import ModelConfig, RunConfig
from engine.errors import ServerFailed
from engine.serving.processes import this_machine
from engine.serving.serve import ManagedServer, ServerRecords, ServerSpec
from engine.serving.slots import SlotPool, launcher_of, plan_slots
from engine.serving.slurm import SlurmServer
from engine.serving.slurm_jobs import store_tag

__all__ = [
    "ServerFleet",
    "ServerLifecycle",
    "SlotPool",
    "log_dir_problem",
    "server_log_dir",
    "server_log_stem",
]

log = logging.getLogger(__name__)

_READABLE_BYTES = 100  # of a label in its log's name: file names end at 255 bytes


def server_log_dir(store: Path) -> Path:
    """Where served models' output goes: `servers/` next to the store."""
    return store.parent / "servers"


def log_dir_problem(directory: Path) -> str | None:
    """Why servers could not write their logs in `directory` (made on first use), or None."""
    if not directory.exists():
        return None
    if not directory.is_dir():
        return "it is not a directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "it is not writable"
    return None


class Server(Protocol):
    """One started server, whatever launched it (a local process group, a Slurm job)."""

    async def start(self) -> str: ...

    async def stop(self) -> None: ...

    def hurry(self) -> None: ...

    async def ended(self) -> str: ...

    def log_tail(self) -> list[str]: ...


Launch = Callable[[ModelConfig, ServerSpec], Server]


class ServerFleet:
    """The run's slots per launcher, and a lifecycle for each served model."""

    def __init__(
        self,
        config: RunConfig,
        models: Sequence[ModelConfig],
        records: ServerRecords | None = None,
    ) -> None:
        plan = plan_slots(config, models)
        self._pools = {"local": SlotPool(plan.local), "slurm": SlotPool(plan.slurm)}
        self._logs = server_log_dir(config.store)
        self._tag = store_tag(config.store, this_machine().host)
        self._records = records

    def lifecycle(self, model: ModelConfig) -> ServerLifecycle:
        launcher = launcher_of(model)
        return ServerLifecycle(
            model, self._pools[launcher], self._logs, self._records, self._launch
        )

    def _launch(self, model: ModelConfig, spec: ServerSpec) -> Server:
        if launcher_of(model) == "slurm":
            shared = model.slurm.directory if model.slurm is not None else None
            directory = self._logs if shared is None else Path(shared)
            return SlurmServer(spec, model.slurm, self._records, directory, self._tag)
        return ManagedServer(spec, self._records)


class ServerLifecycle:
    def __init__(
        self,
        model: ModelConfig,
        slots: SlotPool,
        log_dir: Path,
        records: ServerRecords | None = None,
        launch: Launch | None = None,
    ) -> None:
        assert model.serve is not None
        self.model = model
        self._slots = slots
        self._records = records
        self._launch = launch or (lambda _model, spec: ManagedServer(spec, records))
        self._log_dir = log_dir
        self._servers: list[Server] = []
        self._held: tuple[int, ...] = ()
        self._watches: list[asyncio.Task[None]] = []
        self._releasing: asyncio.Future[None] | None = None
        self._serving = False

    @property
    def status(self) -> str | None:
        """What its servers are doing while they hold slots, for progress; None otherwise."""
        if not self._held or self._releasing is not None:
            return None
        return "; ".join(self._server_status(server) for server in self._servers) or "starting"

    def _server_status(self, server: Server) -> str:
        if isinstance(server, SlurmServer):
            return server.status
        phase = "serving" if self._serving else "starting"
        if not isinstance(server, ManagedServer):
            return phase
        gpus = f" on GPUs {','.join(server.spec.gpus)}" if server.spec.gpus else ""
        return f"{phase}{gpus} (pid {server.pid})" if server.pid else f"{phase}{gpus}"

    def _spec(self, replica: int, slot: int) -> ServerSpec:
        model = self.model
        assert model.serve is not None
        suffix = "" if model.replicas == 1 else f"-replica{replica + 1}"
        wanted = 1 if model.gpus_per_server is None else model.gpus_per_server
        gpus = self._slots.gpus[slot][:wanted]
        return ServerSpec(
            model.serve,
            path=model.checkpoint or "",
            name=model.name,
            ready_path=model.ready_path,
            ready_timeout=model.ready_timeout,
            log_file=self._log_dir / f"{server_log_stem(model.name, suffix)}.log",
            gpus=gpus,
            num_gpus=len(gpus) if gpus else wanted,
        )

    async def acquire(self, on_death: Callable[[ServerFailed], None]) -> list[str]:
        """Wait for slots, start the servers, return their base URLs; ServerFailed if one won't
        run (then none is left running)."""
        self._held = await self._slots.take(self.model.replicas)
        self._servers = [
            self._launch(self.model, self._spec(replica, slot))
            for replica, slot in enumerate(self._held)
        ]
        starts = [asyncio.ensure_future(server.start()) for server in self._servers]
        try:
            await asyncio.wait(starts, return_when=asyncio.FIRST_EXCEPTION)
            for start in starts:
                if start.done() and start.exception() is not None:
                    raise start.exception()  # type: ignore[misc]
        except BaseException:
            for start in starts:
                start.cancel()
            try:
                await asyncio.gather(*starts, return_exceptions=True)
                await self._stop_servers()
            finally:
                self._give_back_slots()
            raise
        urls = [start.result() for start in starts]
        self._serving = True
        self._watches = [
            asyncio.create_task(self._watch_exit(server, on_death)) for server in self._servers
        ]
        log.info("%s: serving at %s (slots %s)", self.model.name, ", ".join(urls), self._held)
        return urls

    async def release(self) -> None:
        """Stop the servers (if they ever started) and free their slots.

        Every caller waits until that is done: the pipeline releases a model's server when its
        last job finishes, and the run's shutdown must not close the store or end the loop while
        that stop is still under way (asyncio.run would cancel it half done).
        """
        if self._releasing is None:
            self._releasing = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._releasing)

    def hurry(self) -> None:
        """The run is aborted: its servers' stops do not wait `stop_timeout` for them."""
        for server in self._servers:
            server.hurry()

    async def _stop(self) -> None:
        for watch in self._watches:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        if self._servers:
            await self._stop_servers()
            log.info("%s: server stopped", self.model.name)
        self._give_back_slots()

    async def _stop_servers(self) -> None:
        await asyncio.gather(*(server.stop() for server in self._servers))

    def _give_back_slots(self) -> None:
        held, self._held = self._held, ()
        if held:
            self._slots.give_back(held)

    async def _watch_exit(self, server: Server, on_death: Callable[[ServerFailed], None]) -> None:
        how = await server.ended()
        tail = "\n".join(f"  | {line}" for line in server.log_tail()) or "  | (no output)"
        on_death(
            ServerFailed(
                f"{self.model.name}: its server {how} while the model still had work; "
                f"its last output:\n{tail}"
            )
        )


def server_log_stem(label: str, replica: str = "") -> str:
    """The name of a served model's log, `.log` aside: its label in the characters a file name
    can hold (at most 100 bytes of them), the `replica` suffix, then the first 8 hex digits of the
    label's sha256. Labels that differ only where a file name cannot (`step-1 a`, `step-1_a`), in
    case, or beyond their 100th byte, never share a log, which would interleave their
    output and show one server's lines under the other's failure."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    readable = safe.encode()[:_READABLE_BYTES].decode(errors="ignore")  # no character cut in two
    digest = hashlib.sha256(label.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{readable}{replica}.{digest}"
