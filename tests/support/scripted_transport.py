"""An in-process `engine.endpoints.transport.Transport` that plays a script on a fake clock.

Each call the pool sends is recorded (when, on which URL, which request) and answered by the next
step of the script: an answer after some seconds, a trickle of bytes, an HTTP refusal (classified
by the engine's own `error_for_status`, Retry-After included), or silence until cancelled. For
what the pool decides from times and statuses (pacing, pauses, twins, stalls); what a socket shows
stays tested over sockets (tests/test_tail.py, tests/test_rate_limit_pause.py, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from engine.chat import ChatResponse
from engine.endpoints.providers import HttpCall
from engine.endpoints.retry import error_for_status
from engine.endpoints.transport import Progress
from tests.support.fakeclock import FakeClock


@dataclass(frozen=True)
class Answer:
    """A whole answer, `after` seconds of silence."""

    text: str = "ok"
    after: float = 0.0
    prompt_tokens: int = 10
    completion_tokens: int = 5


@dataclass(frozen=True)
class Trickle:
    """An answer streamed as `pieces` bytes, one every `every` seconds."""

    every: float
    pieces: int
    text: str = "slow but steady"


@dataclass(frozen=True)
class Refuse:
    """An HTTP error status, `after` seconds in."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    after: float = 0.0


@dataclass(frozen=True)
class Hang:
    """Headers, then silence until the attempt is cancelled."""


Step = Answer | Trickle | Refuse | Hang
INSTANT = Answer()


@dataclass(frozen=True)
class Sent:
    at: float
    base_url: str
    body: dict[str, object]

    @property
    def content(self) -> str:
        messages = self.body["messages"]
        assert isinstance(messages, list)
        return str(messages[-1]["content"])


class ScriptedTransport:
    def __init__(self, clock: FakeClock, steps: Sequence[Step] = (), then: Step = INSTANT) -> None:
        self.clock = clock
        self.steps = list(steps)
        self.then = then
        self.sent: list[Sent] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.cancelled = 0
        self.closed = False

    async def send(self, call: HttpCall, base_url: str, progress: Progress) -> ChatResponse:
        step = self.steps[len(self.sent)] if len(self.sent) < len(self.steps) else self.then
        self.sent.append(Sent(self.clock.monotonic(), base_url, orjson.loads(call.body)))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._play(step, base_url, progress)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1

    async def _play(self, step: Step, base_url: str, progress: Progress) -> ChatResponse:
        progress.touch()  # the response headers
        if isinstance(step, Hang):
            await asyncio.get_running_loop().create_future()
        if isinstance(step, Refuse):
            await self.clock.sleep(step.after)
            raise error_for_status(step.status, step.headers, "scripted", f"fake at {base_url}")
        if isinstance(step, Trickle):
            for _ in range(step.pieces):
                await self.clock.sleep(step.every)
                progress.touch()
            return ChatResponse(step.text, "stop", 10, step.pieces)
        assert isinstance(step, Answer)
        await self.clock.sleep(step.after)
        progress.touch()
        return ChatResponse(step.text, "stop", step.prompt_tokens, step.completion_tokens)

    async def close(self) -> None:
        self.closed = True
