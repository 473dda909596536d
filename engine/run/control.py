"""Stopping a run from outside it: gracefully (send nothing more, commit what is in flight) or not.

A training script may want to stop an evaluation that has run long enough; the CLI stops one on
Ctrl-C. Neither reaches into the run: each hands `engine.evaluate` a `RunControl` and calls
`stop()` (the requests in flight finish, everything received is committed, the run raises
`RunStopped`) or `abort()` (the requests in flight are cancelled too). A stop asked for before the
run sends anything takes effect as it starts. `running()` is the stretch in which the run sends,
between its two run-row updates: a subclass hooks it (the CLI takes SIGINT and SIGTERM there).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from engine.errors import MtbenchError

__all__ = ["RunControl", "RunStopped"]


class RunStopped(MtbenchError):
    """The run was stopped through its `RunControl`; `failure` is what else went wrong, if any."""

    def __init__(self, message: str, failure: MtbenchError | None = None) -> None:
        super().__init__(message)
        self.failure = failure


def _nothing() -> None:
    pass


class RunControl:
    def __init__(self) -> None:
        self.stopped = False
        self._on_stop: Callable[[], None] = _nothing
        self._on_abort: Callable[[], None] = _nothing
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None

    def stop(self) -> None:
        """Send nothing more; the requests in flight finish and everything received is committed.

        Safe from any thread: the run's own loop carries it out."""
        self.stopped = True
        self._in_loop(lambda: self._on_stop())

    def abort(self) -> None:
        """Cancel the requests still in flight (after `stop`, or instead of it)."""
        self.stopped = True
        self._in_loop(lambda: self._on_abort())

    @contextmanager
    def running(self) -> Iterator[None]:
        """The stretch in which the run sends; subclasses may do more here (take signals)."""
        yield

    def attach(self, on_stop: Callable[[], None], on_abort: Callable[[], None]) -> None:
        """For the run: what `stop` and `abort` do; a stop asked for already happens now."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._on_stop, self._on_abort = on_stop, on_abort
        if self.stopped:
            on_stop()

    def detach(self) -> None:
        self._on_stop = self._on_abort = _nothing
        self._loop = self._thread = None

    def _in_loop(self, action: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or self._thread == threading.get_ident():
            action()
        else:
            loop.call_soon_threadsafe(action)
