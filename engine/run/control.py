"""Stopping a run from outside it: gracefully (send nothing more, commit what is in flight) or not.

A training script may want to stop an evaluation that has run long enough; the CLI stops one on
Ctrl-C. Neither reaches into the run: each hands `engine.evaluate` a `RunControl` and calls
`stop()` (the requests in flight finish, everything received is committed, the run raises
`RunStopped`) or `abort()` (the requests in flight are cancelled too). A stop asked for before the
run sends anything takes effect as it starts (and a stopped control stays stopped). One control
may steer several runs at once, each in its own loop or thread: `stop()` stops them all.
`running()` is the stretch in which the run sends, between its two run-row updates: a subclass
hooks it (the CLI takes SIGINT and SIGTERM there). A run cancelled outright (a caller's timeout,
Ctrl-C in a script) closes what it opened all the same: `to_the_end`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from engine.errors import MtbenchError

__all__ = ["RunControl", "RunStopped", "settled", "to_the_end"]


class RunStopped(MtbenchError):
    """The run was stopped through its `RunControl`; `failure` is what else went wrong, if any."""

    def __init__(self, message: str, failure: MtbenchError | None = None) -> None:
        super().__init__(message)
        self.failure = failure


@dataclass(frozen=True, eq=False)
class _Attached:
    """One run steered by a control: its loop and thread, and what stopping it does."""

    loop: asyncio.AbstractEventLoop
    thread: int
    on_stop: Callable[[], None]
    on_abort: Callable[[], None]


class RunControl:
    """Steers every run it is given to (one after another, or several at once)."""

    def __init__(self) -> None:
        self.stopped = False
        self._runs: list[_Attached] = []

    def stop(self) -> None:
        """Send nothing more; the requests in flight finish and everything received is committed.

        Safe from any thread: each run's own loop carries it out."""
        self.stopped = True
        for run in list(self._runs):
            self._in_loop(run, run.on_stop)

    def abort(self) -> None:
        """Cancel the requests still in flight (after `stop`, or instead of it: then it stops
        the run too, which would otherwise go on sending)."""
        self.stopped = True
        for run in list(self._runs):
            self._in_loop(run, run.on_stop)
            self._in_loop(run, run.on_abort)

    @contextmanager
    def running(self) -> Iterator[None]:
        """The stretch in which the run sends; subclasses may do more here (take signals)."""
        yield

    def attach(
        self, on_stop: Callable[[], None], on_abort: Callable[[], None]
    ) -> Callable[[], None]:
        """For a run: what `stop` and `abort` do to it; a stop asked for already happens now.
        Returns what detaches the run again."""
        run = _Attached(asyncio.get_running_loop(), threading.get_ident(), on_stop, on_abort)
        self._runs.append(run)
        if self.stopped:
            on_stop()
        return lambda: self._runs.remove(run)

    @staticmethod
    def _in_loop(run: _Attached, action: Callable[[], None]) -> None:
        if run.thread == threading.get_ident():
            action()
            return
        with suppress(RuntimeError):  # its loop is closed: that run has ended already
            run.loop.call_soon_threadsafe(action)


async def to_the_end(*steps: Callable[[], Awaitable[Any]]) -> None:
    """Each step awaited in turn, for closing what a run opened: a cancel (a caller's timeout,
    Ctrl-C in a script) cuts short the step it lands in, never the steps after it, and is raised
    once they have run. A cancel while one endpoint's pool closed skipped the writer, whose thread
    and connection stayed open, the store locked for the next run in this process."""
    cancelled: asyncio.CancelledError | None = None
    for step in steps:
        try:
            await step()
        except asyncio.CancelledError as error:
            cancelled = error
    if cancelled is not None:
        raise cancelled


async def settled(task: asyncio.Task[Any]) -> None:
    """Wait for `task` without raising what it raised: for a run's progress reporter, whose
    failures are logged, and whose SystemExit or KeyboardInterrupt (from a view's code) has
    already left the event loop once."""
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # seen
