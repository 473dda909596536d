"""Anthropic Messages API (`POST /v1/messages`): request shape, JSON bodies and SSE event streams.

It differs from chat completions in ways that matter to a benchmark: the system prompt is a
top-level field rather than a message, the key goes in `x-api-key`, there is no `seed`, usage is
`input_tokens`/`output_tokens`, and a stream can fail *after* its 200 with an `error` event (the
usual form of `overloaded_error`), which must be retried like an HTTP 529. A stream counts as
complete only once `message_stop` arrived.

Extended thinking (`thinking` budget) comes back as thinking blocks before the text: their
thoughts are kept apart from the answer (`ChatResponse.reasoning`), and a thinking request sends
no temperature, which the API refuses then. Usage counts thinking in `output_tokens` and gives no
separate figure, so the reasoning token count of a Claude answer is unknown (None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.chat import ChatRequest, ChatResponse, Message
from engine.endpoints.providers.base import HttpBody, HttpCall, error_body_message
from engine.endpoints.providers.wire import (
    answer_text,
    joined_text,
    json_object,
    object_list,
    optional_object,
    optional_text,
    read_answer,
    server_error,
    stop_reason,
    token_count,
)
from engine.errors import FatalRequestError, RetryableError

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider", "messages_url"]

ANTHROPIC_VERSION = "2023-06-01"

# Stream `error` event types -> the engine's error classes (see engine.endpoints.retry).
_STREAM_ERROR_CLASSES = {
    "overloaded_error": "overloaded",
    "rate_limit_error": "rate_limit",
    "api_error": "server_error",
}


def messages_url(base_url: str) -> str:
    """`{base_url}/v1/messages`; a base URL already ending in `/v1` (as OpenAI's do) is accepted."""
    root = base_url.rstrip("/")
    return f"{root}/messages" if root.endswith("/v1") else f"{root}/v1/messages"


class AnthropicProvider:
    def build(
        self, request: ChatRequest, base_url: str, api_key: str | None, *, stream: bool
    ) -> HttpCall:
        system, turns = _split_system(request.messages)
        _refuse_empty_assistant_turns(turns)
        body: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.thinking is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": request.thinking}
        if system:
            body["system"] = system
        body["messages"] = [{"role": role, "content": content} for role, content in turns]
        body.update(request.extra_fields())
        if stream:
            body["stream"] = True
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return HttpCall(messages_url(base_url), headers, orjson.dumps(body))

    async def read(self, response: HttpBody, *, stream: bool) -> ChatResponse:
        return await read_answer(
            response, stream=stream, parse_body=_parse_message, stream_state=_StreamState
        )

    def error_detail(self, body: bytes) -> str:
        """`type: message` from `{"type": "error", "error": {"type": ..., "message": ...}}`."""
        return error_body_message(body, with_type=True)


def _refuse_empty_assistant_turns(turns: list[Message]) -> None:
    """Fail the job before sending what the API is sure to refuse (400 on every rerun).

    A thinking model that spends `max_tokens` thinking has an empty answer (a real one, judged as
    such); the Messages API refuses a conversation holding an empty assistant turn, so the next
    turn cannot be asked. Retrying cannot help: the stored turn stays empty.
    """
    for index, (role, content) in enumerate(turns):
        if role == "assistant" and not content.strip():
            raise FatalRequestError(
                "empty_turn",
                f"the model's answer to turn {index // 2 + 1} is empty (it stopped at max_tokens, "
                "e.g. while thinking), and the Messages API refuses an empty assistant turn, so "
                "this turn cannot be asked: give the model more max_tokens than its thinking "
                "budget, under a new [[model]] name (stored answers are kept)",
                endpoint_fatal=False,
            )


def _split_system(messages: tuple[Message, ...]) -> tuple[str, list[Message]]:
    """The system text (top-level in this API) and the other turns, same-role neighbours joined.

    Our requests never hold two consecutive turns of one role, but the API would merge them
    anyway; joining them here keeps the request valid whatever built it.
    """
    system: list[str] = []
    turns: list[Message] = []
    for role, content in messages:
        if role == "system":
            system.append(content)
        elif turns and turns[-1][0] == role:
            turns[-1] = (role, f"{turns[-1][1]}\n\n{content}")
        else:
            turns.append((role, content))
    return "\n\n".join(system), turns


def _parse_message(body: bytes) -> ChatResponse:
    parsed = json_object(body, "the body")
    if parsed.get("type") == "error" or ("content" not in parsed and "error" in parsed):
        raise server_error(parsed.get("error"), "a 200 answer")
    blocks = object_list(parsed.get("content"), "content", non_empty=False)
    texts = [answer_text(b.get("text"), "a text block's text") for b in blocks if _is_text(b)]
    thoughts = [t for b in blocks if _is_thinking(b) and (t := optional_text(b.get("thinking")))]
    usage = parsed.get("usage")
    return ChatResponse(
        text="".join(texts),
        finish_reason=stop_reason(parsed.get("stop_reason")),
        prompt_tokens=token_count(usage, "input_tokens"),
        completion_tokens=token_count(usage, "output_tokens"),
        reasoning="\n\n".join(thoughts) or None,
    )


def _is_text(block: dict[str, Any]) -> bool:
    # Other blocks (thinking, tool_use, blocks added later) carry no part of the answer.
    return block.get("type") == "text"


def _is_thinking(block: dict[str, Any]) -> bool:
    # `redacted_thinking` blocks hold only encrypted thoughts: nothing a reader could use.
    return block.get("type") == "thinking"


@dataclass(slots=True)
class _StreamState:
    """What the events of one stream have said so far."""

    pieces: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    stop_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    stopped: bool = False

    def apply(self, payload: bytes) -> bool:
        """Take one event's `data:` payload; True once `message_stop` arrived."""
        event = json_object(payload, "an SSE event")
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = optional_object(event.get("delta"), "a content_block_delta's delta")
            if delta.get("type") == "text_delta":
                self.pieces.append(answer_text(delta.get("text"), "a text_delta's text"))
            elif delta.get("type") == "thinking_delta":
                thought = optional_text(delta.get("thinking"))
                if thought is not None:
                    self.thoughts.append(thought)
        elif kind == "message_start":
            message = optional_object(event.get("message"), "message_start's message")
            self.input_tokens = token_count(message.get("usage"), "input_tokens")
            self.output_tokens = token_count(message.get("usage"), "output_tokens")
        elif kind == "message_delta":
            delta = optional_object(event.get("delta"), "message_delta's delta")
            self.stop_reason = stop_reason(delta.get("stop_reason")) or self.stop_reason
            usage = event.get("usage")
            # Counts in message_delta are cumulative, so they replace message_start's.
            self.input_tokens = token_count(usage, "input_tokens") or self.input_tokens
            self.output_tokens = token_count(usage, "output_tokens") or self.output_tokens
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            raise _stream_error(event.get("error"))
        # content_block_start/stop, ping and event types added later carry nothing we keep.
        return self.stopped

    def answer(self) -> ChatResponse:
        """The events as one answer; a stream that ended before `message_stop` is truncated."""
        if not self.stopped:
            raise RetryableError("truncated", "stream ended before message_stop")
        return ChatResponse(
            text="".join(self.pieces),
            finish_reason=self.stop_reason,
            prompt_tokens=self.input_tokens,
            completion_tokens=self.output_tokens,
            reasoning=joined_text(self.thoughts),
        )


def _stream_error(error: object) -> RetryableError:
    """An `error` event: the server gave up mid-stream (typically overloaded); try again."""
    details = error if isinstance(error, dict) else {}
    kind, message = details.get("type"), details.get("message")
    error_class = _STREAM_ERROR_CLASSES.get(str(kind), "server_error")
    return RetryableError(
        error_class,
        f"stream broke off with an error event: {str(kind)[:100]}: {str(message)[:300]}",
    )
