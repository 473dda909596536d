"""Ctrl-C and SIGTERM (and SIGHUP) during a run: the first stops gracefully, the second aborts.

Graceful: send nothing new, let the requests in flight finish (they may already be paid for) and
commit everything received, then exit 130 (SIGINT) or 143 (SIGTERM) with a line saying how to
resume. A second signal cancels what is still in flight; whatever was received is still committed,
and SQLite's transactions keep the store consistent either way.

Outside a run (reading the config and data, opening the store, `show`, `data fetch`, printing
the summary) the CLI's own handlers apply (`engine.cli.interrupts`): a signal there ends the command
with one line and the same exit codes, since nothing is in flight that a graceful stop could
save.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from types import TracebackType
from typing import Any

from engine.cli.interrupts import STOP_SIGNALS, take_pending_signal
from engine.errors import MtbenchError

__all__ = ["Interrupted", "StopSignals"]

_NAMES = {signum: signal.Signals(signum).name for signum in STOP_SIGNALS}


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
        self._before: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return _NAMES.get(signal.Signals(self.received or signal.SIGINT), "signal")

    def __enter__(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        for signum in _NAMES:
            self._before[signum] = signal.getsignal(signum)
            loop.add_signal_handler(signum, self._handle, signum)
        early = take_pending_signal()  # one that came while the run was being prepared
        if early is not None:
            self._handle(early)
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
            # The loop resets the signal to Python's default (for SIGTERM: die without a word);
            # put back what handled it before, e.g. the CLI's one-line exit.
            if self._before.get(signum) is not None:
                signal.signal(signum, self._before[signum])

    def _handle(self, signum: int) -> None:
        self._count += 1
        if self._count == 1:
            self.received = signum
            _say(
                f"\n{_NAMES[signal.Signals(signum)]}: stopping; finishing the requests in flight "
                "(press Ctrl-C again to abort them)"
            )
            self.on_stop()
        else:
            _say("aborting: cancelling the requests in flight")
            self.on_abort()


def _say(line: str) -> None:
    """A line on stderr, if it can take one: after SIGHUP the terminal may be gone (EIO), and
    the stop must happen all the same."""
    with suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)
