"""Deterministic fake answers and fake judge verdicts, derived from a hash of the request.

The engine caches answers by request, so tests need "same request, same text" to check the cache,
and a judge whose verdicts (including the malformed ones real judges sometimes write) come in
known proportions to check parsing and scoring. Everything here is a pure function of the request
key and the options — randomness for `sample_noise` comes in from the caller as extra key bytes —
and costs a couple of hashes and one join, so it never shows up in benchmark numbers. A reasoning
model's reply also thinks first (see thinking.py): its reasoning tokens count in the reply's
completion tokens and in its max tokens, ahead of the answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .options import FakeServerOptions
from .thinking import Reasoning, hidden_reasoning_tokens, thoughts

__all__ = ["JUDGE_PAIRWISE", "JUDGE_SINGLE", "Prompt", "Reply", "judge_mode", "make_reply"]

JUDGE_SINGLE = "single"
JUDGE_PAIRWISE = "pairwise"

# MT-Bench's judge prompts ask for these exact verdict formats; ordinary questions never do.
_SINGLE_MARK = "[[rating]]"
_PAIRWISE_MARK = "[[A]]"

_WORDS = """
the answer considers several aspects of the question carefully and explains each step with clear
reasoning while giving examples that show how ideas connect in practice so a reader can follow the
argument from premise to conclusion without missing important details about context history method
result limitation trade off alternative approach summary useful accurate concise
"""
_VOCABULARY = tuple(_WORDS.split())


# What each kind of request thinks about (see thinking.thoughts).
_SUBJECTS = {
    None: "what the question asks and what a good answer needs",
    JUDGE_SINGLE: "how well the assistant's answer does",
    JUDGE_PAIRWISE: "which of the two assistants answers better",
}


@dataclass(frozen=True)
class Prompt:
    """What a reply depends on: `key` hashes (model, messages, temperature, max_tokens, seed).

    `reasoning` is set for a model that thinks before it answers.
    """

    model: str
    key: bytes
    judge: str | None
    max_tokens: int | None
    reasoning: Reasoning | None = None


@dataclass(frozen=True)
class Reply:
    """The generated text, its length in tokens (= words), and why it ended.

    A reasoning model's reply also carries its visible `thinking` ("" when hidden or none) and
    `reasoning_tokens`, which `completion_tokens` includes; `thinking_unfinished` when max tokens
    ran out before the thinking did (then `text` is empty).
    """

    text: str
    completion_tokens: int
    finish_reason: str
    thinking: str = ""
    reasoning_tokens: int = 0
    thinking_unfinished: bool = False


def judge_mode(texts: list[str]) -> str | None:
    """JUDGE_SINGLE or JUDGE_PAIRWISE if any text carries a judge prompt's verdict format."""
    if any(_SINGLE_MARK in text for text in texts):
        return JUDGE_SINGLE
    if any(_PAIRWISE_MARK in text for text in texts):
        return JUDGE_PAIRWISE
    return None


def make_reply(prompt: Prompt, options: FakeServerOptions, noise: bytes = b"") -> Reply:
    """The reply to `prompt`; `noise` (random bytes) makes identical prompts differ."""
    digest = hashlib.blake2b(prompt.key + noise, digest_size=32).digest()
    if prompt.judge == JUDGE_SINGLE:
        words = _single_verdict(digest, options)
    elif prompt.judge == JUDGE_PAIRWISE:
        words = _pairwise_verdict(digest, options)
    else:
        words = _answer(prompt.model, digest, options)
    if prompt.reasoning is not None:
        return _reasoned_reply(prompt, prompt.reasoning, digest, words)
    finish_reason = "stop"
    if prompt.max_tokens is not None and len(words) > prompt.max_tokens:
        words = words[: max(prompt.max_tokens, 0)]
        finish_reason = "length"
    return Reply(" ".join(words), len(words), finish_reason)


def _reasoned_reply(prompt: Prompt, reasoning: Reasoning, digest: bytes, words: list[str]) -> Reply:
    """Thinking, then `words`, within max tokens: thinking comes first, so it is served first."""
    thought: list[str] = []
    if reasoning.visible:
        thought = thoughts(digest, _SUBJECTS[prompt.judge], _decoy(prompt.judge, digest))
        thought = thought[: reasoning.budget]
        spent = len(thought)
    else:
        spent = hidden_reasoning_tokens(digest, reasoning.effort)
    limit = prompt.max_tokens
    if limit is not None and spent > limit:
        spent = max(limit, 0)
        thinking = " ".join(thought[:spent])
        return Reply("", spent, "length", thinking, spent, thinking_unfinished=True)
    finish_reason = "stop"
    if limit is not None and spent + len(words) > limit:
        words = words[: limit - spent]
        finish_reason = "length"
    return Reply(" ".join(words), spent + len(words), finish_reason, " ".join(thought), spent)


def _decoy(judge: str | None, digest: bytes) -> str | None:
    """A verdict in the judge's format that differs from the one its reply gives."""
    if judge == JUDGE_SINGLE:
        return f"[[{_rating(digest) % 10 + 1}]]"
    if judge == JUDGE_PAIRWISE:
        return f"[[{_WINNERS[(_WINNERS.index(_winner(digest)) + 1) % 3]}]]"
    return None


def _share(digest: bytes, slot: int) -> float:
    """An independent uniform draw in [0, 1) from four bytes of the digest."""
    return int.from_bytes(digest[4 * slot : 4 * slot + 4], "big") / 2**32


def _filler(digest: bytes, count: int, salt: bytes) -> list[str]:
    vocabulary = _VOCABULARY
    size = len(vocabulary)
    return [vocabulary[b % size] for b in hashlib.shake_128(digest + salt).digest(count)]


def _answer(model: str, digest: bytes, options: FakeServerOptions) -> list[str]:
    spread = options.answer_max_words - options.answer_min_words + 1
    total = options.answer_min_words + int.from_bytes(digest[:4], "big") % spread
    head = ["This", "is", "a", "simulated", "answer", "from", f"{model}."]
    tail = ["(answer", "id", f"{digest[4:8].hex()})"]
    body = _filler(digest, max(total - len(head) - len(tail), 0), b"answer")
    return head + body + tail


def _single_verdict(digest: bytes, options: FakeServerOptions) -> list[str]:
    explanation = [
        "The",
        "assistant's",
        "answer",
        "is",
        *_filler(digest, 12, b"single"),
        "overall.",
    ]
    if _share(digest, 1) < options.judge_no_verdict:
        return [*explanation, "I", "would", "rather", "not", "give", "a", "number."]
    rating = _rating(digest)
    score = f"{min(rating, 9)}.5" if _share(digest, 2) < options.judge_decimal else str(rating)
    verdict = f"[{score}]" if _share(digest, 3) < options.judge_one_bracket else f"[[{score}]]"
    return [*explanation, "Rating:", verdict]


def _pairwise_verdict(digest: bytes, options: FakeServerOptions) -> list[str]:
    explanation = [
        "Comparing",
        "both",
        "assistants,",
        *_filler(digest, 12, b"pairwise"),
        "overall.",
    ]
    if _share(digest, 1) < options.judge_no_verdict:
        return [*explanation, "I", "would", "rather", "not", "pick", "a", "winner."]
    return [*explanation, "Final", "verdict:", f"[[{_winner(digest)}]]"]


_WINNERS = "ABC"


def _rating(digest: bytes) -> int:
    return 1 + int.from_bytes(digest[:4], "big") % 10


def _winner(digest: bytes) -> str:
    return _WINNERS[int.from_bytes(digest[:4], "big") % 3]
