"""The endpoint pool's timing, on a fake clock and a scripted in-process transport: tokens/min
pacing, the 429 pause, when a silent attempt gets a twin, when one is cut as stalled. Minutes of
endpoint time play out in milliseconds, at exact instants.

The requests/min window is asyncio-throttle's, which keeps real time whatever clock the pool is
given: every endpoint here has a rate far above what a test sends (NON_BINDING_RPM), so the
dispatcher passes through the throttler without waiting, and the rate itself is tested in real
time (tests/test_limits.py) and over a socket (tests/test_rate_limits.py).

What a socket shows (the same behaviours against the fake server over 127.0.0.1) stays tested
over sockets: tests/test_rate_limits.py, tests/test_rate_limit_pause.py, tests/test_tail.py.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import pytest

from engine.chat import ChatRequest
from engine.config import EndpointConfig
from engine.endpoints.pool import EndpointPool, Outcome
from tests.support.fakeclock import START, FakeClock
from tests.support.scripted_transport import (
    INSTANT,
    Answer,
    Hang,
    Refuse,
    ScriptedTransport,
    Step,
    Trickle,
)

# 6000 requests per ~second window; no test here sends more than a few dozen
NON_BINDING_RPM = 360_000


def endpoint(**options: Any) -> EndpointConfig:
    settings: dict[str, Any] = {"concurrency": 16, "max_attempts": 4, "rpm": NON_BINDING_RPM}
    return EndpointConfig(
        name="paced", model="m", base_urls=("http://paced.invalid/v1",), **{**settings, **options}
    )


def request(number: int, max_tokens: int = 100) -> ChatRequest:
    return ChatRequest("openai", "paced", "m", (("user", f"question {number}"),), max_tokens, 0.0)


class Bench:
    """A pool on a fake clock and a scripted transport; outcomes by request number."""

    def __init__(self, config: EndpointConfig, steps: Sequence[Step], then: Step) -> None:
        self.clock = FakeClock()
        self.transport = ScriptedTransport(self.clock, steps, then)
        self.pool = EndpointPool(
            config, rng=random.Random(0), transport=self.transport, clock=self.clock
        )
        self.outcomes: dict[int, Outcome] = {}
        self.ended_at: dict[int, float] = {}

    def submit(self, *numbers: int, max_tokens: int = 100) -> None:
        for number in numbers:
            self.pool.submit(request(number, max_tokens), partial(self._done, number))

    def _done(self, number: int, outcome: Outcome) -> None:
        outcome.release()  # nothing to commit: the slot is free at once, as after a commit
        self.outcomes[number] = outcome
        self.ended_at[number] = self.clock.now - START

    async def all_done(self, count: int, *, within: float) -> None:
        await self.clock.run_until(lambda: len(self.outcomes) >= count, within=within)

    def sent_at(self, number: int | None = None) -> list[float]:
        """When calls left (for one request, or all), in seconds since the start."""
        wanted = None if number is None else f"question {number}"
        return [s.at - START for s in self.transport.sent if wanted in (None, s.content)]


def play(
    config: EndpointConfig,
    scenario: Callable[[Bench], Awaitable[None]],
    steps: Sequence[Step] = (),
    then: Step = INSTANT,
) -> Bench:
    async def main() -> Bench:
        bench = Bench(config, steps, then)
        bench.pool.start()
        try:
            await scenario(bench)
        finally:
            await bench.pool.close()
        return bench

    return asyncio.run(main())


def test_tokens_per_minute_hold_a_request_until_the_oldest_estimate_leaves_the_window() -> None:
    async def scenario(bench: Bench) -> None:
        bench.submit(0, 1, 2, max_tokens=400)  # 403 tokens each with the prompt: two fit
        await bench.all_done(3, within=200)

    bench = play(endpoint(tpm=1000), scenario, then=Answer(after=90.0))
    assert bench.sent_at() == pytest.approx([0, 0, 60.0])  # no usage came back to correct them


def test_usage_from_an_answer_makes_room_in_the_token_window_at_once() -> None:
    async def scenario(bench: Bench) -> None:
        bench.submit(0, 1, 2, max_tokens=400)
        await bench.all_done(3, within=200)

    # the first answers say they used 15 tokens, not 403: the third request fits when they land
    bench = play(endpoint(tpm=1000), scenario, then=Answer(after=2.0))
    assert bench.sent_at() == pytest.approx([0, 0, 2.0])


def test_a_429_pauses_the_endpoint_for_its_retry_after_and_its_request_goes_first() -> None:
    async def scenario(bench: Bench) -> None:
        bench.submit(*range(6))
        await bench.clock.run_until(lambda: bench.pool.stats.rate_limited == 1, within=5)
        assert bench.pool.paused_until == pytest.approx(START + 1 + 7)
        await bench.all_done(6, within=60)

    refused = Refuse(429, {"retry-after": "7"}, after=1.0)
    bench = play(endpoint(concurrency=2), scenario, [refused], then=Answer(after=1.0))
    assert bench.sent_at()[:2] == [0, 0]
    # a slot was free from 1 s on; nothing left before the pause ended, the refused one first
    assert bench.sent_at()[2] == pytest.approx(8.0)
    assert bench.transport.sent[2].content == "question 0"
    assert bench.outcomes[0].response is not None and bench.outcomes[0].attempts == 2


def test_a_429_halves_the_concurrency_and_successes_grow_it_back() -> None:
    async def scenario(bench: Bench) -> None:
        bench.submit(*range(8))
        await bench.all_done(8, within=200)

    refused = Refuse(429, {"retry-after": "7"}, after=1.0)
    bench = play(endpoint(concurrency=4), scenario, [refused], then=Answer(after=30.0))
    # three still in flight fill the halved limit of 2: the refused request waits past the pause
    # for them (at 4 it would have left at 8 s), then goes first, as the limit grows back to 3
    assert bench.sent_at() == pytest.approx([0, 0, 0, 0, 30, 30, 30, 60, 60])
    assert bench.transport.sent[4].content == "question 0"


def test_a_retry_after_longer_than_max_retry_after_pauses_only_that_long() -> None:
    async def scenario(bench: Bench) -> None:
        bench.submit(0)
        await bench.all_done(1, within=200)

    refused = Refuse(429, {"retry-after": "86400"}, after=1.0)
    bench = play(endpoint(max_retry_after=30.0), scenario, [refused])
    assert bench.sent_at() == pytest.approx([0, 31.0])


def test_an_attempt_silent_past_hedge_after_gets_a_twin_and_the_first_answer_wins() -> None:
    async def scenario(bench: Bench) -> None:
        bench.submit(0)
        await bench.all_done(1, within=60)

    config = endpoint(hedge_after=5.0, stall_timeout=100.0)
    bench = play(config, scenario, [Hang(), Answer(after=1.0)])
    first, twin = bench.sent_at(0)
    look_every = 5.0 / 8  # the watchdog looks at an eighth of its shortest threshold
    assert first == 0 and 5.0 <= twin <= 5.0 + look_every
    outcome = bench.outcomes[0]
    assert outcome.response is not None and outcome.attempts == 1  # a twin is not an attempt
    assert bench.ended_at[0] == pytest.approx(twin + 1.0)
    assert bench.pool.stats.hedged == 1 and bench.transport.cancelled == 1  # the silent one


def test_an_answer_that_keeps_streaming_is_neither_twinned_nor_cut() -> None:
    async def scenario(bench: Bench) -> None:
        bench.submit(0)
        await bench.all_done(1, within=120)

    config = endpoint(hedge_after=5.0, stall_timeout=10.0)
    bench = play(config, scenario, [Trickle(every=3.0, pieces=30)])  # 90 s, never 5 s silent
    assert bench.sent_at() == [0]
    assert bench.ended_at[0] == pytest.approx(90.0)
    assert bench.pool.stats.hedged == 0 and bench.pool.stats.stalled == 0


def test_an_attempt_silent_past_stall_timeout_is_cut_and_retried() -> None:
    async def scenario(bench: Bench) -> None:
        bench.submit(0)
        await bench.all_done(1, within=60)

    bench = play(endpoint(hedge_after=0, stall_timeout=10.0), scenario, [Hang()])
    first, retry = bench.sent_at(0)
    assert first == 0 and 10.0 <= retry <= 10.5  # cut at 10 s, backoff of at most 0.5 s
    outcome = bench.outcomes[0]
    assert outcome.response is not None and outcome.attempts == 2
    assert bench.pool.stats.stalled == 1 and bench.pool.stats.errors == {"stalled": 1}


def test_an_endpoint_that_never_answers_fails_after_two_stalls_with_patience_doubled() -> None:
    async def scenario(bench: Bench) -> None:
        bench.submit(0)
        await bench.all_done(1, within=120)
        bench.submit(1)  # the endpoint is dead: failed at once, never sent
        await bench.all_done(2, within=0)

    bench = play(endpoint(hedge_after=0, stall_timeout=10.0), scenario, then=Hang())
    first, retry = bench.sent_at()
    assert first == 0 and 10.0 <= retry <= 10.5
    # the second attempt may stay silent twice as long; the watchdog looks once a second
    assert retry + 20.0 <= bench.ended_at[0] <= retry + 21.0
    for outcome in bench.outcomes.values():
        assert outcome.error is not None and outcome.error.error_class == "unreachable"
        assert "is the server stuck?" in str(outcome.error)
    assert bench.ended_at[1] == bench.ended_at[0]
