"""Strategies for the wire fuzz: server replies, each with what the engine must make of it.

A `WireReply` is one scripted reply (see tests/support/scripted.py) and the claim a test can check:

- `answer`: the row (text, finish reason, prompt tokens, completion tokens) the engine must store
  when this reply answers a request. Such a reply is well-formed where it matters (the text, the
  structure around it, a content type matching the transport) while its informational fields
  (finish reason, usage) and extra fields may hold anything; the row follows the rules the
  providers promise: a reason is a string cut to 64 characters, else NULL; a count an int in
  0..2**62, else NULL.
- `fails`: this reply can never give an answer (an error status, a broken structure, a stream
  that never ends properly, a JSON body cut short).
- neither: no claim (random bytes, a stream whose connection is cut after its last event).

Structured replies start from the API's documented shape and apply at most one mutation that
breaks it, so most examples probe one thing; the informational fields are wrong in most of them.
Waits asked for by headers run from nothing to forever (`inf`, a date in 2099): the run's
`max_retry_after` caps them. Redirects (3xx) name loopback or nonsense targets only, never
another host: they are never followed, and test traffic stays on 127.0.0.1 whatever happens.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp.helpers import parse_content_type
from hypothesis import strategies as st

from tests.support.scripted import reply

__all__ = ["Answer", "WireReply", "scripts"]

Answer = tuple[str, str | None, int | None, int | None]
Draw = Callable[[st.SearchStrategy[Any]], Any]

MAX_REASON_CHARS = 64
MAX_TOKEN_COUNT = 2**62


@dataclass(frozen=True)
class WireReply:
    script: dict[str, Any]
    answer: Answer | None
    fails: bool
    label: str  # what the reply is, for a failing example's report
    category: str  # a coarser name, for hypothesis's statistics


def reason(value: object) -> str | None:
    return value[:MAX_REASON_CHARS] if isinstance(value, str) else None


def count(usage: object, name: str) -> int | None:
    value = usage.get(name) if isinstance(usage, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_COUNT:
        return value
    return None


NUMBERS = (
    st.integers(-(2**70), 2**70)
    | st.sampled_from([2**62, 2**62 + 1, 2**63 + 1, -1, 0])
    | st.floats(allow_nan=False, allow_infinity=False)
)
SCALARS = st.none() | st.booleans() | NUMBERS | st.text(max_size=12)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)


ANY_JSON = st.recursive(SCALARS, _containers, max_leaves=6)
_BY_KIND: dict[type, st.SearchStrategy[Any]] = {
    type(None): st.none(),
    bool: st.booleans(),
    float: NUMBERS,
    str: st.text(max_size=12),
    list: st.lists(ANY_JSON, max_size=3),
    dict: st.dictionaries(st.text(max_size=6), ANY_JSON, max_size=3),
}


def not_a(*kinds: type) -> st.SearchStrategy[Any]:
    """Any JSON value that is none of `kinds`."""
    return st.one_of([values for kind, values in _BY_KIND.items() if kind not in kinds])


REASONS = st.sampled_from(["stop", "length", "end_turn", "x" * 100]) | ANY_JSON
TEXTS = st.text(max_size=30) | st.text(min_size=2000, max_size=4000)


def usages(prompt: str, completion: str) -> st.SearchStrategy[Any]:
    counts = st.integers(0, 5000) | SCALARS
    shaped = st.fixed_dictionaries({prompt: counts, completion: counts})
    return shaped | ANY_JSON


def extras(reserved: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.text(max_size=8).filter(lambda key: key not in reserved)
    return st.dictionaries(keys, ANY_JSON, max_size=2)


HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
CONTENT_TYPES = (
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/event-stream",
            "text/event-stream; charset=utf-8",
            "Text/Event-Stream",
            "text/plain",
            "text/html; charset=latin-1",
            "application/x-ndjson",
        ]
    )
    | st.none()
    | HEADER_TEXT
)
WAITS = st.sampled_from(
    [
        *("0", "1", "0.2", "-3", "soon", "", "Thu, 01 Jan 1970 00:00:00 GMT"),
        *("86400", "1e9", "inf", "1e999", "nan", "Thu, 01 Jan 2099 00:00:00 GMT"),
    ]
)
WAIT_HEADERS = st.lists(
    st.tuples(st.just("Retry-After"), WAITS)
    | st.tuples(
        st.just("retry-after-ms"),
        st.sampled_from(["0", "250", "1000", "nan", "x", "86400000", "inf"]),
    )
    | st.tuples(
        st.just("x-ratelimit-reset-requests"),
        st.sampled_from(["1s", "20ms", "0.5s", "?", "6m0s", "100h"]),
    )
    | st.tuples(
        st.just("anthropic-ratelimit-requests-reset"),
        st.sampled_from(["2000-01-01T00:00:00Z", "tomorrow", "2000-13-45T99:99:99Z"]),
    ),
    max_size=2,
)
OTHER_HEADERS = st.lists(
    st.tuples(st.sampled_from(["X-Request-Id", "Cache-Control", "Server"]), HEADER_TEXT)
    | st.just(("Connection", "close"))
    | st.tuples(st.just("Content-Encoding"), st.sampled_from(["br", "zstd", "gzip", "deflate"])),
    max_size=2,
)
LOCATIONS = st.sampled_from(
    ["http://127.0.0.1:9/elsewhere", "/v1/chat/completions", "", "\x00\r\nSet-Cookie: x", "::"]
)


def is_sse(content_type: str | None) -> bool:
    return content_type is not None and parse_content_type(content_type)[0] == "text/event-stream"


def in_chunks(draw: Draw, body: bytes) -> list[bytes]:
    """`body` split at a few drawn places: the client must not care where reads end."""
    cuts = sorted(draw(st.sets(st.integers(0, len(body)), max_size=4)))
    edges = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges) if b > a]


def json_bytes(value: object) -> bytes:
    return json.dumps(value).encode()


@st.composite
def openai_json(draw: Draw, stream: bool) -> WireReply:
    text, finish = draw(TEXTS), draw(REASONS)
    usage = draw(usages("prompt_tokens", "completion_tokens"))
    message: dict[str, Any] = {"role": "assistant", "content": text}
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
    body: Any = {"object": "chat.completion", "choices": [choice], "usage": usage}
    body.update(draw(extras({"choices", "usage", "error"})))
    mutation = draw(
        st.sampled_from([None, None, "content", "message", "choice", "choices", "body"])
    )
    if mutation == "content":
        message["content"] = draw(not_a(str))
        if message["content"] is None and draw(st.booleans()):
            message["refusal"] = draw(st.text(max_size=20))
    elif mutation == "message":
        choice["message"] = draw(not_a(dict))
    elif mutation == "choice":
        body["choices"].append(choice)
        body["choices"][draw(st.integers(0, 1))] = draw(not_a(dict))
    elif mutation == "choices":
        body["choices"] = draw(not_a(list) | st.just([]))
    elif mutation == "body":
        body = draw(not_a(dict))
    answer = (
        text,
        reason(finish),
        count(usage, "prompt_tokens"),
        count(usage, "completion_tokens"),
    )
    return structured(draw, json_bytes(body), stream, False, mutation, answer, "openai json")


def sse_line(payload: object, end: bytes) -> bytes:
    encoded = payload if isinstance(payload, bytes) else json_bytes(payload)
    return b"data: " + encoded + end + end


NOISE = st.sampled_from([b": ping", b"event: message", b"id: 7", b"retry: 100", b"", b":"])


def with_noise(draw: Draw, lines: list[bytes], end: bytes) -> list[bytes]:
    """Comments, field lines and blank lines between events: all carry nothing."""
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(NOISE) + end)
    return lines


@st.composite
def openai_sse(draw: Draw, stream: bool) -> WireReply:
    pieces, finish = draw(st.lists(st.text(max_size=10), max_size=5)), draw(REASONS)
    usage = draw(usages("prompt_tokens", "completion_tokens") | st.none())
    end = draw(st.sampled_from([b"\n", b"\r\n"]))
    chunks: list[Any] = [{"choices": [{"delta": {"role": "assistant", "content": None}}]}]
    chunks += [{"choices": [{"delta": {"content": p}, "finish_reason": None}]} for p in pieces]
    chunks.append({"choices": [{"delta": {}, "finish_reason": finish}]})
    if usage is not None:
        chunks.append({"choices": [], "usage": usage})
    mutation = draw(
        st.sampled_from(
            [None, None, "chunk", "content", "choices", "choice", "delta", "garbage", "truncate"]
        )
    )
    at = draw(st.integers(1, len(chunks) - 1))
    last_choice = chunks[at]["choices"] or [{}]
    if mutation == "chunk":
        chunks[at] = draw(not_a(dict))
    elif mutation == "content":
        last_choice[0]["delta"] = {"content": draw(not_a(str, type(None)))}
        chunks[at]["choices"] = last_choice
    elif mutation == "choices":
        chunks[at]["choices"] = draw(not_a(list, type(None)))
    elif mutation == "choice":
        chunks[at]["choices"] = [draw(not_a(dict))]
    elif mutation == "delta":
        chunks[at]["choices"] = [{"delta": draw(not_a(dict, type(None)))}]
    elif mutation == "garbage":
        chunks[at] = draw(st.sampled_from([b"{not json", b"", b"[DONE", b'"\\ud800"']))
    lines = [sse_line(chunk, end) for chunk in chunks]
    if mutation == "truncate":
        lines.pop(len(pieces) + 1)  # the chunk with the finish reason; and no [DONE] below
    else:
        lines.append(b"data: [DONE]" + end + end)
        lines += [sse_line(junk, end) for junk in draw(st.lists(ANY_JSON, max_size=2))]
    body = b"".join(with_noise(draw, lines, end))
    answer = ("".join(pieces), reason(finish) or None, count(usage, "prompt_tokens"))
    answer += (count(usage, "completion_tokens"),)
    return structured(draw, body, stream, True, mutation, answer, "openai sse")


@st.composite
def anthropic_json(draw: Draw, stream: bool) -> WireReply:
    text, stop = draw(TEXTS), draw(REASONS)
    usage = draw(usages("input_tokens", "output_tokens"))
    split = draw(st.integers(0, len(text)))
    blocks: list[Any] = [
        {"type": "thinking", "thinking": draw(ANY_JSON)},
        {"type": "text", "text": text[:split]},
        {"type": "text", "text": text[split:]},
    ]
    body: Any = {"type": "message", "content": blocks, "stop_reason": stop, "usage": usage}
    body.update(draw(extras({"type", "content", "stop_reason", "usage", "error"})))
    mutation = draw(st.sampled_from([None, None, "text", "block", "content", "body", "error"]))
    if mutation == "text":
        blocks[2]["text"] = draw(not_a(str))
    elif mutation == "block":
        blocks.insert(draw(st.integers(0, 3)), draw(not_a(dict)))
    elif mutation == "content":
        body["content"] = draw(not_a(list))
    elif mutation == "body":
        body = draw(not_a(dict))
    elif mutation == "error":
        body = {"type": "error", "error": draw(ANY_JSON)}
    answer = (text, reason(stop), count(usage, "input_tokens"), count(usage, "output_tokens"))
    return structured(draw, json_bytes(body), stream, False, mutation, answer, "anthropic json")


@st.composite
def anthropic_sse(draw: Draw, stream: bool) -> WireReply:
    pieces, stop = draw(st.lists(st.text(max_size=10), max_size=5)), draw(REASONS)
    start_usage = draw(usages("input_tokens", "output_tokens"))
    final_usage = draw(usages("input_tokens", "output_tokens"))
    end = draw(st.sampled_from([b"\n", b"\r\n"]))
    events: list[Any] = [
        {"type": "message_start", "message": {"usage": start_usage}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        {"type": "ping"},
        *(
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": p}}
            for p in pieces
        ),
        {"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": 1}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": stop}, "usage": final_usage},
        {"type": "message_stop"},
    ]
    mutation = draw(
        st.sampled_from(
            [None, None, "event", "text", "delta", "message", "error", "garbage", "stop"]
        )
    )
    at = draw(st.integers(0, len(events) - 2))
    if mutation == "event":
        events[at] = draw(not_a(dict))
    elif mutation == "text":
        events[at] = {"type": "content_block_delta", "delta": {"type": "text_delta", "text": 2}}
    elif mutation == "delta":
        events[at] = {"type": draw(st.sampled_from(["content_block_delta", "message_delta"]))}
        events[at]["delta"] = draw(not_a(dict, type(None)))
    elif mutation == "message":
        events[0]["message"] = draw(not_a(dict, type(None)))
    elif mutation == "error":
        events[at] = {"type": "error", "error": draw(ANY_JSON)}
    elif mutation == "garbage":
        events[at] = draw(st.sampled_from([b"{not json", b"", b"[DONE]"]))
    elif mutation == "stop":
        events.pop()
    lines = with_noise(draw, [sse_line(event, end) for event in events], end)
    lines += [sse_line(junk, end) for junk in draw(st.lists(ANY_JSON, max_size=2))]
    answer = (
        "".join(pieces),
        reason(stop) or None,
        count(final_usage, "input_tokens") or count(start_usage, "input_tokens"),
        count(final_usage, "output_tokens") or count(start_usage, "output_tokens"),
    )
    return structured(draw, b"".join(lines), stream, True, mutation, answer, "anthropic sse")


def structured(
    draw: Draw,
    body: bytes,
    stream: bool,
    is_stream: bool,
    mutation: str | None,
    answer: Answer,
    kind: str,
) -> WireReply:
    """A 2xx reply of `body`, and what it must give: the answer if the body is intact and read
    as what it is (an SSE body only as a stream; a JSON body, unless its content type says SSE
    on a streamed request), else nothing."""
    content_type = draw(CONTENT_TYPES)
    headers = draw(OTHER_HEADERS | WAIT_HEADERS)
    cut = draw(st.integers(0, 9)) == 0
    read_as_stream = stream and is_sse(content_type)
    # A Content-Encoding the body does not have makes it unreadable (aiohttp decodes by it).
    encoded = any(name == "Content-Encoding" for name, _ in headers)
    intact = mutation is None and read_as_stream == is_stream and not encoded
    status = draw(st.sampled_from([200, 200, 200, 201, 203]))
    script = reply(
        status, in_chunks(draw, body), content_type=content_type, headers=headers, cut=cut
    )
    label = f"{kind} {status} {content_type!r} mutation={mutation} cut={cut}"
    category = f"{kind}: {mutation or 'intact'}"
    if cut:
        # A cut JSON body is truncated; a stream may already be complete when the cut comes.
        return WireReply(script, None, not intact or not is_stream, label, category)
    return WireReply(script, answer if intact else None, not intact, label, category)


@st.composite
def error_reply(draw: Draw) -> WireReply:
    statuses = st.sampled_from([400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 529])
    status = draw(statuses | st.integers(400, 599))
    error = {"error": {"type": draw(ANY_JSON), "message": draw(ANY_JSON)}}
    body = draw(st.just(json_bytes(error)) | ANY_JSON.map(json_bytes) | st.binary(max_size=40))
    script = reply(
        status, in_chunks(draw, body), content_type=draw(CONTENT_TYPES), headers=draw(WAIT_HEADERS)
    )
    return WireReply(script, None, True, f"error {status}", "error status")


@st.composite
def redirect_reply(draw: Draw) -> WireReply:
    """A 3xx, with or without a Location: never followed, so never an answer."""
    status = draw(st.sampled_from([301, 302, 303, 307, 308]) | st.integers(300, 399))
    headers = draw(st.lists(st.tuples(st.just("Location"), LOCATIONS), max_size=1))
    body = draw(st.binary(max_size=40))
    script = reply(status, [body], content_type=draw(CONTENT_TYPES), headers=headers)
    return WireReply(script, None, True, f"redirect {status}", "redirect")


BROKEN_BODIES = st.sampled_from(
    [
        b"",
        b"   ",
        b"null",
        b'{"choices": NaN}',
        b'{"usage": {"prompt_tokens": 1e999}}',
        b'{"choices": [{"message": {"content": "\xff\xfe"}}]}',
        b'{"choices": [{"message": {"content": "\\ud800"}}]}',
        b"[" * 3000 + b"]" * 3000,
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        b": only a comment\n\n: and another\n\n",
        b"data: [DONE]\n\n",
    ]
)


@st.composite
def broken_reply(draw: Draw) -> WireReply:
    """A 2xx whose body no API would send: always malformed or truncated."""
    body = draw(BROKEN_BODIES)
    script = reply(200, in_chunks(draw, body), content_type=draw(CONTENT_TYPES))
    return WireReply(script, None, True, f"broken body {body[:20]!r}", "broken body")


@st.composite
def random_reply(draw: Draw) -> WireReply:
    body = draw(st.binary(max_size=60))
    script = reply(draw(st.sampled_from([200, 201])), [body], content_type=draw(CONTENT_TYPES))
    return WireReply(script, None, False, f"random bytes {body!r}", "random bytes")


def replies(api: str, stream: bool) -> st.SearchStrategy[WireReply]:
    if api == "openai":
        answers = openai_json(stream) | openai_sse(stream)
    else:
        answers = anthropic_json(stream) | anthropic_sse(stream)
    # Half the replies are answers: that is where a wrong type can slip through unnoticed.
    others = error_reply() | redirect_reply() | broken_reply() | random_reply()
    return st.one_of(answers, answers, answers, others)


def scripts(api: str, stream: bool) -> st.SearchStrategy[list[WireReply]]:
    """One to four replies, played in turn (and again) to the requests of one run."""
    return st.lists(replies(api, stream), min_size=1, max_size=4)
