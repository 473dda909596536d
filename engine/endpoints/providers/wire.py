"""Values from a server are untrusted input: the checks both providers apply to what they read.

A server (or a proxy in front of it) can send anything on a well-formed connection: a number
where the answer text belongs, a finish reason that is an object, token counts beyond 64 bits,
invalid UTF-8, SSE payloads that are lists. Such a value must never reach SQLite (which refuses
to bind it) nor make an adapter raise something the endpoint does not expect (the attempt's task
would die and its job never finish). So every field the engine keeps is read through here:

- the answer text must be a string, and the structures around it the JSON objects and lists the
  API documents; anything else makes the answer `malformed`, which is retried;
- a finish reason is a short string or None, a token count an int in 0..2**62 or None, thinking
  (a reasoning field, a thinking block) a string or None: they are informational, so a wrong one
  is dropped, never a reason to fail an answer that has a text.

`read_answer` is how both adapters read a 2xx answer: a JSON body, or an event stream read line by
line (with its own bound on a line's length) into the adapter's `StreamState`; anything an adapter
raises that is not a RequestError becomes one failed attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from engine.errors import FatalRequestError, RequestError, RetryableError

if TYPE_CHECKING:
    from engine.chat import ChatResponse
    from engine.endpoints.providers.base import HttpBody

__all__ = [
    "MAX_REASON_CHARS",
    "MAX_SSE_LINE_BYTES",
    "MAX_TOKEN_COUNT",
    "StreamState",
    "answer_text",
    "joined_text",
    "json_object",
    "malformed",
    "object_list",
    "optional_object",
    "optional_text",
    "read_answer",
    "server_error",
    "stop_reason",
    "token_count",
]

MAX_REASON_CHARS = 64  # real ones are a word ("stop", "end_turn", "content_filter")
MAX_TOKEN_COUNT = 2**62  # far beyond any real count, and SQLite's INTEGER holds it
MAX_SSE_LINE_BYTES = 4 * 1024 * 1024  # a whole long answer in one event still fits

JsonObject = dict[str, Any]


def malformed(problem: str) -> RetryableError:
    return RetryableError("malformed", f"malformed response: {problem}")


def _excerpt(raw: bytes) -> str:
    return repr(raw[:80]) + ("..." if len(raw) > 80 else "")


def json_object(raw: bytes, what: str) -> JsonObject:
    """`raw` decoded as JSON, which must be an object."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise malformed(f"{what} is not JSON ({exc}): {_excerpt(raw)}") from None
    if not isinstance(value, dict):
        raise malformed(f"{what} is not a JSON object: {_excerpt(raw)}")
    return value


def optional_object(value: object, what: str) -> JsonObject:
    """An object, or {} for a field that is absent or null."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise malformed(f"{what} is {_kind(value)}, not an object")
    return value


def object_list(value: object, what: str, *, non_empty: bool) -> list[JsonObject]:
    """A list whose items are all objects (and which has some, if `non_empty`)."""
    if not isinstance(value, list):
        raise malformed(f"{what} is {_kind(value)}, not a list")
    if non_empty and not value:
        raise malformed(f"{what} is empty")
    for item in value:
        if not isinstance(item, dict):
            raise malformed(f"{what} holds {_kind(item)}, not an object")
    return value


def answer_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise malformed(f"{what} is {_kind(value)}, not a string")
    return value


def optional_text(value: object) -> str | None:
    """An informational text (thinking): the string, or None for anything else."""
    return value if isinstance(value, str) else None


def joined_text(pieces: list[str]) -> str | None:
    """Pieces of an informational text as one string, None when there were none."""
    return "".join(pieces) if pieces else None


def stop_reason(value: object) -> str | None:
    """A finish/stop reason as stored: a string cut to MAX_REASON_CHARS, anything else None."""
    return value[:MAX_REASON_CHARS] if isinstance(value, str) else None


def token_count(usage: object, name: str) -> int | None:
    """`usage[name]` if usage is an object and that is an int in 0..MAX_TOKEN_COUNT, else None."""
    value = usage.get(name) if isinstance(usage, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_COUNT:
        return value
    return None


def server_error(error: object, where: str) -> RetryableError:
    """An `error` the server put in a 200 body or in an event: it gave up, so try again."""
    details = error if isinstance(error, dict) else {"message": error}
    kind, message = details.get("type"), details.get("message")
    said = ": ".join(str(part)[:300] for part in (kind, message) if part is not None)
    return RetryableError("server_error", f"{where} carried an error: {said or 'no message'}")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return names.get(type(value), "a list" if isinstance(value, list) else "an object")


class StreamState(Protocol):
    """What the events of one stream have said so far, in an adapter's terms."""

    def apply(self, payload: bytes) -> bool:
        """Take one event's `data:` payload; True once the stream says it is complete."""
        ...

    def answer(self) -> ChatResponse:
        """The answer once the stream ended (a RequestError if it is not one)."""
        ...


async def read_answer(
    response: HttpBody,
    *,
    stream: bool,
    parse_body: Callable[[bytes], ChatResponse],
    stream_state: Callable[[], StreamState],
) -> ChatResponse:
    """A 2xx answer: an event stream when one was asked for and the server sent one (it may
    answer a stream request with a plain JSON body), else a JSON body."""
    with _adapter_errors_contained():
        if stream and response.content_type == "text/event-stream":
            state = stream_state()
            await _read_sse(response, state.apply)
            return state.answer()
        return parse_body(await response.read())


async def _read_sse(response: HttpBody, on_data: Callable[[bytes], bool]) -> None:
    """Call `on_data` with each `data:` payload until it returns True (the stream is complete)
    or the body ends.

    Lines are split here rather than by aiohttp's `readline`, which raises an exception of its
    own, outside aiohttp's client errors, on a line over 512 KiB: one event can legitimately
    carry a whole answer. Comments, `event:`, `id:` and `retry:` lines carry nothing we use.
    """
    parts: list[bytes] = []
    size = 0
    async for chunk in response.chunks():
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            line = b"".join((*parts, chunk[start:end])) if parts else chunk[start:end]
            parts, size, start = [], 0, end + 1
            if _dispatch(line, on_data):
                return
        if start < len(chunk):
            parts.append(chunk[start:])
            size += len(chunk) - start
            if size > MAX_SSE_LINE_BYTES:
                raise malformed(f"an SSE line is longer than {MAX_SSE_LINE_BYTES} bytes")
    if parts:
        _dispatch(b"".join(parts), on_data)


def _dispatch(line: bytes, on_data: Callable[[bytes], bool]) -> bool:
    line = line.strip()
    return line.startswith(b"data:") and on_data(line[5:].strip())


@contextmanager
def _adapter_errors_contained() -> Iterator[None]:
    """Let RequestErrors through, for the endpoint to handle (the transport has turned its own
    errors into RequestErrors already); anything else is a bug in an adapter, which must fail one
    attempt with a clear message rather than kill the task that waits for it (its job would never
    finish). It is not retried: the same answer would only fail the same way, and be paid for
    again."""
    try:
        yield
    except RequestError:
        raise
    except Exception as exc:
        raise FatalRequestError(
            "internal",
            f"internal error reading the answer ({type(exc).__name__}: {exc}); please report it",
            endpoint_fatal=False,
        ) from exc
