"""The one place that speaks HTTP: an aiohttp session per endpoint, byte-level progress, and every
aiohttp failure turned into the engine's own `RequestError`s.

The endpoint pool sees only the small `Transport` interface (send one call, close), so a test can
hand it a scripted transport and drive pacing, pauses and the watchdog in process; `HttpTransport`
is the one a run uses. Nothing above this module catches an `aiohttp` exception. Two choices here
protect the night:

- **Redirects are never followed.** aiohttp re-sends custom headers (Anthropic's `x-api-key`) to
  another host, and turns a 302'd POST into a GET whose reply would be stored as an answer. A 3xx
  fails its request, naming where the server wanted to send us (`retry.redirect_error`).
- **Every byte counts as progress.** The caller passes a `Progress` that is touched when the
  response headers arrive and on every chunk or line of the body after that, so a stalled request
  (no bytes for a long time) can be told apart from a slow one that is still streaming. Bodies are
  capped in size: a server sending endlessly cannot exhaust memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from engine.chat import ChatResponse
from engine.endpoints.clock import SYSTEM_CLOCK, Clock
from engine.endpoints.providers import HttpCall, Provider
from engine.endpoints.retry import error_for_status
from engine.errors import RequestError, RetryableError

if TYPE_CHECKING:
    import aiohttp

__all__ = ["MAX_BODY_BYTES", "HttpTransport", "Progress", "Transport"]

MAX_BODY_BYTES = 64 * 1024 * 1024  # far above any chat answer; below what would hurt a night
_ERROR_BODY_BYTES = 64 * 1024  # enough for any error message; the rest is never read


@dataclass(slots=True)
class Progress:
    """When bytes last arrived for one attempt, and the longest silence it has seen so far."""

    clock: Clock = SYSTEM_CLOCK
    started: float = field(init=False)
    last: float = field(init=False)
    longest_silence: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.last = self.clock.monotonic()

    def touch(self) -> None:
        now = self.clock.monotonic()
        self.longest_silence = max(self.longest_silence, now - self.last)
        self.last = now

    def silence(self, now: float) -> float:
        return now - self.last


class _TrackedBody:
    """The response as a provider reads it (`content_type`, `read()`, `chunks()`): every piece
    that arrives touches `progress`, bodies over MAX_BODY_BYTES are refused, and aiohttp's
    errors while reading become the engine's, so no adapter ever sees one."""

    def __init__(
        self, response: aiohttp.ClientResponse, progress: Progress, errors: _ErrorMap
    ) -> None:
        self._response = response
        self._progress = progress
        self._errors = errors
        self.content_type = response.content_type

    async def read(self) -> bytes:
        pieces: list[bytes] = []
        size = 0
        try:
            async for chunk in self._response.content.iter_any():
                self._progress.touch()
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _too_long()
                pieces.append(chunk)
        except RequestError:
            raise
        except Exception as exc:
            raise self._errors.translate(exc) from None
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    async def chunks(self) -> AsyncIterator[bytes]:
        size = 0
        stream = self._response.content.iter_any()
        while True:
            try:
                chunk = await anext(stream)
            except StopAsyncIteration:
                return
            except Exception as exc:
                raise self._errors.translate(exc) from None
            self._progress.touch()
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _too_long()
            yield chunk


def _too_long() -> RetryableError:
    return RetryableError("malformed", f"response body over {MAX_BODY_BYTES // 2**20} MiB")


@dataclass(frozen=True, slots=True)
class _ErrorMap:
    """aiohttp's exceptions (and a timeout) as the engine's RequestErrors, named by endpoint."""

    where: str
    total_timeout: float

    def translate(self, exc: BaseException) -> RequestError:
        import aiohttp

        where = self.where
        if isinstance(exc, RequestError):
            return exc
        if isinstance(exc, asyncio.TimeoutError):
            return RetryableError(
                "timeout", f"{where}: no complete answer within {self.total_timeout:g}s (timeout)"
            )
        if isinstance(exc, aiohttp.ClientPayloadError):
            return RetryableError("truncated", f"{where}: body cut short ({exc})")
        if isinstance(exc, aiohttp.ClientConnectorError):
            return RetryableError("unreachable", f"{where}: cannot connect ({exc.os_error})")
        if isinstance(exc, aiohttp.ClientResponseError):
            return RetryableError(
                "malformed", f"{where}: unreadable response ({exc.status}: {exc.message})"
            )
        if isinstance(exc, aiohttp.ClientConnectionError):
            return RetryableError("connection", f"{where}: {type(exc).__name__}: {exc}")
        # Only the server's bytes are being read here: whatever else goes wrong (an over-long
        # header, bad encoding, a compression the client lacks) is a malformed answer, retried.
        return RetryableError(
            "malformed", f"{where}: unreadable response ({type(exc).__name__}: {exc})"
        )


class Transport(Protocol):
    """How an endpoint's attempts reach its server and their answers come back."""

    async def send(self, call: HttpCall, base_url: str, progress: Progress) -> ChatResponse:
        """One attempt at `call` (built for `base_url`): the parsed answer, or a RequestError
        saying why there is none. Every piece of the answer that arrives touches `progress`."""
        ...

    async def close(self) -> None:
        """Let go of connections; no call is sent after this."""
        ...


class HttpTransport:
    """POSTs one endpoint's calls, and reads the answers with its provider; the session is made
    lazily, because importing aiohttp costs a quarter of a second and a run whose answers are all
    cached never needs it."""

    def __init__(
        self, name: str, total_timeout: float, provider: Provider, *, stream: bool
    ) -> None:
        self._name = name
        self._total_timeout = total_timeout
        self._provider = provider
        self._stream = stream
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=self._total_timeout),
            )
        return self._session

    async def send(self, call: HttpCall, base_url: str, progress: Progress) -> ChatResponse:
        errors = _ErrorMap(f"{self._name} at {base_url}", self._total_timeout)
        provider = self._provider
        try:
            async with self._http().post(
                call.url, data=call.body, headers=call.headers, allow_redirects=False
            ) as response:
                progress.touch()
                if response.status >= 300:
                    raise await _refusal(provider, response, errors.where)
                body = _TrackedBody(response, progress, errors)
                return await provider.read(body, stream=self._stream)
        except Exception as exc:
            raise errors.translate(exc) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _refusal(
    provider: Provider, response: aiohttp.ClientResponse, where: str
) -> RequestError:
    """The error for a non-2xx answer (a 3xx is a redirect, named and never followed)."""
    try:
        body = b"" if response.status < 400 else await response.content.read(_ERROR_BODY_BYTES)
    except Exception:  # an unreadable error body still leaves a usable status
        body = b""
    return error_for_status(response.status, response.headers, provider.error_detail(body), where)
