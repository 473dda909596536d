"""Claude's extended thinking on the fake Messages route: which requests it refuses, its signatures.

A request with `"thinking": {"type": "enabled", "budget_tokens": N}` gets a thinking block (with
an opaque `signature`) before its text block, and output tokens that include the thinking. The
real API refuses a budget under 1024 or not under `max_tokens`, and sampling changes that thinking
does not allow; an engine that lets a judge think must be tested against those refusals, so they
are spelled here as the API spells them.
"""

from __future__ import annotations

import base64
import hashlib

from .backend import Refusal
from .thinking import Reasoning

__all__ = ["MIN_BUDGET_TOKENS", "signature", "thinking_reasoning", "thinking_refusal"]

MIN_BUDGET_TOKENS = 1024
_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
_SEE_LIMITS = f"Please consult our documentation at {_DOCS}#max-tokens-and-context-window-size"
_SEE_CONSIDERATIONS = (
    f"Please consult our documentation at {_DOCS}"
    "#important-considerations-when-using-extended-thinking"
)
_BUDGET = "thinking.enabled.budget_tokens"


def thinking_refusal(body: dict[str, object], max_tokens: float) -> Refusal | None:
    """The 400 the Messages API answers this request's `thinking` with, or None."""
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict):
        return _invalid("thinking: Input should be a valid dictionary or object")
    kind = thinking.get("type")
    if kind == "disabled":
        return None
    if kind != "enabled":
        return _invalid(
            f"thinking: Input tag {kind!r} found using 'type' does not match any of the expected "
            "tags: 'disabled', 'enabled'"
        )
    return _budget_refusal(thinking.get("budget_tokens"), max_tokens) or _sampling_refusal(body)


def thinking_reasoning(body: dict[str, object]) -> Reasoning | None:
    """Visible thinking within its budget, for a request `thinking_refusal` let through."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    return Reasoning(visible=True, budget=int(thinking["budget_tokens"]))


def signature(thinking: str) -> str:
    """An opaque, deterministic stand-in for the signature that vouches for a thinking block."""
    return base64.b64encode(hashlib.shake_256(thinking.encode()).digest(96)).decode()


def _budget_refusal(budget: object, max_tokens: float) -> Refusal | None:
    if budget is None:
        return _invalid(f"{_BUDGET}: Field required")
    if isinstance(budget, bool) or not isinstance(budget, int):
        return _invalid(f"{_BUDGET}: Input should be a valid integer")
    if budget < MIN_BUDGET_TOKENS:
        return _invalid(f"{_BUDGET}: Input should be greater than or equal to {MIN_BUDGET_TOKENS}")
    if budget >= max_tokens:
        return _invalid(
            f"`max_tokens` must be greater than `thinking.budget_tokens`. {_SEE_LIMITS}"
        )
    return None


def _sampling_refusal(body: dict[str, object]) -> Refusal | None:
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        return _invalid(
            f"`temperature` may only be set to 1 when thinking is enabled. {_SEE_CONSIDERATIONS}"
        )
    if body.get("top_k") is not None:
        return _invalid(f"`top_k` must be unset when thinking is enabled. {_SEE_CONSIDERATIONS}")
    top_p = body.get("top_p")
    # Thinking tolerates only a light nucleus cut: top_p from 0.95 to 1 (Anthropic's docs).
    if top_p is not None and (not isinstance(top_p, (int, float)) or top_p < 0.95):
        return _invalid(
            "`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. "
            + _SEE_CONSIDERATIONS
        )
    return None


def _invalid(message: str) -> Refusal:
    return Refusal(400, "invalid_request_error", message)
