"""Issue 15 end to end: one run with three `[[judge]]` tables and a `[panel]` of them, then `show`
(the panel's board) and `show --agreement` (every pair) read what the run stored.

The slices were built apart (several judges, the panel, the agreement views); this proves they meet:
the panel a TOML config names is recorded by the run that judges it, its board is pooled from items
all three judged, and agreement compares the three labels over the same items.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

QUESTIONS = [81, 82, 101, 111]
MODELS = ("alpha", "beta")
JUDGES = ("judge-one", "judge-two", "judge-three")


def _config(tmp_path: Path, fake: FakeServer, aggregate: str) -> Path:
    judges = [
        {"name": name, "model": f"judge-model-{k}", "base_url": fake.base_url}
        for k, name in enumerate(JUDGES)
    ]
    models = [model(name, fake.base_url) for name in MODELS]
    path = write_config(tmp_path, models=models, judges=judges, questions=QUESTIONS)
    names = ", ".join(f'"{name}"' for name in JUDGES)
    with path.open("a") as config:
        config.write(f'\n[panel]\nname = "jury"\njudges = [{names}]\naggregate = "{aggregate}"\n')
    return path


def _pooled_scores(store: Path, aggregate: str) -> dict[str, float]:
    """Each model's panel score straight from the judgments table: per (question, turn) the
    aggregate of the three judges' ratings, then FastChat's mean over those items."""
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT judge, model, question_id, turn, score FROM judgments WHERE score >= 1"
        ).fetchall()
    items: dict[tuple[str, int, int], dict[str, float]] = defaultdict(dict)
    for judge, name, question, turn, score in rows:
        items[(name, question, turn)][judge] = score
    pool = statistics.mean if aggregate == "mean" else statistics.median
    per_model: dict[str, list[float]] = defaultdict(list)
    for (name, _, _), grades in items.items():
        if set(grades) == set(JUDGES):
            per_model[name].append(pool(grades.values()))
    return {name: statistics.mean(values) for name, values in per_model.items()}


@pytest.mark.parametrize("aggregate", ["mean", "median"])
def test_a_run_with_three_judges_records_its_panel_and_show_pools_and_compares_them(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], aggregate: str
) -> None:
    fake.configure(judge_noise=True)
    config = _config(tmp_path, fake, aggregate)
    code, out, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out + err
    store = tmp_path / "store.sqlite"

    code, out, err = mtbench(capsys, "show", "--store", str(store), "--json")
    assert code == 0, err
    shown = orjson.loads(out)
    (panel,) = shown["panels"]
    assert panel["name"] == "jury" and panel["aggregate"] == aggregate
    assert [judge["name"] for judge in panel["judges"]] == list(JUDGES)
    expected = _pooled_scores(store, aggregate)
    assert {row["model"]: row["score"] for row in panel["models"]} == pytest.approx(expected)
    assert all(row["items"] == len(QUESTIONS) * 2 for row in panel["models"])

    code, out, err = mtbench(capsys, "show", "--store", str(store))
    assert code == 0, err
    assert "jury" in out and all(name in out for name in JUDGES)

    code, out, err = mtbench(capsys, "show", "--store", str(store), "--agreement", "--json")
    assert code == 0, err
    agreement = orjson.loads(out)
    pairs = {frozenset(row["judges"]) for row in agreement["single"]}
    assert pairs == {frozenset((a, b)) for i, a in enumerate(JUDGES) for b in JUDGES[i + 1 :]}
    items = len(MODELS) * len(QUESTIONS) * 2
    assert all(row["krippendorff_alpha"]["items"] == items for row in agreement["single"])
    assert agreement["not_compared"] == []


def test_a_panel_whose_judge_was_upgraded_under_its_name_pools_the_judge_the_run_used(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # A team moves judge-two to a newer model string and keeps its name: the store then holds
    # two judges labelled judge-two, and the panel the new run recorded means the new one.
    fake.configure(judge_noise=True)
    config = _config(tmp_path, fake, "mean")
    assert mtbench(capsys, "run", "-c", str(config), "--quiet")[0] == 0
    config.write_text(config.read_text().replace('"judge-model-1"', '"judge-model-1-new"'))
    code, out, err = mtbench(capsys, "run", "-c", str(config), "--json", "--quiet")
    assert code == 0, err
    assert orjson.loads(out)["judges"]["judge-two"]["done"] == len(MODELS) * len(QUESTIONS) * 2

    code, out, err = mtbench(capsys, "show", "--store", str(tmp_path / "store.sqlite"), "--json")
    assert code == 0, err
    shown = orjson.loads(out)
    assert shown["not_shown"] == []
    (panel,) = shown["panels"]
    assert [judge["model"] for judge in panel["judges"]] == [
        "judge-model-0",
        "judge-model-1-new",
        "judge-model-2",
    ]
    assert all(row["items"] == len(QUESTIONS) * 2 for row in panel["models"])
