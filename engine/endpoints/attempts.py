"""One request's life in an endpoint pool: the queue it waits in, its attempts, how it ended.

A request is sent in rounds: a retry starts a new round, a twin does not (it races an attempt in
flight, so a request whose answers are merely slow does not use up `max_attempts` on twins). Up to
two attempts of one request may be in flight at once; whichever answers first decides, and
`on_done` is called exactly once. Between attempts a request waits in the endpoint's FIFO queue;
a retry or a twin goes back to its front, as it has waited its turn already.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from engine.chat import ChatRequest, ChatResponse
from engine.endpoints.balancer import BaseUrl
from engine.endpoints.transport import Progress
from engine.errors import RequestError

__all__ = ["Attempt", "CancelReason", "OnDone", "Outcome", "PendingRequest", "RequestQueue"]

# Why the watchdog cancelled an attempt: silent far too long, or its twin made it moot.
CancelReason = Literal["stalled", "superseded"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a request ended: a response, or the error that ended its last attempt."""

    response: ChatResponse | None
    attempts: int
    error: RequestError | None = None
    release: Callable[[], None] = field(default=lambda: None, compare=False)


OnDone = Callable[[Outcome], None]


@dataclass(slots=True, eq=False)
class PendingRequest:
    """One request, from submit to its single `on_done`; it may have two attempts in flight."""

    request: ChatRequest
    on_done: OnDone
    attempts: int = 0  # rounds sent; a twin is not one
    live: list[Attempt] = field(default_factory=list)
    queued: bool = True  # in the queue, or due back in it after a backoff
    twins: int = 0  # sent in this round of attempts
    stalls: int = 0  # rounds cut as stalled: each one doubles the silence the next may keep
    finished: bool = False

    def begin(self, attempt: Attempt) -> None:
        """An attempt leaves; the first of a round counts as an attempt."""
        if not self.live:
            self.attempts += 1
        self.live.append(attempt)
        attempt.base.outstanding += 1

    def end(self, attempt: Attempt) -> None:
        """An attempt is over (answered, failed or cancelled); ending it twice is harmless."""
        if attempt in self.live:
            self.live.remove(attempt)
            attempt.base.outstanding -= 1


@dataclass(slots=True, eq=False)
class Attempt:
    """One HTTP attempt at a request, on one base URL, in the concurrency epoch it was sent in."""

    pending: PendingRequest
    epoch: int
    base: BaseUrl
    tokens: list[float] | None  # its entry in the tokens/min window, corrected from usage
    progress: Progress
    task: asyncio.Task[None] | None = None
    cancelled_as: CancelReason | None = None

    def cancel(self, reason: CancelReason) -> None:
        self.cancelled_as = reason
        if self.task is not None:
            self.task.cancel()


class RequestQueue:
    """The endpoint's requests waiting for an attempt, in order; the dispatcher waits on it."""

    def __init__(self) -> None:
        self._waiting: deque[PendingRequest] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._waiting)

    def append(self, pending: PendingRequest) -> None:
        pending.queued = True
        self._waiting.append(pending)
        self._ready.set()

    def push_front(self, pending: PendingRequest) -> None:
        """A retry or a twin: it has waited its turn already."""
        pending.queued = True
        self._waiting.appendleft(pending)
        self._ready.set()

    async def wait(self) -> None:
        """Until something is queued."""
        while not self._waiting:
            self._ready.clear()
            await self._ready.wait()

    def next_wanted(self) -> PendingRequest | None:
        """The next request still wanting an attempt (a queued twin may have become moot)."""
        while self._waiting:
            pending = self._waiting.popleft()
            pending.queued = False
            if not pending.finished:
                return pending
        return None

    def take_all(self) -> list[PendingRequest]:
        """Empty the queue; what it held, in order."""
        taken = list(self._waiting)
        self._waiting.clear()
        for pending in taken:
            pending.queued = False
        return taken
