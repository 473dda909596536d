"""A reasoning model the engine does not recognise, and answers only reasoning models give.

A 400 naming a parameter OpenAI's reasoning models refuse (`max_tokens`, a temperature) fails
with one line that says which key to set, instead of only the server's words; it is not retried,
and since every request to that endpoint carries the same parameters, the endpoint stops there.
Then: what a provider keeps of thinking fields that are not what the API documents.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config
from tests.support.scripted import json_reply, openai_completion, run_engine, sse_reply

QUESTIONS = [81, 111]


def rows(store: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store) as db:
        return db.execute(sql).fetchall()


def test_a_400_only_reasoning_models_give_names_the_key_to_set_and_is_not_retried(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(reasoning_models=["future-*"])  # reasoning models the engine has not heard of
    models = [model("alpha", fake.base_url), model("beta", fake.base_url, model="future-mini")]
    judge = {"name": "grader", "model": "future-judge", "base_url": fake.base_url}
    for table in (*models, judge):
        table["concurrency"] = 1
    config = write_config(tmp_path, models=models, judge=judge, questions=QUESTIONS)
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 1

    failures = rows(
        tmp_path / "store.sqlite",
        "SELECT model, kind, error_class, attempts, message FROM failures",
    )
    refused = [f for f in failures if f[2] == "bad_request"]
    assert {(m, kind) for m, kind, *_ in refused} == {("beta", "generate"), ("alpha", "judge")}
    for _, kind, _, attempts, message in refused:
        assert attempts <= 1 and "\n" not in message
        assert "Unsupported parameter: 'max_tokens'" in message
        table = "[judge]" if kind == "judge" else "[[model]] 'beta'"
        assert message.endswith(f"set reasoning = true on {table}"), message
    assert "set reasoning = true on [judge]" in out
    # Not retried, and the rest of each endpoint's requests were never sent: one 400 apiece.
    arrivals = fake.stats()["arrivals"]
    refusals = Counter(row[1] for row in arrivals if row[3] == 400)
    assert refusals == {"future-mini": 1, "future-judge": 1}


@pytest.mark.parametrize(
    ("message", "finish"),
    [({"reasoning_content": "Let me think."}, "stop"), ({"reasoning_content": 7}, "length")],
    ids=["finished-thinking-but-no-content", "thoughts-that-are-not-text"],
)
def test_null_content_is_an_answer_only_after_thoughts_cut_short(
    tmp_path: Path, fake: FakeServer, message: dict[str, Any], finish: str
) -> None:
    body = openai_completion(None, finish_reason=finish, **message)
    fake.script([json_reply(body)])
    settings = {"max_attempts": 2, "timeout": 5.0}
    config = write_config(tmp_path, models=[model("m", fake.base_url, **settings)], questions=[81])
    assert run_engine(config) == 1
    (error_class,) = {
        row[0]
        for row in rows(
            tmp_path / "store.sqlite", "SELECT error_class FROM failures WHERE turn = 1"
        )
    }
    assert error_class == "malformed"


def test_thinking_fields_that_are_not_text_are_dropped_and_the_answer_kept(
    tmp_path: Path, fake: FakeServer
) -> None:
    usage = {
        "prompt_tokens": 12,
        "completion_tokens": 30,
        "completion_tokens_details": {"reasoning_tokens": "twenty"},
    }
    events = [
        {"choices": [{"delta": {"role": "assistant", "reasoning_content": ["not", "text"]}}]},
        {"choices": [{"delta": {"reasoning": "Hmm."}}]},
        {"choices": [{"delta": {"content": "Paris."}, "finish_reason": "stop"}]},
        {"choices": [], "usage": usage},
        b"data: [DONE]\n\n",
    ]
    fake.script([sse_reply(events)])
    options = {"stream": True, "max_attempts": 2, "timeout": 5.0}
    config = write_config(tmp_path, models=[model("m", fake.base_url, **options)], questions=[81])
    assert run_engine(config) == 0
    stored = rows(
        tmp_path / "store.sqlite",
        "SELECT text, reasoning, completion_tokens, reasoning_tokens FROM responses",
    )
    assert stored == [("Paris.", "Hmm.", 30, None)] * 2


def test_a_key_echoed_in_the_thinking_is_masked_before_it_is_stored(
    tmp_path: Path, fake: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-thinking-echo-Zq8vTn4LwR2pXy7K"
    monkeypatch.setenv("THINKING_KEY", key)
    body = openai_completion("Paris.", reasoning_content=f"The user's key is {key}, careful.")
    fake.script([json_reply(body)])
    options = {"api_key_env": "THINKING_KEY", "timeout": 5.0}
    config = write_config(tmp_path, models=[model("m", fake.base_url, **options)], questions=[81])
    assert run_engine(config) == 0
    stored = rows(tmp_path / "store.sqlite", "SELECT text, reasoning FROM responses")
    assert stored == [("Paris.", "The user's key is [redacted $THINKING_KEY], careful.")] * 2
    assert key.encode() not in (tmp_path / "store.sqlite").read_bytes()
