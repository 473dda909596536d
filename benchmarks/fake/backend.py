"""What every fake API route shares: auth, model checks, rate limits, faults, latency and stats.

A wire format (OpenAI chat completions, Anthropic messages) only parses its request into a `Call`
and renders bodies through the small `WireFormat` interface (plus, optionally, `RefusalHeaders`);
`FakeBackend.serve` runs the one pipeline that decides what happens to the request:

    arrival (stats) -> auth / model lists / refused parameters -> rate window -> fault draw
        -> latency -> answer or fault

so both formats get the same limits and the same faults, counted in the same `/stats`.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from aiohttp import web

from .answers import Prompt, Reply, make_reply
from .limits import RateLimiter
from .options import FakeServerOptions, ThinkingStyle, updated_options
from .stats import Exchange, ServerStats

__all__ = [
    "BACKEND",
    "Call",
    "FakeBackend",
    "Refusal",
    "RefusalHeaders",
    "StreamEvents",
    "WireFormat",
]


@dataclass(frozen=True)
class Call:
    """One parsed request, in the terms the pipeline needs, whatever its wire format.

    `refusal` is the error a well-formed request earns by what it asks of its model (a parameter
    a reasoning model does not take), given once the key and the model have passed.
    `thinking_style` is how an OpenAI-compatible thinking model shows its thoughts.
    """

    prompt: Prompt
    digest: bytes
    prompt_tokens: int
    temperature: float
    stream: bool
    stream_usage: bool
    api_key: str | None
    refusal: Refusal | None = None
    thinking_style: ThinkingStyle | None = None

    @property
    def kind(self) -> str:
        """ "judge" or "generation", as counted in `/stats`."""
        return "generation" if self.prompt.judge is None else "judge"


@dataclass(frozen=True)
class Refusal:
    """An error answer; `limit` ("requests"/"tokens") is set for rate-limit 429s, `param` names
    the request field a 400 is about."""

    status: int
    code: str
    message: str
    retry_after: float | None = None
    limit: str | None = None
    param: str | None = None


@dataclass(frozen=True)
class StreamEvents:
    """An answer as SSE events: the text-carrying ones, then the ones that close the stream.

    `error` is the event a stream ends with when the server gives up mid-answer (the
    "stream_error" fault); a format without one just hangs up there.
    """

    pieces: list[bytes]
    ending: list[bytes]
    error: bytes | None = None


class WireFormat(Protocol):
    """How one API spells its bodies; everything else is the backend's."""

    def refusal_body(self, refusal: Refusal) -> bytes: ...

    def answer_body(self, call: Call, reply: Reply) -> bytes: ...

    def answer_events(
        self, call: Call, reply: Reply, pieces: list[str], thoughts: list[str]
    ) -> StreamEvents: ...


@runtime_checkable
class RefusalHeaders(Protocol):
    """A wire format that spells a refusal's headers itself (else Retry-After + retry-after-ms)."""

    def refusal_headers(self, refusal: Refusal) -> dict[str, str]: ...


_FAULT_REFUSALS = {
    "500": Refusal(500, "server_error", "The server had an error processing your request."),
    "503": Refusal(503, "overloaded", "The engine is currently overloaded, try again later."),
    "429": Refusal(429, "rate_limit_exceeded", "Rate limit reached.", 1.0, "requests"),
    "529": Refusal(529, "overloaded_error", "Overloaded"),
}


class FakeBackend:
    """The fake server's mutable state: current options, RNGs, rate windows and stats."""

    def __init__(self, options: FakeServerOptions) -> None:
        self.stats = ServerStats()
        self._limiter = RateLimiter()
        self._apply(options)

    def _apply(self, options: FakeServerOptions) -> None:
        self.options = options
        self._fault_table = tuple((n, p) for n, p in options.fault_probabilities() if p > 0)
        self._latency_rng = random.Random(f"{options.seed}/latency")
        self._fault_rng = random.Random(f"{options.seed}/faults")
        self._noise_rng = random.Random(f"{options.seed}/noise")

    def configure(self, updates: Mapping[str, object]) -> FakeServerOptions:
        """Merge `updates` into the options (OptionsError if invalid); RNGs restart from `seed`."""
        self._apply(updated_options(self.options, updates))
        return self.options

    def reset(self) -> None:
        """Zero the stats, empty the rate windows, restart the RNGs."""
        self.stats.reset()
        self._limiter.reset()
        self._apply(self.options)

    async def serve(self, request: web.Request, call: Call, wire: WireFormat) -> web.StreamResponse:
        """Answer `call` (or refuse it, or fail on purpose), counting it in the stats."""
        exchange = self.stats.open(call.prompt.model, call.kind, call.digest)
        try:
            return await self._serve(request, call, wire, exchange)
        except asyncio.CancelledError:
            self.stats.count_given_up(exchange)  # aiohttp cancels a handler whose client left
            raise
        finally:
            self.stats.close(exchange)

    async def _serve(
        self, request: web.Request, call: Call, wire: WireFormat, exchange: Exchange
    ) -> web.StreamResponse:
        refusal = self._gate(call)
        if refusal is not None:
            return _refuse(refusal, wire, exchange)
        fault = exchange.fault = self._draw_fault(call.prompt.model)
        if fault == "hang":
            await asyncio.sleep(self.options.hang_seconds)
            return _reset_connection(request)
        waited = await self._wait(call.kind)
        exchange.waited(waited)
        if fault == "429":
            refusal = replace(
                _FAULT_REFUSALS["429"], retry_after=self.options.fault_429_retry_after
            )
            return _refuse(refusal, wire, exchange)
        if fault == "stream_error" and not call.stream:
            fault = "529"  # a JSON answer cannot break off mid-way: overloaded, the HTTP way
        if fault in _FAULT_REFUSALS:
            return _refuse(_FAULT_REFUSALS[fault], wire, exchange)
        if fault == "reset":
            return _reset_connection(request)
        reply = make_reply(call.prompt, self.options, self._noise(call))
        slow_for = self._slow_seconds(call.kind) if fault == "slow" else 0.0
        if call.stream:
            pieces = _split_words(reply.text, self.options.stream_chunk_words)
            thoughts = _split_words(reply.thinking, self.options.stream_chunk_words)
            events = wire.answer_events(call, reply, pieces, thoughts)
            return await _stream(request, events, exchange, fault, slow_for)
        body = wire.answer_body(call, reply)
        if slow_for:
            return await _trickle(request, body, exchange, slow_for)
        exchange.end(200, answered=fault is None)
        return _json(200, body if fault is None else body[: len(body) // 2])

    def refuse_unparsable(self, wire: WireFormat, message: str) -> web.Response:
        """A 400 for a body that is not a valid request, counted under the model name ""."""
        exchange = self.stats.open("", "generation", b"")
        try:
            return _refuse(Refusal(400, "invalid_request", message), wire, exchange)
        finally:
            self.stats.close(exchange)

    def _gate(self, call: Call) -> Refusal | None:
        options = self.options
        model = call.prompt.model
        if options.auth_key is not None and call.api_key != options.auth_key:
            return Refusal(401, "invalid_api_key", "Incorrect API key provided.")
        if model in options.auth_fail_models:
            return Refusal(401, "invalid_api_key", f"Your API key cannot use model '{model}'.")
        if model in options.reject_models:
            message = f"The model '{model}' does not exist or you do not have access to it."
            return Refusal(404, "model_not_found", message)
        if call.refusal is not None:
            return call.refusal
        return self._rate_check(call)

    def _rate_check(self, call: Call) -> Refusal | None:
        options = self.options
        key = call.prompt.model if options.limits_per_model else ""
        tokens = call.prompt_tokens + (call.prompt.max_tokens or 0)
        now = time.monotonic()
        decision = self._limiter.admit(
            key, now, tokens, options.rate_window, options.rpm, options.tpm
        )
        if decision is None:
            return None
        self.stats.count_rate_limited()
        message = f"Rate limit reached for {decision.limit} per minute. Please try again later."
        return Refusal(429, "rate_limit_exceeded", message, decision.retry_after, decision.limit)

    def _draw_fault(self, model: str) -> str | None:
        if not self._fault_table:
            return None
        only_for = self.options.faults_only_for
        if only_for and model not in only_for:
            return None
        draw = self._fault_rng.random()
        for name, probability in self._fault_table:
            draw -= probability
            if draw < 0:
                self.stats.count_fault(name)
                return name
        return None

    async def _wait(self, kind: str) -> float:
        """Sleep the request's simulated latency; returns it, in seconds."""
        options = self.options
        median = options.latency_median
        if kind == "judge" and options.judge_latency_median is not None:
            median = options.judge_latency_median
        if median <= 0:
            return 0.0
        if options.latency_sigma > 0:
            median = self._latency_rng.lognormvariate(math.log(median), options.latency_sigma)
        await asyncio.sleep(median)
        return median

    def _slow_seconds(self, kind: str) -> float:
        """How long a slow answer takes to send: slow_factor times the latency median."""
        options = self.options
        median = options.latency_median
        if kind == "judge" and options.judge_latency_median is not None:
            median = options.judge_latency_median
        return options.slow_factor * median

    def _noise(self, call: Call) -> bytes:
        if call.kind == "judge" and self.options.judge_noise:
            return self._noise_rng.getrandbits(64).to_bytes(8, "big")
        if not self.options.sample_noise or call.temperature <= 0:
            return b""
        return self._noise_rng.getrandbits(64).to_bytes(8, "big")


BACKEND = web.AppKey("backend", FakeBackend)


_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def _split_words(text: str, per_piece: int) -> list[str]:
    """`text` in pieces of `per_piece` words that concatenate back to `text`."""
    words = text.split(" ") if text else []
    pieces = [" ".join(words[i : i + per_piece]) for i in range(0, len(words), per_piece)]
    return [pieces[0], *(" " + piece for piece in pieces[1:])] if pieces else []


def _json(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _retry_headers(seconds: float) -> dict[str, str]:
    return {
        "Retry-After": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, math.ceil(seconds * 1000))),
    }


def _refuse(refusal: Refusal, wire: WireFormat, exchange: Exchange) -> web.Response:
    exchange.end(refusal.status)
    headers: Mapping[str, str] | None = None
    if isinstance(wire, RefusalHeaders):
        headers = wire.refusal_headers(refusal)
    elif refusal.retry_after is not None:
        headers = _retry_headers(refusal.retry_after)
    return _json(refusal.status, wire.refusal_body(refusal), headers)


def _reset_connection(request: web.Request) -> web.Response:
    """Drop the connection with a TCP RST; the response returned is never written."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=500)


SLOW_PIECES = 20  # a slow answer arrives in this many pieces, evenly spread


async def _trickle(
    request: web.Request, body: bytes, exchange: Exchange, seconds: float
) -> web.StreamResponse:
    """A JSON answer sent in pieces over `seconds`: slow, but visibly alive all along."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    step = -(-len(body) // SLOW_PIECES)
    for start in range(0, len(body), step):
        await response.write(body[start : start + step])
        await asyncio.sleep(seconds / SLOW_PIECES)
    await response.write_eof()
    exchange.end(200, answered=True)
    return response


async def _stream(
    request: web.Request,
    events: StreamEvents,
    exchange: Exchange,
    fault: str | None,
    slow_for: float = 0.0,
) -> web.StreamResponse:
    """Send the SSE events, or break them as `fault` says.

    "slow" sends every event, spread evenly over `slow_for` seconds;
    "truncate" sends the first few text events and hangs up (no finish reason, no [DONE]);
    "stream_error" sends the same few, then the format's error event, and ends the stream;
    "malformed" sends them all with the first one's JSON cut in half.
    """
    response = web.StreamResponse(headers=_SSE_HEADERS)
    await response.prepare(request)
    exchange.end(200)
    pieces = events.pieces
    if fault == "truncate":
        await response.write(b"".join(pieces[: len(pieces) // 2 or 1]))
        if request.transport is not None:
            request.transport.close()
        return response
    if fault == "stream_error":
        await response.write(b"".join(pieces[: len(pieces) // 2 or 1]) + (events.error or b""))
        await response.write_eof()
        return response
    if fault == "malformed" and pieces:
        pieces = [pieces[0][: len(pieces[0]) // 2] + b"\n\n", *pieces[1:]]
    if slow_for:
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(slow_for / max(1, len(pieces)))
        pieces = []
    await response.write(b"".join(pieces + events.ending))
    await response.write_eof()
    exchange.end(200, answered=fault in (None, "slow"))
    return response
