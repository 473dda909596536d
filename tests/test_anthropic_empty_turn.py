"""A Claude turn that is all thinking leaves an empty answer, and the Messages API refuses an empty
assistant turn: turn 2 is failed before it is sent, once per run, with what to change."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, write_config
from tests.support.scripted import anthropic_message, json_reply, run_engine

THINKING_ONLY = anthropic_message(
    [{"type": "thinking", "thinking": "Let me think step by step...", "signature": "c2ln"}],
    stop_reason="max_tokens",
    usage={"input_tokens": 30, "output_tokens": 1100},
)


def test_turn_2_after_an_empty_turn_1_fails_unsent_with_what_to_change(
    tmp_path: Path, fake: FakeServer
) -> None:
    fake.script([json_reply(THINKING_ONLY)])
    claude = model("claude", fake.url, api="anthropic", thinking=1024, max_tokens=1100)
    config = write_config(tmp_path, models=[claude], questions=[81])

    for _ in range(2):  # the rerun sends nothing either, and records the same failure
        assert run_engine(config) == 1
        assert fake.scripted_requests() == 1  # turn 1 only: turn 2 was never sent

        with sqlite3.connect(tmp_path / "store.sqlite") as db:
            answers = db.execute(
                "SELECT a.turn, r.text, r.finish_reason, r.reasoning FROM answers a "
                "JOIN responses r ON r.key = a.response_key ORDER BY a.turn"
            ).fetchall()
            failures = db.execute(
                "SELECT turn, error_class, message FROM failures "
                "WHERE run_id = (SELECT MAX(id) FROM runs)"
            ).fetchall()
        assert answers == [(1, "", "max_tokens", "Let me think step by step...")]
        [(turn, error_class, message)] = failures
        assert (turn, error_class) == (2, "empty_turn")
        assert "answer to turn 1 is empty" in message and "more max_tokens" in message
