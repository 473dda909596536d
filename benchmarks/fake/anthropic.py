"""The Anthropic Messages wire format of the fake server: `POST /v1/messages`.

Only what is Anthropic-specific lives here — the request fields (top-level `system`, required
`max_tokens`, `x-api-key`), the `message` body, the named SSE events, the error object and the
`anthropic-ratelimit-*-reset` headers — so the route shares `FakeBackend`'s limits, faults, latency,
fake judge and `/stats` with the OpenAI route. Like the real API it refuses a `system` role inside
`messages`, so a client that forgets to lift the system prompt out fails loudly here. A request
with extended thinking (see anthropic_thinking.py) gets a thinking block before its text.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta, timezone

import orjson
from aiohttp import web

from .answers import Prompt, Reply, judge_mode
from .anthropic_thinking import signature, thinking_reasoning, thinking_refusal
from .backend import BACKEND, Call, Refusal, StreamEvents
from .openai import body_digest

__all__ = ["AnthropicWire", "add_anthropic_routes", "parse_messages_request"]

# A streamed and a plain request ask the same thing: they are duplicates of each other.
_ROLES = frozenset({"user", "assistant"})
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_BUCKETS = {"requests": ("requests",), "tokens": ("tokens", "input-tokens", "output-tokens")}


class BadRequest(ValueError):
    """The body is JSON but not a valid Messages request."""


def _text(content: object, where: str) -> str:
    """A string content, or its text blocks joined (other block types count as no text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(block, dict) for block in content):
        return "".join(str(block.get("text", "")) for block in content)
    raise BadRequest(f"{where}: must be a string or a list of content blocks")


def _message_text(index: int, message: object) -> str:
    if not isinstance(message, dict):
        raise BadRequest(f"messages.{index}: must be an object")
    role = message.get("role")
    if role not in _ROLES:
        raise BadRequest(
            f"messages.{index}: Unexpected role {role!r}. The Messages API accepts a top-level "
            '`system` parameter, not "system" as an input message role.'
        )
    return _text(message.get("content"), f"messages.{index}.content")


def _number(body: dict[str, object], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{name}: must be a number")
    return value


def parse_messages_request(body: object, api_key: str | None) -> Call:
    """The `Call` for a decoded request body; BadRequest if it is not a Messages request."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    model = body.get("model")
    messages = body.get("messages")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: must be a non-empty list")
    max_tokens = _number(body, "max_tokens")
    if max_tokens is None or max_tokens < 1:
        raise BadRequest("max_tokens: Field required (an integer >= 1)")
    temperature = _number(body, "temperature")
    temperature = 1.0 if temperature is None else float(temperature)
    if not 0 <= temperature <= 1:
        raise BadRequest("temperature: must be between 0 and 1")
    system = body.get("system")
    texts = [] if system is None else [_text(system, "system")]
    texts += [_message_text(index, message) for index, message in enumerate(messages)]
    key = orjson.dumps([model, system, messages, temperature, max_tokens])
    stream = body.get("stream") is True
    refusal = thinking_refusal(body, max_tokens)
    reasoning = None if refusal is not None else thinking_reasoning(body)
    return Call(
        prompt=Prompt(model, key, judge_mode(texts), int(max_tokens), reasoning),
        digest=body_digest(body),
        prompt_tokens=(sum(map(len, texts)) + 3) // 4,
        temperature=temperature,
        stream=stream,
        stream_usage=stream,  # Anthropic streams always carry usage
        api_key=api_key,
        refusal=refusal,
    )


def _event(name: str, payload: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _block_start(index: int, block: dict[str, str]) -> bytes:
    payload = {"type": "content_block_start", "index": index, "content_block": block}
    return _event("content_block_start", payload)


def _block_stop(index: int) -> bytes:
    return _event("content_block_stop", {"type": "content_block_stop", "index": index})


def _delta_prefix(index: int, kind: str, field: str) -> bytes:
    """A content_block_delta event up to its text: splice each piece in, then `}}\n\n`."""
    return (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
        + str(index).encode()
        + b',"delta":{"type":"'
        + kind.encode()
        + b'","'
        + field.encode()
        + b'":'
    )


def _thinking_events(thinking: str, thoughts: list[str]) -> list[bytes]:
    """Block 0: the thinking, streamed, then its signature, then its end."""
    before = _delta_prefix(0, "thinking_delta", "thinking")
    signed = {"type": "signature_delta", "signature": signature(thinking)}
    return [
        _block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        _event("ping", {"type": "ping"}),
        *(before + orjson.dumps(thought) + b"}}\n\n" for thought in thoughts),
        _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": signed}),
        _block_stop(0),
    ]


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AnthropicWire:
    """Bodies, events and headers in Anthropic's schemas; ids are unique within one process."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def refusal_body(self, refusal: Refusal) -> bytes:
        """`{"type": "error", "error": {"type": ..., "message": ...}}`, typed by status."""
        kind = _ERROR_TYPES.get(refusal.status, "api_error")
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": refusal.message}})

    def refusal_headers(self, refusal: Refusal) -> dict[str, str]:
        """A rate limit's wait as `retry-after` (whole seconds) and per-bucket reset instants.

        Like the real API, no `retry-after-ms`: clients get whole seconds or the timestamps.
        The buckets that refused reset when the wait is over; the others are already full.
        """
        if refusal.retry_after is None:
            return {}
        now = datetime.now(timezone.utc)
        ready = now + timedelta(seconds=refusal.retry_after)
        exhausted = _BUCKETS.get(refusal.limit or "requests", ())
        headers = {"retry-after": str(max(1, math.ceil(refusal.retry_after)))}
        for buckets in _BUCKETS.values():
            for bucket in buckets:
                moment = ready if bucket in exhausted else now
                headers[f"anthropic-ratelimit-{bucket}-reset"] = _rfc3339(moment)
        return headers

    def _message(self, call: Call, content: list[object], reply: Reply | None) -> dict[str, object]:
        return {
            "id": f"msg_fake{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": call.prompt.model,
            "content": content,
            "stop_reason": None if reply is None else _STOP_REASONS[reply.finish_reason],
            "stop_sequence": None,
            "usage": {
                "input_tokens": call.prompt_tokens,
                "output_tokens": 1 if reply is None else reply.completion_tokens,
            },
        }

    def answer_body(self, call: Call, reply: Reply) -> bytes:
        """A `message` object with one text block, after a thinking block if thinking is on."""
        content: list[object] = [{"type": "text", "text": reply.text}]
        if call.prompt.reasoning is not None:
            thinking = {"type": "thinking", "thinking": reply.thinking}
            content.insert(0, {**thinking, "signature": signature(reply.thinking)})
        return orjson.dumps(self._message(call, content, reply))

    def answer_events(
        self, call: Call, reply: Reply, pieces: list[str], thoughts: list[str]
    ) -> StreamEvents:
        """message_start, content_block_start, ping, text deltas | block stop, delta, stop.

        With thinking on, block 0 is the thinking (start, ping, thinking deltas, signature, stop)
        and the text is block 1. The opening events count as pieces, so a cut stream ("truncate",
        "stream_error") may end anywhere before `message_stop`, even before the first text.
        """
        start = {"type": "message_start", "message": self._message(call, [], None)}
        events = [_event("message_start", start)]
        text_block = {"type": "text", "text": ""}
        if call.prompt.reasoning is None:
            index = 0
            events += [_block_start(index, text_block), _event("ping", {"type": "ping"})]
        else:
            index = 1
            events += [*_thinking_events(reply.thinking, thoughts), _block_start(index, text_block)]
        # Streams are most of a benchmark's bytes: splice each piece into pre-encoded JSON.
        before = _delta_prefix(index, "text_delta", "text")
        events += [before + orjson.dumps(piece) + b"}}\n\n" for piece in pieces]
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": _STOP_REASONS[reply.finish_reason], "stop_sequence": None},
            "usage": {"output_tokens": reply.completion_tokens},
        }
        ending = [
            _block_stop(index),
            _event("message_delta", delta),
            _event("message_stop", {"type": "message_stop"}),
        ]
        overloaded = {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }
        return StreamEvents(events, ending, _event("error", overloaded))


async def _messages(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    wire = request.app[_WIRE]
    try:
        body = orjson.loads(await request.read())
        call = parse_messages_request(body, request.headers.get("x-api-key"))
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, BadRequest) as exc:
        return backend.refuse_unparsable(wire, f"Invalid request: {exc}")
    return await backend.serve(request, call, wire)


_WIRE = web.AppKey("anthropic_wire", AnthropicWire)


def add_anthropic_routes(app: web.Application) -> None:
    """Serve `/v1/messages` from the app's `FakeBackend`."""
    app[_WIRE] = AnthropicWire()
    app.router.add_post("/v1/messages", _messages)
