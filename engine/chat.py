"""Chat requests and responses as the engine sees them, and the cache key that identifies a request.

The cache key is the sha256 of a canonical JSON form of everything that shapes the answer: API kind,
the user's model label and the served model string, the messages, the sampling parameters and the
sample index. Never the URL, the API key or the transport (JSON vs SSE): moving a model to another
replica, rotating a key or turning on streaming must not cost a single request.

Reasoning endpoints send no temperature (OpenAI's reasoning models and Claude's extended thinking
refuse one), so their requests have none; `reasoning`, `reasoning_effort` and `thinking` enter the
key only when set, so every request without them keeps the key it always had.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["CHARS_PER_TOKEN", "ChatRequest", "ChatResponse", "Message", "reasoning_settings"]

# A request's weight before the server says how many tokens it was (rate windows, plan).
CHARS_PER_TOKEN = 4

Message = tuple[str, str]  # (role, content): compact and hashable


def reasoning_settings(
    reasoning: bool, reasoning_effort: str | None, thinking: int | None
) -> dict[str, Any]:
    """The reasoning settings that are set, by name: in a request's cache key, and stored with a
    judge's judgments (settings left unset appear in neither, so older keys and rows hold)."""
    settings: dict[str, Any] = {"reasoning": True} if reasoning else {}
    if reasoning_effort is not None:
        settings["reasoning_effort"] = reasoning_effort
    if thinking is not None:
        settings["thinking"] = thinking
    return settings


@dataclass(frozen=True, slots=True)
class ChatRequest:
    api: str
    label: str
    model: str
    messages: tuple[Message, ...]
    max_tokens: int
    temperature: float | None  # None: not sent (a reasoning or thinking request)
    sample: int = 0
    seed: int | None = None
    extra_body: bytes | None = None  # canonical JSON of provider-specific fields (`grammar`, ...)
    reasoning: bool = False  # an OpenAI reasoning model: max_completion_tokens, no sampling
    reasoning_effort: str | None = None
    thinking: int | None = None  # Anthropic's extended thinking budget, in tokens

    def canonical(self) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": self.max_tokens}
        # Optional parameters only appear when set, so adding them never changed an older key.
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.seed is not None:
            params["seed"] = self.seed
        if self.extra_body is not None:
            params["extra_body"] = orjson.loads(self.extra_body)
        params |= reasoning_settings(self.reasoning, self.reasoning_effort, self.thinking)
        return {
            "api": self.api,
            "label": self.label,
            "model": self.model,
            "messages": [{"role": role, "content": content} for role, content in self.messages],
            "params": params,
            "sample": self.sample,
        }

    def extra_fields(self) -> dict[str, Any]:
        return {} if self.extra_body is None else orjson.loads(self.extra_body)

    def canonical_json(self) -> bytes:
        # Not memoised: a queued request would then carry a second copy of its prompt, which
        # doubled peak memory with thousands of judge requests waiting for their endpoint.
        return orjson.dumps(self.canonical(), option=orjson.OPT_SORT_KEYS)

    def cache_key(self) -> str:
        return hashlib.sha256(self.canonical_json()).hexdigest()

    def prompt_chars(self) -> int:
        return sum(len(content) for _, content in self.messages)

    def estimated_prompt_tokens(self) -> int:
        """CHARS_PER_TOKEN characters per token, rounded up."""
        return -(-self.prompt_chars() // CHARS_PER_TOKEN)


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """An answer as received. `text` is the content exactly as sent (inline `<think>` blocks
    included); `reasoning` is thinking that came in a field of its own (`reasoning_content`,
    `reasoning`, Claude's thinking blocks), `reasoning_tokens` the count OpenAI reports (part of
    `completion_tokens`). Both are informational: None when absent or not what the API documents.
    """

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency: float = 0.0
    reasoning: str | None = None
    reasoning_tokens: int | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)
