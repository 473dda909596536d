"""What a judge and turn 2 see of an answer that thinks inline: `engine.bench.thinking.answer_text`.

The store keeps the content as the server sent it; this one pure function decides what counts as
thinking, so it is pinned here case by case (the forms real servers and templates produce) and by
properties over arbitrary text. The end-to-end proofs (judge prompt, turn-2 messages, JSON and
SSE) are in tests/test_thinking_models.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.bench.thinking import answer_text, split_thinking


@pytest.mark.parametrize(
    ("text", "answer", "thinking"),
    [
        # R1/Qwen-style, as llama.cpp without a reasoning parser sends it
        ("<think>\nParis is the capital.\n</think>\n\nParis.", "Paris.", "Paris is the capital."),
        ("<thinking>Hmm.</thinking>Paris.", "Paris.", "Hmm."),
        ("  \n<think>a</think>\n<think>b</think>\nParis.", "Paris.", "a\n\nb"),
        # a template that opens the thinking itself leaves only its end in the content
        ("Paris is the capital.\n</think>\n\nParis.", "Paris.", "Paris is the capital."),
        # max_tokens ran out while the model was still thinking: no answer at all
        ("<think>\nLet me think about", "", "Let me think about"),
        ("<think></think>\n\nParis.", "Paris.", ""),
    ],
)
def test_inline_thinking_is_cut_from_the_answer(text: str, answer: str, thinking: str) -> None:
    split = split_thinking(text)
    assert (split.answer, split.thinking) == (answer, thinking)
    assert answer_text(text, keep_thinking=False) == answer


@pytest.mark.parametrize(
    "text",
    [
        "Paris.",
        "",
        "Use a <think> element? There is none in HTML.",  # tags later in an answer are its own
        "I think, therefore I am.",
        "Wrap it as <thinking>x</thinking> in your XML.",
    ],
)
def test_an_answer_without_leading_thinking_is_unchanged(text: str) -> None:
    assert split_thinking(text).thinking is None
    assert answer_text(text, keep_thinking=False) == text


def test_keep_thinking_gives_the_content_as_the_server_sent_it() -> None:
    raw = "<think>\nmaybe [[3]]\n</think>\n\nRating: [[8]]"
    assert answer_text(raw, keep_thinking=True) == raw
    assert answer_text(raw, keep_thinking=False) == "Rating: [[8]]"


@given(st.text())
def test_keeping_thinking_never_changes_a_text(text: str) -> None:
    assert answer_text(text, keep_thinking=True) == text


@given(st.text().filter(lambda t: "think" not in t))
def test_text_without_a_tag_is_its_own_answer(text: str) -> None:
    assert split_thinking(text).answer == text


@given(thought=st.text().filter(lambda t: "think" not in t), answer=st.text())
def test_a_leading_block_is_cut_and_whatever_follows_is_the_answer(
    thought: str, answer: str
) -> None:
    split = split_thinking(f"<think>{thought}</think>{answer}")
    assert split.answer == split_thinking(answer).answer.lstrip()
    # An unopened closing tag in `answer` ("</thinking>") makes all before it thinking, the
    # leading block's tags included: the thought is in the thinking, not always at its start.
    assert split.thinking is not None and thought.strip() in split.thinking
