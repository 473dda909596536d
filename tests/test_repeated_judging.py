"""`samples = k`: k requests per judgment, medians as scores, and the judge's noise made visible."""

from __future__ import annotations

import sqlite3
import statistics
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config


def test_three_samples_cost_three_requests_once_and_show_medians_and_spread(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(judge_noise=True, judge_no_verdict=0.05, seed=9)
    models = [model(name, fake.base_url) for name in ("alpha", "beta")]
    judge = {"name": "noisy-judge", "base_url": fake.base_url, "samples": 3}
    config = write_config(tmp_path, models=models, judge=judge)
    assert mtbench(capsys, "run", "-c", str(config))[0] == 0
    assert fake.stats(arrivals=False)["by_kind"] == {"generation": 320, "judge": 3 * 320}

    assert mtbench(capsys, "run", "-c", str(config))[0] == 0
    assert fake.stats(arrivals=False)["requests"] == 320 + 3 * 320  # a rerun sends nothing

    store = tmp_path / "store.sqlite"
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT model, question_id, turn, sample, score FROM judgments"
        ).fetchall()
    assert {sample for *_, sample, _ in rows} == {0, 1, 2}
    items: dict[tuple, list[float]] = defaultdict(list)
    per_sample: dict[tuple[str, int], list[float]] = defaultdict(list)
    for model_name, qid, turn, sample, score in rows:
        items[(model_name, qid, turn)].append(score)
        if score != -1:
            per_sample[(model_name, sample)].append(score)
    medians: dict[str, list[float]] = defaultdict(list)
    for (model_name, _, _), scores in items.items():
        valid = [s for s in scores if s != -1]
        if valid:
            medians[model_name].append(statistics.median(valid))
    assert any(len(set(scores)) > 1 for scores in items.values())  # the judge really was noisy

    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    assert code == 0
    (board,) = orjson.loads(out)["leaderboards"]
    assert board["judge"]["samples"] == 3
    for entry in board["models"]:
        name = entry["model"]
        assert entry["score"] == pytest.approx(statistics.mean(medians[name]))
        sample_scores = [statistics.mean(per_sample[(name, s)]) for s in range(3)]
        assert entry["sample_scores"] == pytest.approx(sample_scores)
        assert entry["sample_std"] == pytest.approx(statistics.stdev(sample_scores))
        assert entry["sample_std"] > 0

    code, out, _ = mtbench(capsys, "show", "--store", str(store))
    assert "median of 3 samples" in out and "sample std" in out


def test_an_export_keeps_every_sample_and_says_who_judged(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(judge_noise=True)
    judge = {"name": "noisy-judge", "model": "judge-v2", "base_url": fake.base_url, "samples": 2}
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], judge=judge)
    assert mtbench(capsys, "run", "-c", str(config))[0] == 0
    out = tmp_path / "fastchat"
    store = str(tmp_path / "store.sqlite")
    assert mtbench(capsys, "export", "--store", store, "--fastchat", str(out))[0] == 0
    path = out / "model_judgment" / "noisy-judge_single.jsonl"
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert len(lines) == 2 * 160
    assert sorted({line["sample"] for line in lines}) == [0, 1]
    assert all(
        line["judge_identity"]
        == {"name": "noisy-judge", "model": "judge-v2", "api": "openai", "samples": 2}
        and line["judge"][0] == "noisy-judge"
        for line in lines
    )
