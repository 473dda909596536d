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
    rest = _after_unopened_close(text, thoughts)
    while (block := _leading_block(rest)) is not None:
        thought, rest = block
        thoughts.append(thought)
    if not thoughts:
        return SplitAnswer(text, None)
    return SplitAnswer(rest.lstrip(), "\n\n".join(t.strip() for t in thoughts))


def answer_text(text: str, keep_thinking: bool) -> str:
    """What a judge, turn 2 and every display see of a stored answer: without inline thinking,
    unless `keep_thinking` (FastChat's behaviour: the content as the server sent it)."""
    return text if keep_thinking else split_thinking(text).answer


def _after_unopened_close(text: str, thoughts: list[str]) -> str:
    for opening, closing in _TAGS:
        end = text.find(closing)
        if end != -1 and not 0 <= text.find(opening) < end:
            thoughts.append(text[:end])
            return text[end + len(closing) :]
    return text


def _leading_block(text: str) -> tuple[str, str] | None:
    """(the thought, what follows it) if `text` opens with a thinking block, else None."""
    start = len(text) - len(text.lstrip())
    for opening, closing in _TAGS:
        if text.startswith(opening, start):
            inside = start + len(opening)
            end = text.find(closing, inside)
            if end == -1:  # never closed: the model was still thinking when it stopped
                return text[inside:], ""
            return text[inside:end], text[end + len(closing) :]
    return None
