"""The pace of one endpoint: adaptive concurrency, requests/min, tokens/min and 429 pauses.

Only the endpoint's dispatcher ever waits on these, so each limiter has at most one waiter and needs
no fairness logic of its own: FIFO order comes from the endpoint queue.

- `AdaptiveConcurrency`: AIMD. Halve the limit on a 429 (once per congestion event), add 1/limit
  per success, never above the configured limit nor below 1.
- `RequestRate`: asyncio-throttle, with the minute split into short windows (about a second) so the
  rate is smooth: providers enforce "per minute" limits on sub-minute windows, and a burst of a
  whole minute's quota at once is a 429 storm waiting to happen.
- `TokenWindow`: tokens/min as a sliding 60 s window of weighted entries (prompt estimate +
  max_tokens), corrected from `usage` once the response arrives (a correction that makes room
  wakes a request waiting for it). A request larger than the window is capped to it, so it waits
  for an empty window instead of starving.
- `Pause`: the endpoint stops dispatching until a 429's Retry-After has passed.

The token window and the pause tell time by the endpoint's `Clock` (`engine.endpoints.clock`), so
a test can drive them through minutes of pacing without waiting for any of it. The request rate is
asyncio-throttle's (the package the project settled on for it), which reads `time.monotonic` and
sleeps with `asyncio.sleep` itself: it runs on the real clock, and is tested in real time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial

from asyncio_throttle import Throttler

from engine.endpoints.clock import SYSTEM_CLOCK, Clock

__all__ = ["AdaptiveConcurrency", "Pause", "RequestRate", "TokenWindow"]


class AdaptiveConcurrency:
    def __init__(self, limit: int) -> None:
        self.ceiling = limit
        self.limit = float(limit)
        self.in_use = 0
        self.epoch = 0  # bumped on each decrease; a 429 from an older epoch is the same event
        self._freed = asyncio.Event()

    async def acquire(self) -> int:
        """Take a slot; returns the epoch the request starts in."""
        while self.in_use >= max(1, int(self.limit)):
            self._freed.clear()
            await self._freed.wait()
        self.in_use += 1
        return self.epoch

    def release(self) -> None:
        self.in_use -= 1
        self._freed.set()

    def on_success(self) -> None:
        if self.limit < self.ceiling:
            self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)

    def on_rate_limited(self, started_epoch: int) -> None:
        if started_epoch == self.epoch:
            self.limit = max(1.0, self.limit / 2)
            self.epoch += 1


class RequestRate:
    """At most `rpm` requests per minute, spread evenly over windows of about a second.

    Windows are stretched by SAFETY_MARGIN: a request leaves a few milliseconds after the limiter
    lets it go, and a server counting arrivals must never see one request too many.
    """

    SAFETY_MARGIN = 1.02

    def __init__(self, rpm: int) -> None:
        self.rpm = rpm
        self._throttler: Throttler | None = None
        if rpm > 0:
            per_window = max(1, rpm // 60)
            period = 60.0 * per_window / rpm * self.SAFETY_MARGIN
            self._throttler = Throttler(
                rate_limit=per_window, period=period, retry_interval=min(0.01, period / 20)
            )

    async def acquire(self) -> None:
        if self._throttler is not None:
            await self._throttler.acquire()


class TokenWindow:
    WINDOW = 60.0

    def __init__(self, tpm: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self.tpm = tpm
        self._clock = clock
        self._entries: deque[list[float]] = deque()  # [time, weight]: weight corrected later
        self._used = 0.0
        self._room: asyncio.Future[None] | None = None  # the waiter's, while one waits

    def _expire(self, now: float) -> None:
        while self._entries and self._entries[0][0] + self.WINDOW <= now:
            self._used -= self._entries.popleft()[1]

    async def acquire(self, weight: float) -> list[float] | None:
        """Wait until `weight` tokens fit in the window; returns a handle for `correct`."""
        if self.tpm <= 0:
            return None
        weight = min(float(weight), float(self.tpm))
        while True:
            now = self._clock.monotonic()
            self._expire(now)
            if self._used + weight <= self.tpm:
                break
            await self._wait(self._wait_for(weight, now))
        entry = [now, weight]
        self._entries.append(entry)
        self._used += weight
        return entry

    def _wait_for(self, weight: float, now: float) -> float:
        needed = self._used + weight - self.tpm
        for started, entry_weight in self._entries:
            needed -= entry_weight
            if needed <= 0:
                return max(0.001, started + self.WINDOW - now)
        return self.WINDOW

    async def _wait(self, seconds: float) -> None:
        """Until `seconds` have passed, or a correction made room, whichever comes first."""
        self._room = room = asyncio.get_running_loop().create_future()
        timer = self._clock.call_later(seconds, partial(_wake, room))
        try:
            await room
        finally:
            timer.cancel()
            self._room = None

    def correct(self, handle: list[float] | None, actual: int | None) -> None:
        """Replace an estimate with the tokens the server reported (still inside the window)."""
        if handle is None or actual is None:
            return
        if self._entries and handle[0] >= self._entries[0][0]:
            delta = min(float(actual), float(self.tpm)) - handle[1]
            handle[1] += delta
            self._used += delta
            if delta < 0 and self._room is not None:
                _wake(self._room)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # a waiter cancelled meanwhile stays cancelled
        waiter.set_result(None)


class Pause:
    """Endpoint-wide pause: a 429 stops all dispatching until its Retry-After has passed."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.until = 0.0
        self._clock = clock

    def extend(self, seconds: float) -> None:
        self.until = max(self.until, self._clock.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds until the pause ends; 0 or less when there is none."""
        return self.until - self._clock.monotonic()

    async def wait(self) -> None:
        while (remaining := self.remaining()) > 0:
            await self._clock.sleep(remaining)
