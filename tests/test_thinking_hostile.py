"""Thinking as a hostile server can send it: what a run still has to survive.

A server's content is untrusted input, inline `<think>` blocks included: megabytes of empty
blocks must be cut from the answer in time proportional to their size (the cut runs on the event
loop, once per answer and once per judge reply: quadratic work there froze every endpoint of the
run for minutes).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from engine.thinking import split_thinking
from tests.fakeserver import FakeServer
from tests.runconfig import model, write_config
from tests.scripted import json_reply, openai_completion, run_engine

EMPTY_BLOCKS = "<think></think>" * 400_000  # 6 MB: cut block by block with copies, minutes


def test_megabytes_of_empty_thinking_blocks_are_cut_in_linear_time() -> None:
    started = time.perf_counter()
    split = split_thinking(EMPTY_BLOCKS + "\n Paris.")
    assert time.perf_counter() - started < 2.0
    assert split.answer == "Paris."
    assert split.thinking == "\n\n" * (400_000 - 1)


def test_a_run_answered_with_megabytes_of_thinking_blocks_ends_promptly(
    tmp_path: Path, fake: FakeServer
) -> None:
    fake.script([json_reply(openai_completion(EMPTY_BLOCKS + "Paris."))])
    config = write_config(tmp_path, models=[model("m", fake.base_url)], questions=[81])
    assert run_engine(config, bound=15.0) == 0
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        (turns,) = db.execute("SELECT COUNT(*) FROM answers WHERE model = 'm'").fetchone()
    assert turns == 2
