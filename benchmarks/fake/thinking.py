"""Deterministic thinking for the fake server's reasoning models: their thoughts and token counts.

Reasoning models spend tokens thinking before they answer. OpenAI's (the o-series, GPT-5) keep the
thoughts hidden and bill them as `reasoning_tokens`, more of them at a higher `reasoning_effort`;
Claude with extended thinking and R1/Qwen-style checkpoints show them, in content blocks, in a
separate field or inline between `<think>` tags. The engine must bill them, keep them out of the
answers it stores and never read a judge's verdict from them, so the fake's thoughts are
unmistakable (they open with THINKING_OPENING and run several sentences) and a judge's thoughts
toy with a verdict other than the one its answer gives: a parser that reads them is caught.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "EFFORTS",
    "THINKING_OPENING",
    "Effort",
    "Reasoning",
    "hidden_reasoning_tokens",
    "thoughts",
]

Effort = Literal["minimal", "low", "medium", "high"]
EFFORTS: tuple[Effort, ...] = get_args(Effort)
THINKING_OPENING = "Let me think step by step about"

# Hidden reasoning is a per-request base of 8-15 tokens times this: the same request always costs
# more at a higher effort, and "high" lands in the thousands, where real budgets start to bind.
_EFFORT_SCALE: dict[Effort, int] = {"minimal": 1, "low": 8, "medium": 32, "high": 128}

_MUSING_WORDS = """
premise constraint example detail edge case wording order tone scope evidence claim step check
count unit assumption definition context intent nuance caveat structure clarity
"""
_MUSING_VOCABULARY = tuple(_MUSING_WORDS.split())


@dataclass(frozen=True)
class Reasoning:
    """How a reply thinks before it answers.

    `visible`: its thoughts are shown and each word counts as a reasoning token; otherwise only
    their number is reported, set by `effort`. `budget` caps the thoughts (Anthropic's
    `budget_tokens`); the request's max tokens cap thoughts and answer together either way.
    """

    visible: bool
    effort: Effort = "medium"
    budget: int | None = None


def hidden_reasoning_tokens(digest: bytes, effort: Effort) -> int:
    """The reasoning tokens a hidden thinker spends on the request that hashes to `digest`."""
    return (8 + digest[12] % 8) * _EFFORT_SCALE[effort]


def thoughts(digest: bytes, subject: str, decoy: str | None) -> list[str]:
    """The words of a few sentences of thinking about `subject`, in single spaces.

    A judge passes the `decoy` verdict it will not give, to be toyed with in passing.
    """
    if decoy is None:
        aside = "I should cover the main points first and the details after them."
    else:
        aside = f"At first glance maybe {decoy} fits, but I should weigh it once more."
    sentences = [
        f"{THINKING_OPENING} {subject}.",
        _musing(digest, b"first"),
        aside,
        _musing(digest, b"second"),
        "Now I know what to write.",
    ]
    return " ".join(sentences).split(" ")


def _musing(digest: bytes, salt: bytes) -> str:
    draws = hashlib.shake_128(digest + salt).digest(9)
    words = [_MUSING_VOCABULARY[b % len(_MUSING_VOCABULARY)] for b in draws[1 : 6 + draws[0] % 4]]
    return f"I notice the {' '.join(words)}."
