"""A run's control in the CLI: the first SIGINT or SIGTERM stops it gracefully, a second aborts.

`engine.run.control.RunControl` is how anyone stops a run; this one is stopped by signals
(`engine.cli.signals`), taken only while the run sends (before and after, `engine.cli.interrupts`
ends the command at once). While the run sends, its tens of thousands of long-lived jobs are also
kept out of the cycle collector's sight (`long_lived`): a tuning of this process, which is the
CLI's to make, never the API's. A stop by signal becomes `Interrupted` (exit 128 + n) with the
command that resumes the run.
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from engine.cli.signals import Interrupted, StopSignals, stop_grace
from engine.run.control import RunControl, RunStopped

__all__ = ["GC_THRESHOLD", "SignalControl", "long_lived"]

GC_THRESHOLD = 10_000  # first-generation threshold during a run (Python's default is 700)
T = TypeVar("T")


class SignalControl(RunControl):
    def __init__(self, resume: str) -> None:
        """`resume` is the command a stopped run is resumed with, for the last line."""
        super().__init__()
        self.resume = resume
        self.signals = StopSignals(stop_grace())
        self.signals.on_stop = self.stop
        self.signals.on_abort = self.abort

    @contextmanager
    def running(self) -> Iterator[None]:
        with self.signals, long_lived():
            yield

    async def interrupts(self, run: Callable[[], Awaitable[T]]) -> T:
        """The result of `run()`; a stop by signal raises `Interrupted`, naming how to resume.

        `run` is called here, so that a command ended before it starts leaves no coroutine
        never awaited."""
        try:
            return await run()
        except RunStopped as stop:
            but = f"; but: {stop.failure}" if stop.failure is not None else ""
            signum = self.signals.received or signal.SIGINT
            message = f"{self.signals.name}: {stop}; resume with: {self.resume}{but}"
            raise Interrupted(signum, message) from None


@contextmanager
def long_lived() -> Iterator[None]:
    """Keep Python's cycle collector off the run's job graph while the run goes.

    Tens of thousands of jobs and slots live for the whole run; every full collection would walk
    them all again for nothing (about a tenth of a zero-latency run's time). Freezing moves them
    out of the collector's sight, and a larger first-generation threshold spaces out collections
    of the short-lived garbage; both are undone afterwards.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
