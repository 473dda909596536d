"""A non-streamed answer is silent until it is whole: slow ones must not be taken for hangs.

A server that does not stream sends no byte before its answer is complete, so a long but healthy
generation looks exactly like a hang until it arrives. Cutting it as stalled is then the only safe
guess, but each later attempt of that request waits twice as long, up to `timeout`, so an answer
the server really gives is eventually taken; twins sent for it are not attempts that use up
`max_attempts`; and an endpoint whose first answers are all slow is not failed as stuck while its
requests still get more patience. Real sockets, a server that answers every request after a delay.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config
from tests.support.scripted import json_reply, openai_completion

ANSWER_SECONDS = 0.8  # every answer: silence, then the whole body at once
QUESTIONS = [81, 82]


def stored_answers(store: Path) -> int:
    with sqlite3.connect(store) as db:
        return int(db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])


def generate(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], **options: object
) -> tuple[int, str, float]:
    fake.script([json_reply(openai_completion("A slow answer."), delay=ANSWER_SECONDS)])
    config = write_config(
        tmp_path, models=[model("slow", fake.base_url, **options)], questions=QUESTIONS
    )
    started = time.monotonic()
    code, out, _ = mtbench(capsys, "generate", "-c", str(config), "--quiet")
    return code, out, time.monotonic() - started


def test_an_endpoint_whose_first_answers_outlast_the_stall_timeout_is_not_failed_as_stuck(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, wall = generate(tmp_path, fake, capsys, stall_timeout=0.5, hedge_after=0)
    assert code == 0, out
    assert "is the server stuck" not in out
    assert stored_answers(tmp_path / "store.sqlite") == 2 * len(QUESTIONS)
    assert wall < 20


def test_twins_of_a_slow_silent_answer_do_not_use_up_its_attempts(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, wall = generate(
        tmp_path, fake, capsys, stall_timeout=0.5, hedge_after=0.2, max_attempts=3
    )
    assert code == 0, out
    assert stored_answers(tmp_path / "store.sqlite") == 2 * len(QUESTIONS)
    assert wall < 20
