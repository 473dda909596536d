"""A model's answer without the thinking it wrote inline: what a judge and turn 2 get to see.

Thinking checkpoints served without a reasoning parser (llama.cpp's default for many templates,
raw R1/Qwen3 templates) put their chain of thought at the start of the content, between `<think>`
and `</think>` (some write `<thinking>`). FastChat judges that text as the answer and sends it back
as turn-2 context, which inflates lengths, shows the judge the chain of thought and skews scores.
The store keeps the content exactly as the server sent it; everything that presents or reuses an
answer derives its text through `answer_text`, one pure function, so the judge prompt, the turn-2
messages, `show`, the report and `export` always agree.

What counts as inline thinking, as the reasoning parsers of vLLM and llama.cpp read it:
- a block at the start of the content (after whitespace), however many follow each other;
- everything before a closing tag that no opening tag precedes: templates that open the thinking
  themselves (DeepSeek-R1, Qwen3 with thinking forced on) leave only its end in the content;
- an opening block never closed (the model ran out of tokens while thinking): all of it, so the
  answer is empty, as it is when a reasoning parser gets no content.
Tags later in an answer (a model writing about XML, say) are part of the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SplitAnswer", "answer_text", "split_thinking"]

_TAGS = (("<think>", "</think>"), ("<thinking>", "</thinking>"))
_ANY_TAG = re.compile(r"</?think(?:ing)?>")
_SPACE = re.compile(r"\s*")  # what str.lstrip() strips


@dataclass(frozen=True, slots=True)
class SplitAnswer:
    """An answer's text and the inline thinking cut from it (None when it had none)."""

    answer: str
    thinking: str | None


def split_thinking(text: str) -> SplitAnswer:
    """`text` as an answer and the inline thinking before it (see the module docstring)."""
    if _ANY_TAG.search(text) is None:  # nearly every answer: one scan, no copies
        return SplitAnswer(text, None)
    thoughts: list[str] = []
    start = _after_unopened_close(text, thoughts)
    while (block := _leading_block(text, start)) is not None:
        thought, start = block
        thoughts.append(thought)
    if not thoughts:
        return SplitAnswer(text, None)
    return SplitAnswer(text[start:].lstrip(), "\n\n".join(t.strip() for t in thoughts))


def answer_text(text: str, keep_thinking: bool) -> str:
    """What a judge, turn 2 and every display see of a stored answer: without inline thinking,
    unless `keep_thinking` (FastChat's behaviour: the content as the server sent it)."""
    return text if keep_thinking else split_thinking(text).answer


def _after_unopened_close(text: str, thoughts: list[str]) -> int:
    """Where the answer may start: after a closing tag no opening tag precedes, else 0."""
    for opening, closing in _TAGS:
        end = text.find(closing)
        if end != -1 and not 0 <= text.find(opening) < end:
            thoughts.append(text[:end])
            return end + len(closing)
    return 0


def _leading_block(text: str, start: int) -> tuple[str, int] | None:
    """(the thought, where what follows it starts) if `text` opens with a thinking block at
    `start` (after whitespace), else None. Positions, not copies of the rest: a server can send
    megabytes of empty blocks, and copying the rest once per block would take the event loop
    minutes."""
    start = _after_space(text, start)
    for opening, closing in _TAGS:
        if text.startswith(opening, start):
            inside = start + len(opening)
            end = text.find(closing, inside)
            if end == -1:  # never closed: the model was still thinking when it stopped
                return text[inside:], len(text)
            return text[inside:end], end + len(closing)
    return None


def _after_space(text: str, start: int) -> int:
    match = _SPACE.match(text, start)  # `\s*` always matches; None only to the type checker
    return start if match is None else match.end()
