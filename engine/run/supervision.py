"""Watch a run's background tasks: the first one to fail stops the run, and says why.

A run has tasks no job owns (the store writer, the endpoints' dispatchers, the pipeline's cache
lookups). None may die unobserved: a `Supervisor` is told of each, and when one fails it keeps
that failure (a `StoreWriteError` as it is, anything else wrapped into an `InternalError` that
says where it happened and is logged with its traceback) and calls its `on_failure` once, which
stops the run. Whoever waits for the run then raises what `check` finds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from engine.errors import InternalError, MtbenchError

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(self, on_failure: Callable[[], None]) -> None:
        self.failure: MtbenchError | None = None
        self._on_failure = on_failure
        self._failed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()  # spawned here: a task needs a reference

    def watch(self, task: asyncio.Task[Any]) -> None:
        """If `task` fails, the run stops and `check` raises why."""
        task.add_done_callback(self._done)

    def spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """Run `coroutine` as a watched task, kept alive until it ends."""
        task = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.watch(task)

    def check(self) -> None:
        """Raise what stopped the run, if a watched task failed."""
        if self.failure is not None:
            raise self.failure

    async def finish(self, work: Awaitable[Any]) -> None:
        """Wait for `work` (requests still in flight after a stop) unless a task fails first;
        then `work` is cancelled and the failure raised."""
        waiting = asyncio.ensure_future(work)
        failed = asyncio.ensure_future(self._failed.wait())
        await asyncio.wait({waiting, failed}, return_when=asyncio.FIRST_COMPLETED)
        failed.cancel()
        if self.failure is None:
            await waiting
        waiting.cancel()
        self.check()

    def _done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and (error := task.exception()) is not None:
            self._fail(task.get_name(), error)

    def _fail(self, where: str, error: BaseException) -> None:
        if self.failure is None:
            self.failure = error if isinstance(error, MtbenchError) else _internal(where, error)
        self._failed.set()
        self._on_failure()


def _internal(where: str, error: BaseException) -> InternalError:
    log.error("internal error in %s", where, exc_info=error)
    return InternalError(
        f"internal error in {where}: {type(error).__name__}: {error}; the run stopped with "
        "everything received committed; rerun the same command to resume, and please report this"
    )
