"""A clock for `engine.endpoints.clock.Clock` whose time moves only when a test moves it.

Sleepers and timers wait in one heap; `run_until` jumps from one deadline to the next (firing it,
then letting the event loop run everything that became ready) until a condition holds, so minutes
of pacing, pauses and silences play out in milliseconds and in the same order every time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

START = 1000.0
SETTLE_TURNS = 50  # event-loop turns after each timer: every task it woke runs to its next await


class FakeTimer:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    def __init__(self, start: float = START) -> None:
        self.now = start
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._order = itertools.count()  # equal deadlines fire in the order they were set

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not woken.done():  # a sleeper cancelled meanwhile stays cancelled
                woken.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await woken
        finally:
            timer.cancel()

    def call_later(self, seconds: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(callback)
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._order), timer))
        return timer

    def _next_deadline(self) -> float | None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    async def _fire_next(self) -> None:
        deadline, _, timer = heapq.heappop(self._timers)
        self.now = max(self.now, deadline)
        timer.callback()
        await self.settle()

    async def settle(self) -> None:
        """Let every task that can run without time passing do so."""
        for _ in range(SETTLE_TURNS):
            await asyncio.sleep(0)

    async def run_until(self, condition: Callable[[], bool], *, within: float) -> None:
        """Move time from deadline to deadline until `condition()` holds; AssertionError if it
        does not within `within` seconds of this clock."""
        limit = self.now + within
        await self.settle()
        while not condition():
            deadline = self._next_deadline()
            if deadline is None or deadline > limit:
                raise AssertionError(f"still not so after {within}s on the fake clock")
            await self._fire_next()
