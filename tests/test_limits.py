"""The endpoint limiters on their own: AIMD, the tokens/min window, the requests/min pacing.

The token window's and the pause's waits are measured on a fake clock (tests/support/fakeclock.py):
exact, and immune to a loaded machine. The request rate is asyncio-throttle's, which keeps real
time, so its pacing is measured in real time. tests/test_rate_limits.py checks the real clock's
pacing against a server over a socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import pytest

from engine.chat import ChatRequest
from engine.endpoints.limits import AdaptiveConcurrency, Pause, RequestRate, TokenWindow
from tests.support.fakeclock import FakeClock


def test_aimd_halves_once_per_congestion_event_and_grows_back() -> None:
    async def scenario() -> None:
        limit = AdaptiveConcurrency(8)
        epochs = [await limit.acquire() for _ in range(3)]
        for epoch in epochs:  # three 429s from requests started in the same epoch: one event
            limit.on_rate_limited(epoch)
        assert limit.limit == 4
        limit.on_rate_limited(await limit.acquire())
        assert limit.limit == 2
        for _ in range(200):
            limit.on_success()
        assert limit.limit == 8  # back to the ceiling, never above

    asyncio.run(scenario())


def test_aimd_never_goes_below_one_and_blocks_at_the_limit() -> None:
    async def scenario() -> None:
        limit = AdaptiveConcurrency(2)
        for _ in range(5):
            limit.on_rate_limited(limit.epoch)
        assert limit.limit == 1
        await limit.acquire()
        waiter = asyncio.ensure_future(limit.acquire())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        limit.release()
        await asyncio.wait_for(waiter, 1)

    asyncio.run(scenario())


class ShortWindow(TokenWindow):
    WINDOW = 0.3


async def timed(clock: FakeClock, wait: Awaitable[object]) -> float:
    """Fake-clock seconds until `wait` is done."""
    started = clock.now
    task = asyncio.ensure_future(wait)
    await clock.run_until(task.done, within=120)
    await task
    return clock.now - started


def test_token_window_waits_for_room_and_usage_corrections_make_room() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        window = ShortWindow(1000, clock)
        first = await window.acquire(400)
        await window.acquire(400)
        # 1200 > 1000: waits until the first entry leaves the window
        assert await timed(clock, window.acquire(400)) == pytest.approx(0.3)
        assert first is not None

        window = ShortWindow(1000, clock)
        estimate = await window.acquire(600)
        window.correct(estimate, 100)  # the server says it used 100 tokens, not 600
        assert await timed(clock, window.acquire(800)) == 0

    asyncio.run(scenario())


def test_a_correction_that_makes_room_wakes_the_request_waiting_for_it() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        window = TokenWindow(1000, clock)
        estimate = await window.acquire(600)
        waiting = asyncio.ensure_future(window.acquire(800))
        await clock.settle()
        assert not waiting.done()
        window.correct(estimate, 100)
        await clock.settle()
        assert waiting.done() and clock.now == 1000.0  # no time passed: woken, not timed out

    asyncio.run(scenario())


def test_a_request_bigger_than_the_window_is_capped_not_starved() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        assert await timed(clock, ShortWindow(1000, clock).acquire(50_000)) == 0

    asyncio.run(scenario())


def test_unlimited_limiters_never_wait() -> None:
    async def scenario() -> None:
        rate, tokens = RequestRate(0), TokenWindow(0)
        started = time.monotonic()
        for _ in range(1000):
            await rate.acquire()
            assert await tokens.acquire(10**6) is None
        assert time.monotonic() - started < 0.5

    asyncio.run(scenario())


def test_request_rate_spreads_a_minute_over_short_windows() -> None:
    """3000/min is 50 per ~second: the 51st request waits for the next window, not a minute."""

    async def scenario() -> float:
        rate = RequestRate(3000)
        started = time.monotonic()
        for _ in range(51):
            await rate.acquire()
        return time.monotonic() - started

    elapsed = asyncio.run(scenario())
    assert 1.0 <= elapsed < 2.0


def test_no_second_of_the_request_rate_ever_holds_one_request_too_many() -> None:
    """3000/min over two windows: any 51 requests in a row span at least a second, so a server
    counting 50 per second never sees a 51st (the safety margin makes it 1.02 s)."""

    async def scenario() -> list[float]:
        rate = RequestRate(3000)
        sent: list[float] = []
        for _ in range(101):
            await rate.acquire()
            sent.append(time.monotonic())
        return sent

    sent = asyncio.run(scenario())
    gaps = [later - earlier for earlier, later in zip(sent, sent[50:], strict=False)]
    assert min(gaps) >= 1.0
    assert sent[-1] - sent[0] < 4.0  # paced in windows of a second, not held for a minute


def test_pause_holds_until_retry_after_has_passed() -> None:
    async def scenario() -> float:
        clock = FakeClock()
        pause = Pause(clock)
        pause.extend(0.2)
        pause.extend(0.05)  # a shorter Retry-After never shortens a pause
        return await timed(clock, pause.wait())

    assert asyncio.run(scenario()) == pytest.approx(0.2)


def test_prompt_token_estimate_is_four_characters_per_token_rounded_up() -> None:
    request = ChatRequest("openai", "m", "m", (("user", "x" * 4001),), 1024, 0.0)
    assert request.estimated_prompt_tokens() == 1001
