"""Ctrl-C and SIGTERM during a run: the first stops gracefully, the second aborts.

Graceful: send nothing new, let the requests in flight finish (they may already be paid for) and
commit everything received, then exit 130 (SIGINT) or 143 (SIGTERM) with a line saying how to
resume. A second signal cancels what is still in flight; whatever was received is still committed,
and SQLite's transactions keep the store consistent either way.

Outside a run (reading the config and data, opening the store, `show`, `data fetch`, printing
the summary) the CLI's own handlers apply (`exits_on_signals`): a signal there ends the command
with one line and the same exit codes, since nothing is in flight that a graceful stop could
save. While the event loop runs, that means cancelling the command's task (`run_command`); in
plain code it means raising `SignalExit`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any, TypeVar

from engine.errors import MtbenchError

__all__ = ["Interrupted", "SignalExit", "StopSignals", "exits_on_signals", "run_command"]

_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}

T = TypeVar("T")


class Interrupted(MtbenchError):
    """The run was stopped by a signal; exit code is 128 + the signal number."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


def _nothing() -> None:
    pass


class StopSignals:
    def __init__(self) -> None:
        """`on_stop` and `on_abort` are set by whoever runs the work the signals stop."""
        self.on_stop: Callable[[], None] = _nothing
        self.on_abort: Callable[[], None] = _nothing
        self.received: int | None = None
        self._count = 0
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return _NAMES.get(signal.Signals(self.received or signal.SIGINT), "signal")

    def __enter__(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        for signum in _NAMES:
            self._previous[signum] = signal.getsignal(signum)
            loop.add_signal_handler(signum, self._handle, signum)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        for signum in _NAMES:
            loop.remove_signal_handler(signum)
            # asyncio leaves the default behind, not what was there before (the CLI's handler)
            previous = self._previous.pop(signum, None)
            if previous is not None:
                signal.signal(signum, previous)

    def _handle(self, signum: int) -> None:
        self._count += 1
        if self._count == 1:
            self.received = signum
            print(
                f"\n{_NAMES[signal.Signals(signum)]}: stopping; finishing the requests in flight "
                "(press Ctrl-C again to abort them)",
                file=sys.stderr,
                flush=True,
            )
            self.on_stop()
        else:
            print("aborting: cancelling the requests in flight", file=sys.stderr, flush=True)
            self.on_abort()


class SignalExit(BaseException):
    """SIGINT or SIGTERM outside a run: unwinds everything (not an Exception, so nothing that
    handles errors swallows it) to the CLI, which prints one line and exits 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(_NAMES.get(signal.Signals(signum), "signal"))
        self.signum = signum


@dataclass(slots=True)
class _Command:
    """The command's task while `run_command` awaits it, and the signal that cancelled it."""

    task: asyncio.Future[Any] | None = None
    signum: int | None = None


_command = _Command()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    task = _command.task
    if task is None or task.done():
        raise SignalExit(signum)
    # Inside the event loop an exception may land in one of its callbacks, which log and drop
    # it (uvloop runs Python-level handlers in one): cancel the command, and say why once it ends
    _command.signum = signum
    task.get_loop().call_soon_threadsafe(task.cancel)


async def run_command(command: Awaitable[T]) -> T:
    """Await a command as the task that SIGINT/SIGTERM cancel (outside a run's StopSignals)."""
    task = asyncio.ensure_future(command)
    _command.task, _command.signum = task, None
    try:
        return await task
    except asyncio.CancelledError:
        if _command.signum is None:
            raise
        raise SignalExit(_command.signum) from None
    finally:
        _command.task = None


@contextmanager
def exits_on_signals() -> Iterator[None]:
    """While active (in the main thread), SIGINT and SIGTERM end the command: `SignalExit`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _on_signal) for signum in _NAMES}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
