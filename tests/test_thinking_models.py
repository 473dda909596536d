"""A thinking model under test: its thoughts are stored, but the judge and turn 2 never see them.

The fake server plays a thinking checkpoint in each way servers show thoughts (`thinking_style`:
vLLM/SGLang's `reasoning_content`, OpenRouter's `reasoning`, llama.cpp's inline `<think>`), in JSON
and SSE. A recording proxy in front of it keeps every request body as it arrived, so the tests
read what the judge and the turn-2 request were actually sent. `keep_thinking = true` gives
FastChat's behaviour back: the content as sent is the answer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.recording_proxy import RecordingProxy
from tests.support.runconfig import model, mtbench, write_config

QUESTIONS = [81, 111]
OPENING = "Let me think step by step about"  # how the fake's thoughts begin
STYLES = ["reasoning_content", "reasoning", "inline"]
CHAT = "/v1/chat/completions"


@pytest.fixture
def proxy(fake: FakeServer) -> Iterator[RecordingProxy]:
    fake.configure(thinking_models=["deep-*"])
    with RecordingProxy(fake.url) as recording:
        yield recording


def thinking_run(
    tmp_path: Path,
    proxy: RecordingProxy,
    capsys: pytest.CaptureFixture[str],
    **options: Any,
) -> dict[str, Any]:
    """`mtbench run` of the thinking model `deep` (served as deep-r1), judged by a plain judge."""
    deep = model("deep", proxy.base_url, model="deep-r1", **options)
    judge = {"name": "judge", "model": "gpt-4", "base_url": proxy.base_url}
    config = write_config(tmp_path, models=[deep], judge=judge, questions=QUESTIONS)
    code, out, err = mtbench(capsys, "run", "-c", str(config), "--json")
    assert code == 0, out + err
    summary: dict[str, Any] = orjson.loads(out)
    return summary


def stored_answers(store: Path) -> dict[tuple[int, int], tuple[str, str | None]]:
    """(question, turn) -> (responses.text, responses.reasoning) of model deep's answers."""
    with sqlite3.connect(store) as db:
        found = db.execute(
            "SELECT a.question_id, a.turn, r.text, r.reasoning FROM answers a "
            "JOIN responses r ON r.key = a.response_key WHERE a.model = 'deep'"
        ).fetchall()
    return {(q, t): (text, reasoning) for q, t, text, reasoning in found}


def answer_of(text: str) -> str:
    """The fake's inline form is `<think>\\n{thoughts}\\n</think>\\n\\n{answer}`."""
    return text.split("</think>\n\n", 1)[-1]


def sent_to(proxy: RecordingProxy, served: str) -> list[dict[str, Any]]:
    return [body for body in proxy.bodies(CHAT) if body["model"] == served]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("style", STYLES)
def test_thinking_is_stored_but_neither_judged_nor_sent_back_in_turn_2(
    tmp_path: Path,
    fake: FakeServer,
    proxy: RecordingProxy,
    capsys: pytest.CaptureFixture[str],
    style: str,
    stream: bool,
) -> None:
    fake.configure(thinking_style=style)
    thinking_run(tmp_path, proxy, capsys, stream=stream)

    answers = stored_answers(tmp_path / "store.sqlite")
    assert set(answers) == {(q, t) for q in QUESTIONS for t in (1, 2)}
    for text, reasoning in answers.values():
        if style == "inline":  # kept exactly as the server sent it
            assert text.startswith(f"<think>\n{OPENING}") and "</think>\n\n" in text
            assert reasoning is None
        else:
            assert reasoning is not None and reasoning.startswith(OPENING)
            assert OPENING not in text and text.startswith("This is a simulated answer")

    turn_2 = [body for body in sent_to(proxy, "deep-r1") if len(body["messages"]) == 3]
    assert len(turn_2) == len(QUESTIONS)
    for body in turn_2:
        first_answer = body["messages"][1]["content"]
        assert OPENING not in first_answer and "<think>" not in first_answer
        assert first_answer in {answer_of(text) for text, _ in answers.values()}
    judged = sent_to(proxy, "gpt-4")
    assert len(judged) == 2 * len(QUESTIONS)
    for body in judged:
        prompt = "\n".join(message["content"] for message in body["messages"])
        assert OPENING not in prompt and "<think>" not in prompt
        assert "This is a simulated answer from deep-r1." in prompt


def test_keep_thinking_shows_the_judge_and_turn_2_the_content_as_sent(
    tmp_path: Path, fake: FakeServer, proxy: RecordingProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(thinking_style="inline")
    thinking_run(tmp_path, proxy, capsys)
    first = len(proxy.requests)

    summary = thinking_run(tmp_path, proxy, capsys, keep_thinking=True)
    # Turn 1 is the same request; turn 2 and every judgment now show the thoughts: new keys.
    assert summary["models"]["deep"]["cached"] == len(QUESTIONS)
    assert summary["models"]["deep"]["done"] == len(QUESTIONS)
    assert summary["judges"]["judge"]["done"] == 2 * len(QUESTIONS)
    resent = [body for path, body in proxy.requests[first:] if path == CHAT]
    turn_2 = [body for body in resent if body["model"] == "deep-r1"]
    assert all(body["messages"][1]["content"].startswith("<think>\n") for body in turn_2)
    judged = [body for body in resent if body["model"] == "gpt-4"]
    assert all(OPENING in body["messages"][1]["content"] for body in judged)

    again = thinking_run(tmp_path, proxy, capsys, keep_thinking=True)
    assert again["total"]["sent"] == 0


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("style", STYLES)
def test_a_model_out_of_tokens_while_thinking_has_an_empty_answer_not_a_failure(
    tmp_path: Path,
    fake: FakeServer,
    proxy: RecordingProxy,
    capsys: pytest.CaptureFixture[str],
    style: str,
    stream: bool,
) -> None:
    fake.configure(thinking_style=style)
    summary = thinking_run(tmp_path, proxy, capsys, stream=stream, max_tokens=8)
    assert summary["total"]["failed"] == 0
    for text, reasoning in stored_answers(tmp_path / "store.sqlite").values():
        if style == "inline":
            assert text.startswith("<think>\nLet") and "</think>" not in text and reasoning is None
        else:
            assert text == "" and reasoning is not None and reasoning.startswith("Let")
    prompts = [body["messages"][1]["content"] for body in sent_to(proxy, "gpt-4")]
    turn_1 = [prompt for prompt in prompts if "[The Start of Assistant's Answer]" in prompt]
    assert len(turn_1) == len(QUESTIONS)
    for prompt in turn_1:  # the judge grades the answer there is: none
        assert "[The Start of Assistant's Answer]\n\n[The End of Assistant's Answer]" in prompt
