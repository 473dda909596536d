"""Ctrl-C and SIGTERM (and SIGHUP) during a run: the first stops gracefully, the second aborts.

Graceful: send nothing new, let the requests in flight finish (they may already be paid for) and
commit everything received, then exit 130 (SIGINT) or 143 (SIGTERM) with a line saying how to
resume. A second signal cancels what is still in flight; whatever was received is still committed,
and SQLite's transactions keep the store consistent either way. The graceful stop lasts at most
`MTBENCH_STOP_GRACE` seconds (default 20), then aborts as a second signal would: a scheduler's
SIGTERM is followed by SIGKILL (Slurm and Kubernetes after 30 s, systemd after 90), and one stuck
request (cut only after minutes) must not turn a clean stop, which stops its servers and cancels
its Slurm jobs, into a kill that leaves them running.

Outside a run (reading the config and data, opening the store, `show`, `data fetch`, printing
the summary) the CLI's own handlers apply (`engine.cli.interrupts`): a signal there ends the command
with one line and the same exit codes, since nothing is in flight that a graceful stop could
save.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from types import TracebackType
from typing import Any

from engine.cli.interrupts import STOP_SIGNALS, take_pending_signal
from engine.errors import InputError, MtbenchError

__all__ = ["DEFAULT_STOP_GRACE", "STOP_GRACE_ENV", "Interrupted", "StopSignals", "stop_grace"]

STOP_GRACE_ENV = "MTBENCH_STOP_GRACE"
DEFAULT_STOP_GRACE = 20.0  # seconds a graceful stop waits for the requests in flight

_NAMES = {signum: signal.Signals(signum).name for signum in STOP_SIGNALS}


class Interrupted(MtbenchError):
    """The run was stopped by a signal; exit code is 128 + the signal number."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


def _nothing() -> None:
    pass


def stop_grace() -> float:
    """`MTBENCH_STOP_GRACE` in seconds (`inf`: wait for every request in flight), else 20."""
    text = os.environ.get(STOP_GRACE_ENV, "").strip()
    if not text:
        return DEFAULT_STOP_GRACE
    try:
        grace = float(text)
    except ValueError:
        grace = math.nan
    if math.isnan(grace) or grace < 0:
        raise InputError(
            f"{STOP_GRACE_ENV}={text!r} is not a number of seconds; give one such as 20, "
            "or inf to let a stop wait for every request in flight"
        )
    return grace


class StopSignals:
    def __init__(self, grace: float = DEFAULT_STOP_GRACE) -> None:
        """`on_stop` and `on_abort` are set by whoever runs the work the signals stop; a graceful
        stop becomes an abort after `grace` seconds."""
        self.on_stop: Callable[[], None] = _nothing
        self.on_abort: Callable[[], None] = _nothing
        self.received: int | None = None
        self.grace = grace
        self._count = 0
        self._before: dict[int, Any] = {}
        self._deadline: asyncio.TimerHandle | None = None

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
        if self._deadline is not None:
            self._deadline.cancel()
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
            within = "" if math.isinf(self.grace) else f" for up to {self.grace:g} s"
            _say(
                f"\n{_NAMES[signal.Signals(signum)]}: stopping; finishing the requests in flight"
                f"{within} (press Ctrl-C again to abort them)"
            )
            if not math.isinf(self.grace):
                loop = asyncio.get_running_loop()
                self._deadline = loop.call_later(self.grace, self._grace_over)
            self.on_stop()
        else:
            _say("aborting: cancelling the requests in flight")
            self.on_abort()

    def _grace_over(self) -> None:
        if self._count == 1:
            self._count = 2
            _say(
                f"aborting: requests still in flight after {self.grace:g} s "
                f"(set {STOP_GRACE_ENV} to wait longer)"
            )
            self.on_abort()


def _say(line: str) -> None:
    """A line on stderr, if it can take one: after SIGHUP the terminal may be gone (EIO), and
    the stop must happen all the same."""
    with suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)
