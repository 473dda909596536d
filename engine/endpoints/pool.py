"""One endpoint (a model's server pool, or the judge API): a FIFO queue, one dispatcher, a watchdog.

The dispatcher is the only task that waits on the endpoint's limiters. It takes the next request,
waits for the 429 pause, a concurrency slot, the requests/min window and the tokens/min window,
then starts the attempt as its own task on the least-loaded base URL. Attempts that fail with a
retryable error come back to the front of the queue after their backoff; a 429 pauses the whole
endpoint (never longer than `max_retry_after`) and halves its concurrency. A 401/403/404 or a
redirect kills the endpoint: every queued and future request fails at once with that one message,
so a bad key costs one request, not thousands. So does an endpoint that has never answered and
refuses every connection, or accepts them and never says a word.

The watchdog looks at the attempts in flight a few times a second and applies
`engine.endpoints.tail`: an attempt silent for too long for this endpoint gets a twin (first answer
wins), and one silent for far too long is cancelled as stalled and retried. Streaming answers are
never cut while bytes flow.

A successful attempt keeps its concurrency slot until the caller calls `Outcome.release`, once
the result is committed: answers received but not yet durable never exceed the concurrency, which
bounds what a crash can make us pay twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from engine.chat import ChatRequest, ChatResponse
from engine.config import EndpointConfig
from engine.endpoints.balancer import BaseUrl, UrlBalancer
from engine.endpoints.limits import AdaptiveConcurrency, Pause, RequestRate, TokenWindow
from engine.endpoints.providers import Provider, provider_for
from engine.endpoints.retry import backoff_delay
from engine.endpoints.tail import HedgeBudget, SilenceTracker, TailPolicy, check_interval
from engine.endpoints.transport import HttpTransport, Progress
from engine.errors import FatalRequestError, RequestError, RetryableError, ServerFailed
from engine.reasoning import unsupported_parameter_hint


class ServerLease(Protocol):
    """A model server the endpoint starts for its first request (`engine.serving.sweep`)."""

    async def acquire(self, on_death: Callable[[ServerFailed], None]) -> list[str]:
        """Wait for slots and ready servers; their base URLs (ServerFailed if one won't run)."""
        ...

    async def release(self) -> None:
        """Stop the server and free its slot (every caller waits until that is done)."""
        ...

    @property
    def status(self) -> str | None:
        """What its server is doing while it holds a slot (queued, starting, serving)."""


__all__ = ["EndpointPool", "EndpointStats", "Outcome"]

log = logging.getLogger(__name__)

# Rounds of one request cut as stalled, with no answer from the endpoint ever, before it is failed:
# the second round already waited twice as long, so a slow server is told from a stuck one.
STALLS_BEFORE_DEAD = 2
MAX_TWINS = 3  # twins per round of attempts: a request whose twins all go silent too is stalling


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a request ended: a response, or the error that ended its last attempt."""

    response: ChatResponse | None
    attempts: int
    error: RequestError | None = None
    release: Callable[[], None] = field(default=lambda: None, compare=False)


OnDone = Callable[[Outcome], None]
Supervise = Callable[[asyncio.Task[Any]], None]


@dataclass(slots=True)
class EndpointStats:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    retries: int = 0
    rate_limited: int = 0
    hedged: int = 0  # twins sent for attempts that went silent
    stalled: int = 0  # attempts given up after too long a silence
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class _Pending:
    """One request, from submit to its single `on_done`; it may have two attempts in flight."""

    request: ChatRequest
    on_done: OnDone
    attempts: int = 0  # rounds sent; a twin is not one (see `_launch`)
    live: list[_Attempt] = field(default_factory=list)
    queued: bool = True
    twins: int = 0  # sent in this round of attempts
    stalls: int = 0  # rounds cut as stalled: each one doubles the silence the next may keep
    finished: bool = False


@dataclass(slots=True, eq=False)
class _Attempt:
    pending: _Pending
    epoch: int
    base: BaseUrl
    tokens: list[float] | None
    progress: Progress = field(default_factory=Progress)
    task: asyncio.Task[None] | None = None
    cancelled_as: str | None = None  # "stalled" or "superseded" when the watchdog cancels it


class EndpointPool:
    def __init__(
        self,
        config: EndpointConfig,
        *,
        rng: random.Random | None = None,
        lifecycle: ServerLease | None = None,
    ) -> None:
        self.config = config
        self.provider: Provider = provider_for(config.api)
        self.stats = EndpointStats()
        self.dead: FatalRequestError | None = None
        self._queue: deque[_Pending] = deque()
        self._ready = asyncio.Event()
        self._urls = UrlBalancer(config.base_urls)
        self._transport = HttpTransport(config.name, config.timeout)
        self._concurrency = AdaptiveConcurrency(config.concurrency)
        self._rate = RequestRate(config.rpm)
        self._tokens = TokenWindow(config.tpm)
        self._pause = Pause()
        thinks = config.reasoning or config.thinking is not None
        self._policy = TailPolicy(config.hedge_after, config.stall_timeout, thinks=thinks)
        self._silences = SilenceTracker()
        self._hedges = HedgeBudget(config.concurrency)
        self._rng = rng or random.Random()
        self._tasks: dict[asyncio.Task[None], _Attempt] = {}
        self._stopping = False
        self._dispatcher: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._lifecycle = lifecycle
        self._needs_server = lifecycle is not None
        self._release_task: asyncio.Task[None] | None = None
        self._supervise: Supervise | None = None
        self._warned_retry_after = False

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def server_status(self) -> str | None:
        return None if self._lifecycle is None else self._lifecycle.status

    @property
    def paused_until(self) -> float | None:
        """The monotonic time a 429 pause ends, while one is on."""
        return self._pause.until if self._pause.until > time.monotonic() else None

    def start(self, supervise: Supervise | None = None) -> None:
        """Start the dispatcher and the watchdog. `supervise` is handed every task the pool
        starts (theirs, each attempt's, a server's release), so that none can die unseen."""
        self._supervise = supervise
        self._dispatcher = self._supervised(self._dispatch(), f"dispatch:{self.name}")
        self._watchdog = self._supervised(self._watch(), f"watch:{self.name}")

    def submit(self, request: ChatRequest, on_done: OnDone) -> None:
        """Queue a request; `on_done` is called exactly once, from the event loop."""
        pending = _Pending(request, on_done)
        if self.dead is not None:
            self._fail(pending, self.dead)
            return
        self._queue.append(pending)
        self._ready.set()

    def finished(self) -> None:
        """Every job of this endpoint is done: a server the engine started can go."""
        if self._lifecycle is not None and self._release_task is None:
            self._release_task = self._supervised(self._lifecycle.release(), "server-release")

    def stop_dispatching(self) -> None:
        """Send nothing more; queued requests and pending retries are dropped, not failed.

        The watchdog keeps running, so a stalled attempt cannot hold a graceful stop open."""
        self._stopping = True
        self._queue.clear()
        if self._dispatcher is not None:
            self._dispatcher.cancel()

    async def drain(self) -> None:
        """Wait for the attempts in flight to finish (they may already be paid for)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def abort(self) -> None:
        """Cancel the attempts in flight now."""
        for task in self._tasks:
            task.cancel()

    async def close(self) -> None:
        """Stop, cancel whatever is still in flight, close the HTTP session."""
        self.stop_dispatching()
        if self._watchdog is not None:
            self._watchdog.cancel()
        await asyncio.gather(
            *(t for t in (self._dispatcher, self._watchdog) if t is not None),
            return_exceptions=True,
        )
        self.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._transport.close()
        if self._lifecycle is not None:
            await self._lifecycle.release()

    def _supervised(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A task whose unexpected death is reported, never silently dropped."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        if self._supervise is not None:
            self._supervise(task)
        else:
            task.add_done_callback(self._log_crash)
        return task

    def _log_crash(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: internal error in %s: %r", self.name, task.get_name(), task.exception())

    async def _dispatch(self) -> None:
        while not self._stopping:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            if self._needs_server:
                await self._start_server()
                continue
            await self._pause.wait()
            await self._concurrency.acquire()
            pending = self._next_pending()
            if pending is None:
                self._concurrency.release()
                continue
            await self._rate.acquire()
            request = pending.request
            handle = await self._tokens.acquire(
                request.estimated_prompt_tokens() + request.max_tokens
            )
            # A 429 that came back while this request waited for a slot or a window (the usual
            # case when every slot is busy) pauses it too; its epoch is the one it is sent in.
            await self._pause.wait()
            epoch = self._concurrency.epoch
            self._launch(_Attempt(pending, epoch, self._urls.pick(), handle))

    def _next_pending(self) -> _Pending | None:
        """The next request still wanting an attempt (a queued twin may have become moot)."""
        while self._queue and self.dead is None:
            pending = self._queue.popleft()
            pending.queued = False
            if not pending.finished:
                return pending
        return None

    def _launch(self, attempt: _Attempt) -> None:
        if not attempt.pending.live:  # a twin races an attempt in flight: it is not a new try
            attempt.pending.attempts += 1
        attempt.pending.live.append(attempt)
        attempt.base.outstanding += 1
        self.stats.sent += 1
        task = self._supervised(self._attempt(attempt), f"attempt:{self.name}")
        attempt.task = task
        self._tasks[task] = attempt
        task.add_done_callback(self._tasks.pop)

    async def _start_server(self) -> None:
        """First request of a served model: wait for a slot and a ready server."""
        assert self._lifecycle is not None
        self._needs_server = False
        try:
            urls = await self._lifecycle.acquire(on_death=self._server_died)
        except ServerFailed as error:
            self._kill(FatalRequestError("server", str(error), endpoint_fatal=True))
            return
        self._urls.replace(urls)

    def _server_died(self, error: ServerFailed) -> None:
        if self._release_task is None and not self._stopping:
            self._kill(FatalRequestError("server", str(error), endpoint_fatal=True))

    async def _attempt(self, attempt: _Attempt) -> None:
        keep_slot = False
        try:
            try:
                response = await self._send(attempt)
            except asyncio.CancelledError:
                if attempt.cancelled_as is None:
                    raise  # the run is being aborted
                _uncancel()
                self._end(attempt)
                if attempt.cancelled_as == "stalled":
                    self._on_error(attempt, self._stalled_error(attempt))
                return
            except RequestError as error:
                self._end(attempt)
                self._on_error(attempt, error)
                return
            self._end(attempt)
            keep_slot = self._on_success(attempt, response)
        finally:
            if attempt in attempt.pending.live:
                self._end(attempt)
            if not keep_slot:
                self._concurrency.release()

    async def _send(self, attempt: _Attempt) -> ChatResponse:
        config = self.config
        try:
            call = self.provider.build(
                attempt.pending.request, attempt.base.url, config.api_key, stream=config.stream
            )
        except Exception as exc:
            raise FatalRequestError(
                "internal",
                f"{self.name}: cannot build the request ({type(exc).__name__}: {exc})",
                endpoint_fatal=False,
            ) from None
        return await self._transport.send(
            self.provider, call, attempt.base.url, stream=config.stream, progress=attempt.progress
        )

    def _end(self, attempt: _Attempt) -> None:
        attempt.pending.live.remove(attempt)
        attempt.base.outstanding -= 1

    def _on_success(self, attempt: _Attempt, response: ChatResponse) -> bool:
        """Deliver the first answer of a request; True if the caller now holds the slot."""
        pending = attempt.pending
        self._urls.connected(attempt.base)
        self._tokens.correct(attempt.tokens, response.total_tokens)
        self._concurrency.on_success()
        self._silences.record(max(attempt.progress.longest_silence, 0.0))
        self._hedges.earn()
        self.stats.ok += 1
        self.stats.prompt_tokens += response.prompt_tokens or 0
        self.stats.completion_tokens += response.completion_tokens or 0
        if pending.finished:
            return False  # its twin answered first
        pending.finished = True
        for twin in pending.live:
            self._cancel(twin, "superseded")
        latency = time.monotonic() - attempt.progress.started
        outcome = Outcome(
            replace(response, latency=latency), pending.attempts, release=self._concurrency.release
        )
        pending.on_done(outcome)
        return True

    def _on_error(self, attempt: _Attempt, error: RequestError) -> None:
        pending = attempt.pending
        self.stats.errors[error.error_class] = self.stats.errors.get(error.error_class, 0) + 1
        if pending.finished:
            return
        if isinstance(error, FatalRequestError):
            error = self._explained(error)
            if error.endpoint_fatal:
                self._kill(error)
            self._fail(pending, error)
            return
        if self._stopping:
            return  # interrupted, not failed: the next run picks it up
        if error.error_class in ("connection", "unreachable"):
            self._urls.connection_failed(attempt.base)
        if error.error_class == "unreachable" and self._urls.refused(
            attempt.base, ever_answered=self.stats.ok > 0
        ):
            self._kill(self._never_answered(error, "is the server running? check base_url"))
        if self.dead is not None:
            self._fail(pending, self.dead)
            return
        if pending.live or pending.queued:
            return  # its twin is still on the way: that one decides
        if error.error_class == "stalled":
            pending.stalls += 1
            if self._never_answers(pending):
                dead = self._never_answered(error, "is the server stuck? check its logs")
                self._kill(dead)
                self._fail(pending, dead)
                return
        if pending.attempts >= self.config.max_attempts:
            self._fail(pending, error)
            return
        self._retry(pending, error, attempt.epoch)

    def _explained(self, error: FatalRequestError) -> FatalRequestError:
        """A 400 about a parameter reasoning models refuse says which key to set. Every request
        to the endpoint carries the same parameters, so none can succeed: the endpoint is done."""
        hint = unsupported_parameter_hint(str(error), self.config) if error.status == 400 else None
        if hint is None:
            return error
        message = f"{error}; {hint}"
        return FatalRequestError(error.error_class, message, status=400, endpoint_fatal=True)

    def _retry(self, pending: _Pending, error: RequestError, epoch: int) -> None:
        self.stats.retries += 1
        pending.twins = 0
        wait = self._capped(error.retry_after)
        if error.error_class == "rate_limit":
            self.stats.rate_limited += 1
            self._concurrency.on_rate_limited(epoch)
            self._pause.extend(
                wait if wait is not None else backoff_delay(pending.attempts, rng=self._rng)
            )
            self._requeue(pending)
            return
        delay = backoff_delay(pending.attempts, rng=self._rng)
        if wait is not None:
            delay = max(delay, wait)
        pending.queued = True  # not dispatchable yet, but spoken for: no second requeue
        asyncio.get_running_loop().call_later(delay, self._requeue, pending)

    def _capped(self, retry_after: float | None) -> float | None:
        """The server's requested wait, never above `max_retry_after`."""
        cap = self.config.max_retry_after
        if retry_after is None or retry_after <= cap:
            return retry_after
        if not self._warned_retry_after:
            self._warned_retry_after = True
            log.warning(
                "%s asked to wait %.0fs before retrying; waiting %gs instead (max_retry_after)",
                self.name,
                min(retry_after, 1e12),
                cap,
            )
        return cap

    def _never_answers(self, pending: _Pending) -> bool:
        return self.stats.ok == 0 and pending.stalls >= STALLS_BEFORE_DEAD

    def _never_answered(self, error: RequestError, hint: str) -> FatalRequestError:
        return FatalRequestError("unreachable", f"{error}; {hint}", endpoint_fatal=True)

    def _stalled_error(self, attempt: _Attempt) -> RetryableError:
        self.stats.stalled += 1
        silence = time.monotonic() - attempt.progress.last
        return RetryableError(
            "stalled",
            f"{self.name} at {attempt.base.url}: no bytes for {silence:.0f}s, far longer than "
            "this endpoint's answers take (stall_timeout)",
        )

    def _requeue(self, pending: _Pending) -> None:
        pending.queued = False
        if self._stopping or pending.finished:
            return
        if self.dead is not None:
            self._fail(pending, self.dead)
            return
        pending.queued = True
        self._queue.appendleft(pending)
        self._ready.set()

    async def _watch(self) -> None:
        """Hedge silent attempts and cancel stalled ones (see engine.endpoints.tail)."""
        interval = 1.0
        while True:
            await asyncio.sleep(interval)
            if not self._tasks:
                continue
            # once per look: the thresholds sort the recent silences
            hedge_after = self._policy.hedge_threshold(self._silences)
            stall_after = self._policy.stall_threshold(self._silences)
            self._check_attempts(time.monotonic(), hedge_after, stall_after)
            interval = check_interval(hedge_after, stall_after)

    def _check_attempts(self, now: float, hedge_after: float | None, stall_after: float) -> None:
        silent: dict[int, _Pending] = {}
        for attempt in list(self._tasks.values()):
            pending = attempt.pending
            if attempt.cancelled_as is not None or pending.finished:
                continue
            silence = attempt.progress.silence(now)
            if silence >= self._policy.patience(stall_after, pending.stalls):
                self._cancel(attempt, "stalled")
            elif hedge_after is not None and silence >= hedge_after:
                silent[id(pending)] = pending
        if self._stopping:
            return
        for pending in silent.values():
            if self._wants_twin(pending, now, hedge_after or 0.0):
                self._send_twin(pending)

    def _wants_twin(self, pending: _Pending, now: float, hedge_after: float) -> bool:
        """Every attempt of the request is silent past the threshold, and a twin is affordable."""
        return (
            not pending.queued
            and pending.twins < MAX_TWINS
            and all(a.progress.silence(now) >= hedge_after for a in pending.live)
            and self._hedges.spend()
        )

    def _send_twin(self, pending: _Pending) -> None:
        """Queue the request again at the front; of its silent attempts, keep only the newest."""
        for older in pending.live[:-1]:
            self._cancel(older, "superseded")
        pending.twins += 1
        self.stats.hedged += 1
        pending.queued = True
        self._queue.appendleft(pending)
        self._ready.set()

    def _cancel(self, attempt: _Attempt, reason: str) -> None:
        attempt.cancelled_as = reason
        if attempt.task is not None:
            attempt.task.cancel()

    def _kill(self, error: FatalRequestError) -> None:
        if self.dead is None:
            self.dead = error
            log.error("%s: %s; failing all its requests", self.name, error)
        while self._queue:
            pending = self._queue.popleft()
            pending.queued = False
            if not pending.live:  # one still in flight decides for itself
                self._fail(pending, error)

    def _fail(self, pending: _Pending, error: RequestError) -> None:
        if pending.finished:
            return
        pending.finished = True
        self.stats.failed += 1
        pending.on_done(Outcome(None, pending.attempts, error))


def _uncancel() -> None:
    """Forget a cancellation this code asked for itself (Python 3.11+ keeps count of them)."""
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()
