"""OpenAI's reasoning models and OpenAI-compatible thinking models on the fake chat completions.

OpenAI's reasoning models (option `reasoning_models`: the o-series, GPT-5) refuse `max_tokens` and
any temperature or top_p but 1, take `max_completion_tokens` and `reasoning_effort`, and bill their
hidden reasoning in `usage.completion_tokens_details.reasoning_tokens`. Open-weight thinking
checkpoints served by vLLM, SGLang or llama.cpp (option `thinking_models`) show their thoughts
instead, the way their server does (option `thinking_style`). The engine is tested against both
over real sockets, so this module spells their refusals and their messages as those servers do,
and openai.py stays the plain format.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from .answers import Reply
from .backend import Call, Refusal
from .thinking import EFFORTS, Effort, Reasoning

__all__ = ["matches", "message", "reasoning_for", "reasoning_refusal", "streamed_deltas"]

_DEFAULT_EFFORT: Effort = "medium"
_OPEN_TAG = ("<th", "ink>\n")  # a streaming server may cut a tag anywhere; these always are
_CLOSE_TAG = ("\n</th", "ink>\n\n")


def matches(model: str, patterns: tuple[str, ...]) -> bool:
    """Whether `model` matches one of the fnmatch `patterns` (case-sensitive, as model ids are)."""
    return any(fnmatchcase(model, pattern) for pattern in patterns)


def reasoning_refusal(body: dict[str, object]) -> Refusal | None:
    """The 400 OpenAI answers a reasoning model's request with, or None if it takes it."""
    if body.get("max_tokens") is not None:
        message = (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead."
        )
        return Refusal(400, "unsupported_parameter", message, param="max_tokens")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and value != 1:
            # OpenAI prints the number as the JSON parser gave it: 0, 0.0 and 0.7 stay apart.
            message = (
                f"Unsupported value: '{name}' does not support {value} with this model. "
                "Only the default (1) value is supported."
            )
            return Refusal(400, "unsupported_value", message, param=name)
    effort = body.get("reasoning_effort")
    if effort is not None and _effort(effort) is None:
        *others, last = (f"'{name}'" for name in EFFORTS)
        message = (
            f"Invalid value: {effort!r}. Supported values are: {', '.join(others)}, and {last}."
        )
        return Refusal(400, "invalid_value", message, param="reasoning_effort")
    return None


def reasoning_for(body: dict[str, object], *, thinking: bool, hidden: bool) -> Reasoning | None:
    """How the model thinks: visibly (a thinking model), hidden at the requested effort, or not."""
    if thinking:
        return Reasoning(visible=True)
    if hidden:
        return Reasoning(
            visible=False, effort=_effort(body.get("reasoning_effort")) or _DEFAULT_EFFORT
        )
    return None


def _effort(value: object) -> Effort | None:
    return next((effort for effort in EFFORTS if effort == value), None)


def message(call: Call, reply: Reply) -> dict[str, object]:
    """The `choices[0].message` object, with the thoughts where the thinking style puts them."""
    style = call.thinking_style
    if style is None:
        return {"role": "assistant", "content": reply.text}
    if style == "inline":
        inline = _inline([reply.thinking], [reply.text], reply.thinking_unfinished)
        return {"role": "assistant", "content": "".join(inline)}
    # A reasoning parser that never saw the end of the thinking leaves no content at all.
    content = None if reply.thinking_unfinished else reply.text
    return {"role": "assistant", style: reply.thinking, "content": content}


def streamed_deltas(
    call: Call, reply: Reply, pieces: list[str], thoughts: list[str]
) -> list[tuple[str, str]]:
    """(delta field, text) for each text-carrying chunk of a stream: thoughts first."""
    style = call.thinking_style
    if style is None:
        return [("content", piece) for piece in pieces]
    if style == "inline":
        return [("content", p) for p in _inline(thoughts, pieces, reply.thinking_unfinished)]
    return [(style, thought) for thought in thoughts] + [("content", piece) for piece in pieces]


def _inline(thoughts: list[str], answer: list[str], unfinished: bool) -> list[str]:
    """`<think>\\n{thoughts}\\n</think>\\n\\n{answer}` in pieces, each tag cut in two."""
    if unfinished:
        return [piece for piece in (*_OPEN_TAG, *thoughts) if piece]
    return [piece for piece in (*_OPEN_TAG, *thoughts, *_CLOSE_TAG, *answer) if piece]
