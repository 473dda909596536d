"""Reasoning token counts as large as a server may report them still add up in `show`.

A count is stored when it is an integer from 0 to 2**62 (engine.providers.wire); two such counts
already overflow SQLite's 64-bit SUM, which made `show` an internal error on a store a misbehaving
server had answered into.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config
from tests.support.scripted import json_reply, openai_completion, run_engine

HUGE = 2**62


def test_show_sums_reasoning_tokens_beyond_64_bits(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    usage = {
        "prompt_tokens": 12,
        "completion_tokens": 20,
        "completion_tokens_details": {"reasoning_tokens": HUGE},
    }
    fake.script([json_reply(openai_completion("Rating: [[7]]", usage=usage))])
    judge = {"name": "grader", "model": "o3", "base_url": fake.base_url}
    config = write_config(tmp_path, models=[model("m", fake.base_url)], judge=judge, questions=[81])
    assert run_engine(config, "run") == 0

    store = str(tmp_path / "store.sqlite")
    code, out, err = mtbench(capsys, "show", "--store", store, "--json")
    assert code == 0, err
    (board,) = orjson.loads(out)["leaderboards"]
    assert board["judge"]["reasoning_tokens"] == 2 * HUGE
    assert [m["reasoning_tokens"] for m in board["models"]] == [2 * HUGE]
    code, out, err = mtbench(capsys, "show", "--store", store)
    assert code == 0, err
    assert str(2 * HUGE) in out
