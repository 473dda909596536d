"""Scripted server replies (benchmarks/fake/script.py), and the engine run with a time bound.

The one scripted server of the tests is the fake's scripted mode. A reply is the JSON form
`FakeServer.script` loads: status, headers, the body's chunks (base64), whether the connection is
cut before the body ends, a silence before it starts, and the requests it answers (one model's,
or those whose body holds given strings; by default any). Bodies are encoded with the standard
`json` module on purpose: unlike orjson it writes integers beyond 64 bits and `NaN`, which servers
send too.

`run_engine` runs a command the way `mtbench` does (exit 0 if every job succeeded, 1 if some
failed, the error's exit code otherwise) but fails the test if the run has not ended within its
bound: a run that hangs is the bug these tests look for, and must not hang the suite.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.config import load_config
from engine.errors import MtbenchError
from engine.run.runner import execute

__all__ = [
    "RUN_BOUND",
    "anthropic_message",
    "json_reply",
    "openai_completion",
    "reply",
    "run_engine",
    "sse_reply",
]

RUN_BOUND = 20.0  # seconds any scripted run may take, retries and backoff included


def reply(
    status: int = 200,
    chunks: Sequence[bytes] = (),
    *,
    content_type: str | None = "application/json",
    headers: Iterable[tuple[str, str]] = (),
    cut: bool = False,
    delay: float = 0.0,
    model: str | None = None,
    contains: Sequence[str] = (),
) -> dict[str, Any]:
    """One scripted reply; `content_type=None` sends none (aiohttp then says octet-stream).
    `model` and `contains` make it answer only that model's requests, or those whose JSON body
    holds every string; `delay` is the silence before the status line."""
    pairs = [] if content_type is None else [["Content-Type", content_type]]
    pairs += [[name, value] for name, value in headers]
    encoded = [base64.b64encode(chunk).decode() for chunk in chunks]
    scripted: dict[str, Any] = {"status": status, "headers": pairs, "chunks": encoded}
    scripted |= {"cut": cut, "delay": delay}
    if model is not None:
        scripted["model"] = model
    if contains:
        scripted["contains"] = list(contains)
    return scripted


def json_body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def json_reply(payload: object, status: int = 200, **options: Any) -> dict[str, Any]:
    return reply(status, [json_body(payload)], **options)


def sse_reply(events: Sequence[object], **options: Any) -> dict[str, Any]:
    """An SSE stream, one chunk per event: bytes go as they are, anything else as `data: <json>`."""
    chunks = [e if isinstance(e, bytes) else b"data: " + json_body(e) + b"\n\n" for e in events]
    options.setdefault("content_type", "text/event-stream")
    return reply(200, chunks, **options)


def openai_completion(
    content: object = "An answer.",
    *,
    finish_reason: object = "stop",
    usage: object = None,
    **message: object,
) -> dict[str, Any]:
    """A chat.completion object; every field can be given any (wrong) value."""
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": content, **message},
        "finish_reason": finish_reason,
    }
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [choice]}
    body["usage"] = (
        {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
        if usage is None
        else usage
    )
    return body


def anthropic_message(
    content: object = None, *, stop_reason: object = "end_turn", usage: object = None
) -> dict[str, Any]:
    """A Messages `message` object; `content` defaults to one text block."""
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "An answer."}] if content is None else content,
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 12, "output_tokens": 3} if usage is None else usage,
    }


def run_engine(config: Path, command: str = "generate", bound: float = RUN_BOUND) -> int:
    """Run `command` in-process; its exit code as `mtbench` would return it."""

    async def bounded() -> bool:
        result = await asyncio.wait_for(execute(load_config(config), command), bound)
        return result.ok

    try:
        ok = asyncio.run(bounded())
    except MtbenchError as error:
        return error.exit_code
    except asyncio.TimeoutError:
        raise AssertionError(f"the run did not end within {bound:g}s") from None
    return 0 if ok else 1
