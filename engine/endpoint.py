"""One endpoint (a model's server pool, or the judge API): a FIFO queue and one dispatcher.

The dispatcher is the only task that waits on the endpoint's limiters. It takes the next request,
waits for the 429 pause, a concurrency slot, the requests/min window and the tokens/min window,
then starts the attempt as its own task on the least-loaded base URL. Attempts that fail with a
retryable error come back to the front of the queue after their backoff; a 429 pauses the whole
endpoint and halves its concurrency. A 401/403/404 kills the endpoint: every queued and future
request fails at once with that one message, so a bad key costs one request, not thousands. So does
an endpoint that has never answered and refuses every connection: a typo in base_url or a server
that is not running should cost seconds, not an hour of backoff.

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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from engine.chat import ChatRequest, ChatResponse
from engine.config import EndpointConfig
from engine.errors import FatalRequestError, RequestError, RetryableError
from engine.limits import AdaptiveConcurrency, Pause, RequestRate, TokenWindow
from engine.providers import Provider, provider_for
from engine.retry import backoff_delay, error_for_status
from engine.serve import ServerFailed

if TYPE_CHECKING:
    import aiohttp

    from engine.sweep import ServerLifecycle

__all__ = ["EndpointPool", "EndpointStats", "Outcome"]

log = logging.getLogger(__name__)

URL_COOLDOWN = 5.0  # seconds a base URL is avoided after a connection error, if others exist
UNREACHABLE_AFTER = 3  # refused connects per base URL before a never-answering endpoint is failed


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a request ended: a response, or the error that ended its last attempt."""

    response: ChatResponse | None
    attempts: int
    error: RequestError | None = None
    release: Callable[[], None] = field(default=lambda: None, compare=False)


OnDone = Callable[[Outcome], None]


@dataclass(slots=True)
class EndpointStats:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    retries: int = 0
    rate_limited: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    request: ChatRequest
    on_done: OnDone
    attempts: int = 0


@dataclass(slots=True)
class _BaseUrl:
    url: str
    outstanding: int = 0
    cooldown_until: float = 0.0
    refused: int = 0  # consecutive connects that failed outright


class EndpointPool:
    def __init__(
        self,
        config: EndpointConfig,
        *,
        rng: random.Random | None = None,
        lifecycle: ServerLifecycle | None = None,
    ) -> None:
        self.config = config
        self.provider: Provider = provider_for(config.api)
        self.stats = EndpointStats()
        self.dead: FatalRequestError | None = None
        self._queue: deque[_Pending] = deque()
        self._ready = asyncio.Event()
        self._urls = [_BaseUrl(url) for url in config.base_urls]
        self._concurrency = AdaptiveConcurrency(config.concurrency)
        self._rate = RequestRate(config.rpm)
        self._tokens = TokenWindow(config.tpm)
        self._pause = Pause()
        self._rng = rng or random.Random()
        self._attempts: set[asyncio.Task[None]] = set()
        self._waiting_retry = 0
        self._stopping = False
        self._session: aiohttp.ClientSession | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._lifecycle = lifecycle
        self._needs_server = lifecycle is not None
        self._release_task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def start(self) -> None:
        self._dispatcher = asyncio.create_task(self._dispatch(), name=f"dispatch:{self.name}")

    def submit(self, request: ChatRequest, on_done: OnDone) -> None:
        """Queue a request; `on_done` is called exactly once, from the event loop."""
        pending = _Pending(request, on_done)
        if self.dead is not None:
            self._fail(pending, self.dead)
            return
        self._queue.append(pending)
        self._ready.set()

    @property
    def in_flight(self) -> int:
        return len(self._attempts)

    def finished(self) -> None:
        """Every job of this endpoint is done: a server the engine started can go."""
        if self._lifecycle is not None and self._release_task is None:
            self._release_task = asyncio.create_task(self._lifecycle.release())

    def stop_dispatching(self) -> None:
        """Send nothing more; queued requests and pending retries are dropped, not failed."""
        self._stopping = True
        self._queue.clear()
        if self._dispatcher is not None:
            self._dispatcher.cancel()

    async def drain(self) -> None:
        """Wait for the attempts in flight to finish (they may already be paid for)."""
        await asyncio.gather(*self._attempts, return_exceptions=True)

    def abort(self) -> None:
        """Cancel the attempts in flight now."""
        for task in self._attempts:
            task.cancel()

    async def close(self) -> None:
        """Stop, cancel whatever is still in flight, close the HTTP session."""
        self.stop_dispatching()
        if self._dispatcher is not None:
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        self.abort()
        await asyncio.gather(*self._attempts, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._lifecycle is not None:
            await self._lifecycle.release()

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
            epoch = await self._concurrency.acquire()
            if not self._queue or self.dead is not None:
                self._concurrency.release()
                continue
            pending = self._queue.popleft()
            await self._rate.acquire()
            request = pending.request
            handle = await self._tokens.acquire(
                request.estimated_prompt_tokens() + request.max_tokens
            )
            task = asyncio.create_task(self._attempt(pending, epoch, handle))
            self._attempts.add(task)
            task.add_done_callback(self._attempts.discard)

    async def _start_server(self) -> None:
        """First request of a served model: wait for a slot and a ready server."""
        assert self._lifecycle is not None
        self._needs_server = False
        try:
            url = await self._lifecycle.acquire(on_death=self._server_died)
        except ServerFailed as error:
            self._kill(FatalRequestError("server", str(error), endpoint_fatal=True))
            return
        self._urls = [_BaseUrl(url)]

    def _server_died(self, error: ServerFailed) -> None:
        if self._release_task is None and not self._stopping:
            self._kill(FatalRequestError("server", str(error), endpoint_fatal=True))

    def _pick_url(self) -> _BaseUrl:
        if len(self._urls) == 1:
            return self._urls[0]
        now = time.monotonic()
        usable = [u for u in self._urls if u.cooldown_until <= now] or self._urls
        return min(usable, key=lambda u: u.outstanding)

    async def _attempt(self, pending: _Pending, epoch: int, handle: list[float] | None) -> None:
        pending.attempts += 1
        self.stats.sent += 1
        base = self._pick_url()
        base.outstanding += 1
        started = time.monotonic()
        keep_slot = False
        try:
            response = await self._send(pending.request, base.url)
        except RequestError as error:
            self._on_error(pending, error, epoch, base)
        else:
            base.refused = 0
            self._tokens.correct(handle, response.total_tokens)
            self._concurrency.on_success()
            self.stats.ok += 1
            self.stats.prompt_tokens += response.prompt_tokens or 0
            self.stats.completion_tokens += response.completion_tokens or 0
            response = replace(response, latency=time.monotonic() - started)
            keep_slot = True
            pending.on_done(Outcome(response, pending.attempts, release=self._concurrency.release))
        finally:
            base.outstanding -= 1
            if not keep_slot:
                self._concurrency.release()

    def _http(self) -> aiohttp.ClientSession:
        """The endpoint's HTTP session, made on the first request.

        aiohttp takes a quarter of a second to import (it builds SSL contexts), and a run whose
        answers are all cached never needs it.
        """
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            )
        return self._session

    async def _send(self, request: ChatRequest, base_url: str) -> ChatResponse:
        import aiohttp

        session = self._http()
        call = self.provider.build(
            request, base_url, self.config.api_key, stream=self.config.stream
        )
        where = f"{self.name} at {base_url}"
        try:
            async with session.post(
                call.url, data=call.body, headers=call.headers, allow_redirects=False
            ) as resp:
                if resp.status >= 300:
                    detail = self.provider.error_detail(await resp.read())
                    raise error_for_status(resp.status, resp.headers, detail, where)
                return await self.provider.read(resp, stream=self.config.stream)
        except asyncio.TimeoutError:
            raise RetryableError(
                "timeout", f"{where}: no complete answer within {self.config.timeout:g}s"
            ) from None
        except aiohttp.ClientPayloadError as exc:
            raise RetryableError("truncated", f"{where}: body cut short ({exc})") from None
        except aiohttp.ClientConnectorError as exc:
            raise RetryableError(
                "unreachable", f"{where}: cannot connect ({exc.os_error})"
            ) from None
        except aiohttp.ClientConnectionError as exc:
            raise RetryableError("connection", f"{where}: {type(exc).__name__}: {exc}") from None

    def _on_error(self, pending: _Pending, error: RequestError, epoch: int, base: _BaseUrl) -> None:
        self.stats.errors[error.error_class] = self.stats.errors.get(error.error_class, 0) + 1
        if isinstance(error, FatalRequestError):
            if error.endpoint_fatal:
                self._kill(error)
            self._fail(pending, error)
            return
        if self._stopping:
            return  # interrupted, not failed: the next run picks it up
        if error.error_class in ("connection", "unreachable") and len(self._urls) > 1:
            base.cooldown_until = time.monotonic() + URL_COOLDOWN
        if error.error_class == "unreachable" and self._never_reachable(base):
            self._kill(self._unreachable(error))
            self._fail(pending, self.dead or error)
            return
        if pending.attempts >= self.config.max_attempts:
            self._fail(pending, error)
            return
        self.stats.retries += 1
        if error.error_class == "rate_limit":
            self.stats.rate_limited += 1
            self._concurrency.on_rate_limited(epoch)
            self._pause.extend(error.retry_after or backoff_delay(pending.attempts, rng=self._rng))
            self._requeue(pending)
            return
        delay = backoff_delay(pending.attempts, rng=self._rng)
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        self._waiting_retry += 1
        asyncio.get_running_loop().call_later(delay, self._requeue_after_wait, pending)

    def _never_reachable(self, base: _BaseUrl) -> bool:
        base.refused += 1
        return self.stats.ok == 0 and all(u.refused >= UNREACHABLE_AFTER for u in self._urls)

    def _unreachable(self, error: RequestError) -> FatalRequestError:
        return FatalRequestError(
            "unreachable",
            f"{error}; is the server running? check base_url",
            endpoint_fatal=True,
        )

    def _requeue_after_wait(self, pending: _Pending) -> None:
        self._waiting_retry -= 1
        self._requeue(pending)

    def _requeue(self, pending: _Pending) -> None:
        if self._stopping:
            return
        if self.dead is not None:
            self._fail(pending, self.dead)
            return
        self._queue.appendleft(pending)
        self._ready.set()

    def _kill(self, error: FatalRequestError) -> None:
        if self.dead is None:
            self.dead = error
            log.error("%s: %s; failing all its requests", self.name, error)
        while self._queue:
            self._fail(self._queue.popleft(), error)

    def _fail(self, pending: _Pending, error: RequestError) -> None:
        self.stats.failed += 1
        pending.on_done(Outcome(None, pending.attempts, error))
