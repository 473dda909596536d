"""OpenAI-compatible chat completions (OpenAI, vLLM, SGLang, llama.cpp, Ollama, TGI): JSON, SSE."""

from __future__ import annotations

from typing import Any

import orjson

from engine.chat import ChatRequest, ChatResponse
from engine.errors import RetryableError
from engine.providers.base import HttpBody, HttpCall, error_body_message

__all__ = ["OpenAIProvider"]


class OpenAIProvider:
    def build(
        self, request: ChatRequest, base_url: str, api_key: str | None, *, stream: bool
    ) -> HttpCall:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": role, "content": content} for role, content in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        body.update(request.extra_fields())
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return HttpCall(f"{base_url}/chat/completions", headers, orjson.dumps(body))

    async def read(self, response: HttpBody, *, stream: bool) -> ChatResponse:
        if stream and response.content_type == "text/event-stream":
            return await _read_stream(response)
        return _parse_completion(await response.read())

    def error_detail(self, body: bytes) -> str:
        return error_body_message(body, with_type=False)


def _malformed(problem: str) -> RetryableError:
    return RetryableError("malformed", f"malformed response: {problem}")


def _parse_completion(body: bytes) -> ChatResponse:
    try:
        parsed = orjson.loads(body)
        choice = parsed["choices"][0]
        text = choice["message"].get("content") or ""
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise _malformed(f"{type(exc).__name__} in body {body[:80]!r}") from None
    if not isinstance(text, str):
        raise _malformed("message content is not a string")
    usage = parsed.get("usage") or {}
    return ChatResponse(
        text=text,
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )


async def _read_stream(response: HttpBody) -> ChatResponse:
    """Accumulate deltas until `[DONE]`; a stream that ends before a finish_reason is truncated."""
    pieces: list[str] = []
    finish_reason: str | None = None
    usage: dict[str, Any] = {}
    done = False
    async for raw_line in response.content:
        line = raw_line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            done = True
            break
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise _malformed(f"bad SSE chunk {payload[:80]!r}") from None
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                pieces.append(content)
            finish_reason = choice.get("finish_reason") or finish_reason
    if not done and finish_reason is None:
        raise RetryableError("truncated", "stream ended before the final chunk")
    return ChatResponse(
        text="".join(pieces),
        finish_reason=finish_reason,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )
