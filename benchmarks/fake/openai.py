"""The OpenAI chat-completions wire format of the fake server: parse a request, spell the answers.

Only what is OpenAI-specific lives here — the request fields, the response and chunk schemas, the
error object — so that another API (Anthropic messages) can reuse `FakeBackend`'s limits, faults,
latency and stats by writing just its own version of this module. How reasoning and thinking models
differ from the others is in openai_reasoning.py.
"""

from __future__ import annotations

import hashlib
import itertools
import time

import orjson
from aiohttp import web

from .answers import Prompt, Reply, judge_mode
from .backend import BACKEND, Call, Refusal, StreamEvents
from .openai_reasoning import (
    matches,
    message,
    reasoning_for,
    reasoning_refusal,
    streamed_deltas,
)
from .options import FakeServerOptions

__all__ = ["OpenAIWire", "add_openai_routes", "body_digest", "parse_chat_request"]

# Transport details that do not change what is asked: a streamed and a plain request are duplicates.
_TRANSPORT_FIELDS = frozenset({"stream", "stream_options"})


class BadRequest(ValueError):
    """The body is JSON but not a chat-completions request."""


def _message_text(message: object) -> str:
    """A message's text: its string content, or its text parts joined."""
    if not isinstance(message, dict):
        raise BadRequest("each message must be an object")
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if content is None:
        return ""
    raise BadRequest("message content must be a string or a list of parts")


def _number(body: dict[str, object], name: str, default: float | None) -> float | None:
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"'{name}' must be a number")
    return value


def _bearer_key(authorization: str | None) -> str | None:
    if authorization is None or not authorization.startswith("Bearer "):
        return None
    return authorization[len("Bearer ") :]


def _wants_usage(body: dict[str, object]) -> bool:
    stream_options = body.get("stream_options")
    return isinstance(stream_options, dict) and stream_options.get("include_usage") is True


def body_digest(body: dict[str, object]) -> bytes:
    """Identifies what is asked, whatever the key order and whether it is streamed.

    Duplicate detection uses it, and `/stats?arrivals=full` reports it (hex) per request, so a
    benchmark can recompute it from a stored request and find how long that request waited.
    """
    canonical = {name: value for name, value in body.items() if name not in _TRANSPORT_FIELDS}
    encoded = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(encoded, digest_size=16).digest()


def parse_chat_request(body: object, authorization: str | None, options: FakeServerOptions) -> Call:
    """The `Call` for a decoded request body; BadRequest if it is not a chat request.

    `options` say which models are reasoning or thinking models (see openai_reasoning.py).
    """
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    model = body.get("model")
    messages = body.get("messages")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' must be a non-empty string")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    texts = [_message_text(message) for message in messages]
    max_tokens = _number(body, "max_tokens", None)
    if max_tokens is None:
        max_tokens = _number(body, "max_completion_tokens", None)
    temperature = _number(body, "temperature", 1.0)
    temperature = 1.0 if temperature is None else float(temperature)
    key = orjson.dumps([model, messages, temperature, max_tokens, body.get("seed")])
    limit = None if max_tokens is None else int(max_tokens)
    stream = body.get("stream") is True
    thinking = matches(model, options.thinking_models)
    hidden = matches(model, options.reasoning_models)
    reasoning = reasoning_for(body, thinking=thinking, hidden=hidden)
    return Call(
        prompt=Prompt(model, key, judge_mode(texts), limit, reasoning),
        digest=body_digest(body),
        prompt_tokens=(sum(map(len, texts)) + 3) // 4,
        temperature=temperature,
        stream=stream,
        stream_usage=stream and _wants_usage(body),
        api_key=_bearer_key(authorization),
        refusal=reasoning_refusal(body) if hidden else None,
        thinking_style=options.thinking_style if thinking else None,
    )


def _usage(call: Call, reply: Reply) -> dict[str, object]:
    usage: dict[str, object] = {
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": call.prompt_tokens + reply.completion_tokens,
    }
    if call.prompt.reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
    return usage


def _sse(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class OpenAIWire:
    """Bodies in OpenAI's schemas; ids are unique within one server process."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def refusal_body(self, refusal: Refusal) -> bytes:
        """OpenAI's error object; rate limits carry their limit ("requests"/"tokens") as type."""
        kind = refusal.limit or (
            "server_error" if refusal.status >= 500 else "invalid_request_error"
        )
        error = {
            "message": refusal.message,
            "type": kind,
            "param": refusal.param,
            "code": refusal.code,
        }
        return orjson.dumps({"error": error})

    def answer_body(self, call: Call, reply: Reply) -> bytes:
        """A `chat.completion` object."""
        choice = {"index": 0, "message": message(call, reply), "finish_reason": reply.finish_reason}
        return orjson.dumps(
            {
                "id": f"chatcmpl-fake{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": call.prompt.model,
                "choices": [choice],
                "usage": _usage(call, reply),
            }
        )

    def answer_events(
        self, call: Call, reply: Reply, pieces: list[str], thoughts: list[str]
    ) -> StreamEvents:
        """`chat.completion.chunk` events: thoughts and text pieces, finish reason, usage if
        asked, [DONE]."""
        head = {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.prompt.model,
        }
        (field, first), *rest = streamed_deltas(call, reply, pieces, thoughts) or [("content", "")]
        delta = {"role": "assistant", field: first}
        text_events = [
            _sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        ]
        # Streams are most of a benchmark's bytes: splice each piece into pre-encoded JSON.
        opening = b"data: " + orjson.dumps(head)[:-1] + b',"choices":[{"index":0,"delta":{'
        before = {name: opening + orjson.dumps(name) + b":" for name in {name for name, _ in rest}}
        after = b'},"finish_reason":null}]}\n\n'
        text_events += [before[name] + orjson.dumps(piece) + after for name, piece in rest]
        choice = {"index": 0, "delta": {}, "finish_reason": reply.finish_reason}
        ending = [_sse({**head, "choices": [choice]})]
        if call.stream_usage:
            ending.append(_sse({**head, "choices": [], "usage": _usage(call, reply)}))
        ending.append(b"data: [DONE]\n\n")
        return StreamEvents(text_events, ending)


async def _chat_completions(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    wire = request.app[_WIRE]
    try:
        body = orjson.loads(await request.read())
        call = parse_chat_request(body, request.headers.get("Authorization"), backend.options)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, BadRequest) as exc:
        return backend.refuse_unparsable(wire, f"Invalid request: {exc}")
    return await backend.serve(request, call, wire)


async def _models(request: web.Request) -> web.Response:
    models = request.app[BACKEND].stats.models() or ["fake"]
    data = [{"id": model, "object": "model", "created": 0, "owned_by": "fake"} for model in models]
    body = orjson.dumps({"object": "list", "data": data})
    return web.Response(body=body, content_type="application/json")


_WIRE = web.AppKey("openai_wire", OpenAIWire)


def add_openai_routes(app: web.Application) -> None:
    """Serve `/v1/chat/completions` and `/v1/models` from the app's `FakeBackend`."""
    app[_WIRE] = OpenAIWire()
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_get("/v1/models", _models)
