"""Thinking as a hostile server can send it: what a run still has to survive.

A server's content is untrusted input, inline `<think>` blocks included: megabytes of empty
blocks must be cut from the answer in time proportional to their size (the cut runs on the event
loop, once per answer and once per judge reply: quadratic work there froze every endpoint of the
run for minutes). And a thinking model's answer means the same over JSON and SSE: thoughts with
no content at all are an answer only if the model ran out of tokens while thinking (`length`),
else no answer (retried), whichever the transport; the cache key does not know the transport.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from engine.bench.thinking import split_thinking
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, write_config
from tests.support.scripted import json_reply, openai_completion, run_engine, sse_reply

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


def thoughts_only(stream: bool, finish: str) -> dict[str, Any]:
    """A reply carrying thoughts and no content (null, or no content delta at all)."""
    if not stream:
        return json_reply(openai_completion(None, finish_reason=finish, reasoning_content="Hmm."))
    opening = {"role": "assistant", "content": None, "reasoning_content": "Hmm."}
    return sse_reply(
        [
            {"choices": [{"index": 0, "delta": opening}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
            b"data: [DONE]\n\n",
        ]
    )


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("finish", "code"), [("stop", 1), ("length", 0)])
def test_thoughts_without_content_mean_the_same_over_json_and_sse(
    tmp_path: Path, fake: FakeServer, stream: bool, finish: str, code: int
) -> None:
    fake.script([thoughts_only(stream, finish)])
    options = {"stream": stream, "max_attempts": 2, "timeout": 5.0}
    config = write_config(tmp_path, models=[model("m", fake.base_url, **options)], questions=[81])
    assert run_engine(config) == code
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        stored = db.execute("SELECT text, reasoning FROM responses").fetchall()
        failed = db.execute("SELECT turn, error_class FROM failures").fetchall()
    if finish == "length":  # out of tokens while thinking: a real, empty answer
        assert (stored, failed) == ([("", "Hmm.")] * 2, [])
    else:
        assert (stored, failed) == ([], [(1, "malformed"), (2, "dependency")])
