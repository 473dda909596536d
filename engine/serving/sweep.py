"""Model servers inside a run: start one when its model has requests to send, stop it when done.

A `[[model]]` with `serve` has no base URL of its own. Its endpoint calls `acquire()` before its
first request: that waits for a server slot (one per GPU, say), starts the server and returns its
base URL. When the model's last job is finished the pipeline calls `release()`: the server stops and
the slot goes to the next checkpoint, while the judge goes on judging the answers just made. A
server that fails to start, or dies while its model still has work, fails that model with the
server's last log lines; the sweep goes on with the next checkpoint. A model whose answers are all
cached never starts a server at all. Each running server is in the store's `servers` table (the
`records`), so one that outlives a crashed engine is stopped by the next run on the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from engine.config import ModelConfig
from engine.errors import ServerFailed
from engine.serving.serve import ManagedServer, ServerRecords, ServerSpec

__all__ = ["ServerLifecycle", "SlotPool", "log_dir_problem", "server_log_dir"]

log = logging.getLogger(__name__)


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


class SlotPool:
    """At most `slots` servers at once; each holder gets a slot number (a GPU index, say)."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a SlotPool needs at least one slot")
        self._free: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(slots):
            self._free.put_nowait(slot)

    async def acquire(self) -> int:
        """Wait for a free slot (first come, first served) and take it."""
        return await self._free.get()

    def release(self, number: int) -> None:
        self._free.put_nowait(number)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        number = await self.acquire()
        try:
            yield number
        finally:
            self.release(number)


class ServerLifecycle:
    def __init__(
        self,
        model: ModelConfig,
        slots: SlotPool,
        log_dir: Path,
        records: ServerRecords | None = None,
    ) -> None:
        assert model.serve is not None
        self.model = model
        self._slots = slots
        self._records = records
        self._spec = ServerSpec(
            model.serve,
            path=model.checkpoint or "",
            name=model.name,
            ready_path=model.ready_path,
            ready_timeout=model.ready_timeout,
            log_file=log_dir / f"{_file_safe(model.name)}.log",
        )
        self._server: ManagedServer | None = None
        self._slot: int | None = None
        self._watch: asyncio.Task[None] | None = None
        self._releasing: asyncio.Future[None] | None = None

    async def acquire(self, on_death: Callable[[ServerFailed], None]) -> str:
        """Wait for a slot, start the server, return its base URL; ServerFailed if it won't run."""
        self._slot = await self._slots.acquire()
        server = ManagedServer(self._spec, self._records)
        try:
            url = await server.start()
        except BaseException:
            self._give_back_slot()
            raise
        self._server = server
        self._watch = asyncio.create_task(self._watch_exit(server, on_death))
        log.info("%s: server ready at %s (slot %d)", self.model.name, url, self._slot)
        return url

    async def release(self) -> None:
        """Stop the server (if it ever started) and free its slot.

        Every caller waits until that is done: the pipeline releases a model's server when its
        last job finishes, and the run's shutdown must not close the store or end the loop while
        that stop is still under way (asyncio.run would cancel it half done).
        """
        if self._releasing is None:
            self._releasing = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._releasing)

    async def _stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._server is not None:
            await self._server.stop()
            log.info("%s: server stopped", self.model.name)
        self._give_back_slot()

    def _give_back_slot(self) -> None:
        if self._slot is not None:
            self._slots.release(self._slot)
            self._slot = None

    async def _watch_exit(
        self, server: ManagedServer, on_death: Callable[[ServerFailed], None]
    ) -> None:
        code = await server.wait()
        tail = "\n".join(f"  | {line}" for line in server.log_tail()) or "  | (no output)"
        on_death(
            ServerFailed(
                f"{self.model.name}: its server exited with code {code} while the model still had "
                f"work; its last output:\n{tail}"
            )
        )


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
