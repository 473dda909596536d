"""OpenAI-compatible chat completions (OpenAI, vLLM, SGLang, llama.cpp, Ollama, TGI): JSON, SSE.

Every value read from an answer goes through `engine.endpoints.providers.wire`'s checks. A message
whose content is null is no answer (malformed, retried); a stream is one only if a choice arrived in
it. A streamed null content is not enough to say so: llama.cpp opens every stream with one, and an
answer of zero tokens is a real (empty) answer; a streamed refusal with no text is not, nor are
thoughts with no content at all, as they are not in a JSON body (see below).

Reasoning models: OpenAI's take `max_completion_tokens` and no sampling parameters, and report
their hidden reasoning as `usage.completion_tokens_details.reasoning_tokens`. Thinking
checkpoints behind vLLM, SGLang, llama.cpp or DeepSeek's API send their thoughts in
`reasoning_content` (or `reasoning`, as OpenRouter and newer vLLM do), in whole messages and in
stream deltas; those are kept apart from the answer. A reasoning parser that never saw the end of
the thinking sends no content at all: with thoughts and `finish_reason: length`, that is a real
answer (an empty one: the model ran out of tokens while thinking), not a malformed body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.chat import ChatRequest, ChatResponse
from engine.endpoints.providers.base import HttpBody, HttpCall, error_body_message
from engine.endpoints.providers.wire import (
    answer_text,
    joined_text,
    json_object,
    malformed,
    object_list,
    optional_object,
    optional_text,
    read_answer,
    server_error,
    stop_reason,
    token_count,
)
from engine.errors import RetryableError

__all__ = ["OpenAIProvider"]

_REASONING_FIELDS = ("reasoning_content", "reasoning")


class OpenAIProvider:
    def build(
        self, request: ChatRequest, base_url: str, api_key: str | None, *, stream: bool
    ) -> HttpCall:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": role, "content": content} for role, content in request.messages],
        }
        # A reasoning model counts its thoughts in this cap too, and refuses `max_tokens`.
        body["max_completion_tokens" if request.reasoning else "max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.reasoning_effort is not None:
            body["reasoning_effort"] = request.reasoning_effort
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
        return await read_answer(
            response, stream=stream, parse_body=_parse_completion, stream_state=_StreamState
        )

    def error_detail(self, body: bytes) -> str:
        return error_body_message(body, with_type=False)


def _parse_completion(body: bytes) -> ChatResponse:
    parsed = json_object(body, "the body")
    if "choices" not in parsed and "error" in parsed:
        raise server_error(parsed["error"], "a 200 answer")
    choice = object_list(parsed.get("choices"), "choices", non_empty=True)[0]
    message = optional_object(choice.get("message"), "choices[0].message")
    content = message.get("content")
    reasoning = _reasoning(message)
    finish_reason = stop_reason(choice.get("finish_reason"))
    if content is None:
        if not (reasoning and finish_reason == "length"):
            raise malformed(_no_content(message.get("refusal")))
        content = ""  # it ran out of tokens while thinking: it has no answer
    usage = parsed.get("usage")
    return ChatResponse(
        text=answer_text(content, "choices[0].message.content"),
        finish_reason=finish_reason,
        prompt_tokens=token_count(usage, "prompt_tokens"),
        completion_tokens=token_count(usage, "completion_tokens"),
        reasoning=reasoning,
        reasoning_tokens=_reasoning_tokens(usage),
    )


def _reasoning(fields: dict[str, Any]) -> str | None:
    """The thoughts a message or delta carries in a field of their own, if any."""
    for name in _REASONING_FIELDS:
        text = optional_text(fields.get(name))
        if text:
            return text
    return None


def _reasoning_tokens(usage: object) -> int | None:
    details = usage.get("completion_tokens_details") if isinstance(usage, dict) else None
    return token_count(details, "reasoning_tokens")


def _no_content(refusal: object) -> str:
    """Null content is no answer (a refusal, a tool call, a reasoning model out of tokens): an
    empty text stored in its place would be judged, and paid for, as the model's answer."""
    if isinstance(refusal, str) and refusal:
        return f"the message content is null; the model refused: {refusal[:300]}"
    return "the message content is null or missing"


@dataclass(slots=True)
class _StreamState:
    """What the chunks of one stream have said so far."""

    pieces: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: object = None
    choices_seen: bool = False
    done: bool = False

    def apply(self, payload: bytes) -> bool:
        """Take one `data:` payload; True once `[DONE]` arrived."""
        if payload == b"[DONE]":
            self.done = True
            return True
        chunk = json_object(payload, "an SSE chunk")
        if "error" in chunk and not chunk.get("choices"):
            raise server_error(chunk["error"], "the stream")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        choices = chunk.get("choices")
        if choices is not None:
            for choice in object_list(choices, "a chunk's choices", non_empty=False):
                self._apply_choice(choice)
        return False

    def _apply_choice(self, choice: dict[str, Any]) -> None:
        self.choices_seen = True
        delta = optional_object(choice.get("delta"), "a chunk's delta")
        content = delta.get("content")
        if content is not None:
            self.pieces.append(answer_text(content, "a delta's content"))
        thought = _reasoning(delta)
        if thought is not None:
            self.thoughts.append(thought)
        if isinstance(delta.get("refusal"), str):
            self.refusal.append(delta["refusal"])
        self.finish_reason = stop_reason(choice.get("finish_reason")) or self.finish_reason

    def answer(self) -> ChatResponse:
        """The deltas as one answer; a stream that ended before a finish_reason is truncated."""
        if not self.done and self.finish_reason is None:
            raise RetryableError("truncated", "stream ended before the final chunk")
        if not self.choices_seen:
            raise malformed("the stream ended without a single choice")
        text, refusal = "".join(self.pieces), "".join(self.refusal)
        if refusal and not text:
            raise malformed(_no_content(refusal))
        thoughts = joined_text(self.thoughts)
        if not self.pieces and thoughts and self.finish_reason != "length":
            raise malformed(_no_content(None))  # as the same answer in one JSON body is
        return ChatResponse(
            text=text,
            finish_reason=self.finish_reason,
            prompt_tokens=token_count(self.usage, "prompt_tokens"),
            completion_tokens=token_count(self.usage, "completion_tokens"),
            reasoning=thoughts,
            reasoning_tokens=_reasoning_tokens(self.usage),
        )
