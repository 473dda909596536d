"""Jobs that send the very same request (two models with identical answers, judged alike) share
one response, and each keeps its own answer or judgment row, whether sent or found in the cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config
from tests.support.scripted import json_reply, openai_completion


def judged(store: Path) -> dict[str, int]:
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT model, COUNT(*) FROM judgments GROUP BY model").fetchall()
    return dict(rows)


def test_a_model_whose_judge_requests_are_cached_under_a_twin_gets_its_judgments_stored(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every model answers with the same text, so a judge's requests for alpha and beta are alike.
    fake.script([json_reply(openai_completion("A model's answer."))])
    judge = {"name": "judge-a", "base_url": fake.base_url}
    both = [model("alpha", fake.base_url), model("beta", fake.base_url)]
    generate = write_config(tmp_path, models=both, name="generate.toml")
    assert mtbench(capsys, "generate", "-c", str(generate))[0] == 0
    alpha_only = write_config(
        tmp_path, models=both[:1], judge=judge, name="alpha.toml", questions=[81, 82]
    )
    assert mtbench(capsys, "judge", "-c", str(alpha_only))[0] == 0
    assert judged(tmp_path / "store.sqlite") == {"alpha": 4}

    sent = fake.scripted_requests()
    config = write_config(tmp_path, models=both, judge=judge, name="both.toml", questions=[81, 82])
    code, out, _ = mtbench(capsys, "judge", "-c", str(config))
    assert code == 0, out
    assert fake.scripted_requests() == sent  # beta's judge requests were alpha's: cached
    assert judged(tmp_path / "store.sqlite") == {"alpha": 4, "beta": 4}
