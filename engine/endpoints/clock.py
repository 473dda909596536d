"""The time an endpoint paces itself by: a seam, so pacing can be tested without waiting.

Every wait of the endpoint layer (the tokens/min window, a 429's pause, a retry's backoff, the
watchdog's looks at silent attempts) and every instant it compares (silences, latencies, a URL's
cooldown) goes through one `Clock`. A run uses `SystemClock`: the monotonic clock and the event
loop's own timers. A test hands the pool a clock whose time moves only when the test says so, and
sees in microseconds what a night would show in minutes.

The one wait outside it is the requests/min window: that is asyncio-throttle's, which reads
`time.monotonic` and calls `asyncio.sleep` itself, so it keeps real time whatever clock the pool
is given (tests/test_limits.py and tests/test_rate_limits.py pace it in real time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "Timer"]


class Timer(Protocol):
    def cancel(self) -> None:
        """Never call the callback (harmless once it has been called)."""
        ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock."""
        ...

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Call `callback` from the event loop once `seconds` have passed on this clock."""
        ...


class SystemClock:
    """The real clock: `time.monotonic` and the running event loop's timers."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(seconds, callback)


SYSTEM_CLOCK = SystemClock()
