"""One endpoint (a model's server pool, or the judge API): a FIFO queue and one dispatcher.

The dispatcher is the only task that waits on the endpoint's limiters. It takes the next request,
waits for the 429 pause, a concurrency slot, the requests/min window and the tokens/min window,
then starts the attempt as its own task on the least-loaded base URL. Attempts that fail with a
retryable error come back to the front of the queue after their backoff; a 429 pauses the whole
endpoint (never longer than `max_retry_after`) and halves its concurrency. A 401/403/404 or a
redirect kills the endpoint: every queued and future request fails at once with that one message,
so a bad key costs one request, not thousands. So does an endpoint that has never answered and
refuses every connection, or accepts them and never says a word.

Around it: `attempts` (a request's rounds and twins, the queue), `watchdog` (twins for silent
attempts, stalled ones cut), `recovery` (what a failed attempt means for the endpoint and how long
to wait), `lease` (a server started for the first request), and two seams a test can replace: the
`Transport` that carries each attempt and the `Clock` that every wait and silence is measured by,
but for the requests/min window: asyncio-throttle paces that one on the real clock.

A successful attempt keeps its concurrency slot until the caller calls `Outcome.release`, once
the result is committed: answers received but not yet durable never exceed the concurrency, which
bounds what a crash can make us pay twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from engine.chat import ChatRequest, ChatResponse
from engine.config import EndpointConfig
from engine.endpoints.attempts import Attempt, OnDone, Outcome, PendingRequest, RequestQueue
from engine.endpoints.balancer import BaseUrl, UrlBalancer
from engine.endpoints.clock import SYSTEM_CLOCK, Clock
from engine.endpoints.lease import ServerLease, ServerStart
from engine.endpoints.limits import AdaptiveConcurrency, Pause, RequestRate, TokenWindow
from engine.endpoints.providers import Provider, provider_for
from engine.endpoints.recovery import (
    STALLS_BEFORE_DEAD,
    RetryWait,
    build_failed,
    explained,
    never_answered,
    stalled_error,
)
from engine.endpoints.transport import HttpTransport, Progress, Transport
from engine.endpoints.watchdog import Watchdog
from engine.errors import FatalRequestError, RequestError

__all__ = ["EndpointPool", "EndpointStats", "OnDone", "Outcome"]

log = logging.getLogger(__name__)

Supervise = Callable[[asyncio.Task[Any]], None]


@dataclass(slots=True)
class EndpointStats:
    ok: int = 0
    retries: int = 0
    rate_limited: int = 0
    hedged: int = 0  # twins sent for attempts that went silent
    stalled: int = 0  # attempts given up after too long a silence
    errors: dict[str, int] = field(default_factory=dict)


class EndpointPool:
    def __init__(
        self,
        config: EndpointConfig,
        *,
        rng: random.Random | None = None,
        lifecycle: ServerLease | None = None,
        transport: Transport | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        self.stats = EndpointStats()
        self.dead: FatalRequestError | None = None
        self._provider: Provider = provider_for(config.api)
        self._transport = transport or HttpTransport(
            config.name, config.timeout, self._provider, stream=config.stream
        )
        self._clock = clock
        self._queue = RequestQueue()
        self._urls = UrlBalancer(config.base_urls, clock)
        self._concurrency = AdaptiveConcurrency(config.concurrency)
        self._rate = RequestRate(config.rpm)  # asyncio-throttle keeps real time, not `clock`
        self._tokens = TokenWindow(config.tpm, clock)
        self._pause = Pause(clock)
        self._waits = RetryWait(config, rng or random.Random())
        self._watchdog = Watchdog(config)
        self._server = ServerStart(lifecycle, on_death=self._server_died)
        self._tasks: dict[asyncio.Task[None], Attempt] = {}
        self._stopping = False
        self._dispatcher: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._supervise: Supervise | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def server_status(self) -> str | None:
        """What its server is doing while it holds a slot (queued, starting, serving)."""
        return self._server.status

    @property
    def paused_until(self) -> float | None:
        """The monotonic time a 429 pause ends, while one is on."""
        return self._pause.until if self._pause.remaining() > 0 else None

    def start(self, supervise: Supervise | None = None) -> None:
        """Start the dispatcher and the watchdog. `supervise` is handed every task the pool
        starts (theirs, each attempt's, a server's release), so that none can die unseen."""
        self._supervise = supervise
        self._dispatcher = self._supervised(self._dispatch(), f"dispatch:{self.name}")
        self._watcher = self._supervised(self._watch(), f"watch:{self.name}")

    def submit(self, request: ChatRequest, on_done: OnDone) -> None:
        """Queue a request; `on_done` is called exactly once, from the event loop."""
        pending = PendingRequest(request, on_done)
        if self.dead is not None:
            self._fail(pending, self.dead)
            return
        self._queue.append(pending)

    def finished(self) -> None:
        """Every job of this endpoint is done: a server the engine started can go."""
        release = self._server.release()
        if release is not None:
            self._supervised(release, "server-release")

    def stop_dispatching(self) -> None:
        """Send nothing more; queued requests and pending retries are dropped, not failed.

        The watchdog keeps running, so a stalled attempt cannot hold a graceful stop open."""
        self._stopping = True
        self._queue.take_all()
        if self._dispatcher is not None:
            self._dispatcher.cancel()

    async def drain(self) -> None:
        """Wait for the attempts in flight to finish (they may already be paid for)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def abort(self) -> None:
        """Cancel the attempts in flight now."""
        for task in self._tasks:
            task.cancel()

    def hurry_server(self) -> None:
        """The run is aborted: a server it started is killed if it has not ended seconds after
        its SIGTERM (a scheduler's SIGKILL follows soon), not after `stop_timeout`."""
        self._server.hurry()

    async def close(self) -> None:
        """Stop, cancel whatever is still in flight, close the transport, stop the server."""
        self.stop_dispatching()
        if self._watcher is not None:
            self._watcher.cancel()
        await asyncio.gather(
            *(t for t in (self._dispatcher, self._watcher) if t is not None),
            return_exceptions=True,
        )
        self.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._transport.close()
        await self._server.close()

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
            await self._queue.wait()
            if self._server.due:
                await self._start_server()
                continue
            await self._pause.wait()
            await self._concurrency.acquire()
            pending = self._queue.next_wanted() if self.dead is None else None
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
            self._launch(Attempt(pending, epoch, self._urls.pick(), handle, Progress(self._clock)))

    def _launch(self, attempt: Attempt) -> None:
        attempt.pending.begin(attempt)
        task = self._supervised(self._attempt(attempt), f"attempt:{self.name}")
        attempt.task = task
        self._tasks[task] = attempt
        task.add_done_callback(self._tasks.pop)

    async def _start_server(self) -> None:
        """First request of a served model: wait for a slot and a ready server."""
        try:
            self._urls.replace(await self._server.start())
        except FatalRequestError as error:
            self._kill(error)

    def _server_died(self, error: FatalRequestError) -> None:
        if not self._stopping:
            self._kill(error)

    async def _attempt(self, attempt: Attempt) -> None:
        keep_slot = False
        try:
            result = await self._result(attempt)
            attempt.pending.end(attempt)
            if isinstance(result, ChatResponse):
                keep_slot = self._on_success(attempt, result)
            elif result is not None:
                self._on_error(attempt, result)
        finally:
            attempt.pending.end(attempt)
            if not keep_slot:
                self._concurrency.release()

    async def _result(self, attempt: Attempt) -> ChatResponse | RequestError | None:
        """The attempt's answer or the error that ended it; None if its twin made it moot."""
        try:
            return await self._send(attempt)
        except asyncio.CancelledError:
            if attempt.cancelled_as is None:
                raise  # the run is being aborted
            _uncancel()
            if attempt.cancelled_as == "superseded":
                return None
            self.stats.stalled += 1
            silence = attempt.progress.silence(self._clock.monotonic())
            return stalled_error(self._where(attempt.base), silence)
        except RequestError as error:
            return error

    async def _send(self, attempt: Attempt) -> ChatResponse:
        config = self.config
        try:
            call = self._provider.build(
                attempt.pending.request, attempt.base.url, config.api_key, stream=config.stream
            )
        except RequestError:
            raise
        except Exception as exc:
            raise build_failed(self.name, exc) from None
        return await self._transport.send(call, attempt.base.url, attempt.progress)

    def _where(self, base: BaseUrl) -> str:
        return f"{self.name} at {base.url}"

    def _on_success(self, attempt: Attempt, response: ChatResponse) -> bool:
        """Deliver the first answer of a request; True if the caller now holds the slot."""
        pending = attempt.pending
        self._urls.connected(attempt.base)
        self._tokens.correct(attempt.tokens, response.total_tokens)
        self._concurrency.on_success()
        self._watchdog.answered(attempt.progress)
        self.stats.ok += 1
        if pending.finished:
            return False  # its twin answered first
        pending.finished = True
        for twin in pending.live:
            twin.cancel("superseded")
        latency = self._clock.monotonic() - attempt.progress.started
        outcome = Outcome(
            replace(response, latency=latency), pending.attempts, release=self._concurrency.release
        )
        pending.on_done(outcome)
        return True

    def _on_error(self, attempt: Attempt, error: RequestError) -> None:
        pending = attempt.pending
        self.stats.errors[error.error_class] = self.stats.errors.get(error.error_class, 0) + 1
        if pending.finished:
            return
        if isinstance(error, FatalRequestError):
            error = explained(error, self.config)
            if error.endpoint_fatal:
                self._kill(error)
            self._fail(pending, error)
            return
        if self._stopping:
            return  # interrupted, not failed: the next run picks it up
        self._note_connection(attempt.base, error)
        if self.dead is not None:
            self._fail(pending, self.dead)
        elif pending.live or pending.queued:
            return  # its twin is still on the way: that one decides
        elif self._stuck(pending, error):
            dead = never_answered(error, "is the server stuck? check its logs")
            self._kill(dead)
            self._fail(pending, dead)
        elif pending.attempts >= self.config.max_attempts:
            self._fail(pending, error)
        else:
            self._retry(pending, error, attempt.epoch)

    def _note_connection(self, base: BaseUrl, error: RequestError) -> None:
        """A URL that refused or dropped a connection is avoided; one that never worked fails
        the endpoint once every URL keeps refusing."""
        if error.error_class in ("connection", "unreachable"):
            self._urls.connection_failed(base)
        if error.error_class == "unreachable" and self._urls.refused(
            base, ever_answered=self.stats.ok > 0
        ):
            self._kill(never_answered(error, "is the server running? check base_url"))

    def _stuck(self, pending: PendingRequest, error: RequestError) -> bool:
        """Another stall of a request to an endpoint that has never answered: too many?"""
        if error.error_class != "stalled":
            return False
        pending.stalls += 1
        return self.stats.ok == 0 and pending.stalls >= STALLS_BEFORE_DEAD

    def _retry(self, pending: PendingRequest, error: RequestError, epoch: int) -> None:
        self.stats.retries += 1
        pending.twins = 0
        if error.error_class == "rate_limit":
            self.stats.rate_limited += 1
            self._concurrency.on_rate_limited(epoch)
            self._pause.extend(self._waits.pause(error, pending.attempts))
            self._requeue(pending)
            return
        pending.queued = True  # not dispatchable yet, but spoken for: no second requeue
        delay = self._waits.backoff(error, pending.attempts)
        self._clock.call_later(delay, partial(self._requeue, pending))

    def _requeue(self, pending: PendingRequest) -> None:
        pending.queued = False
        if self._stopping or pending.finished:
            return
        if self.dead is not None:
            self._fail(pending, self.dead)
            return
        self._queue.push_front(pending)

    async def _watch(self) -> None:
        """Hedge silent attempts and cancel stalled ones (see engine.endpoints.watchdog)."""
        while True:
            await self._clock.sleep(self._watchdog.interval)
            if not self._tasks:
                continue
            now = self._clock.monotonic()
            twins = self._watchdog.look(now, self._tasks.values(), twins=not self._stopping)
            for pending in twins:
                self.stats.hedged += 1
                self._queue.push_front(pending)

    def _kill(self, error: FatalRequestError) -> None:
        if self.dead is None:
            self.dead = error
            log.error("%s: %s; failing all its requests", self.name, error)
        for pending in self._queue.take_all():
            if not pending.live:  # one still in flight decides for itself
                self._fail(pending, error)

    def _fail(self, pending: PendingRequest, error: RequestError) -> None:
        if pending.finished:
            return
        pending.finished = True
        pending.on_done(Outcome(None, pending.attempts, error))


def _uncancel() -> None:
    """Forget a cancellation this code asked for itself (Python 3.11+ keeps count of them)."""
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()
