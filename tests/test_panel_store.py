"""A run or `judge` with a `[panel]` records the panel in the store (migration 5), so `show` pools
the same judges without the config; real runs against the fake server give the store its judges.
An older store is upgraded with every row kept."""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

import engine
from engine.config import load_config
from engine.config_panel import PanelConfig
from engine.store.schema import MIGRATIONS, SCHEMA_VERSION
from engine.store.store import open_store
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

QUESTIONS = [81, 82]
JURY = PanelConfig(("a", "b"), "median", "jury")


def _config(directory: Path, fake: FakeServer, judge: str, name: str) -> Path:
    models = [model("alpha", fake.base_url), model("beta", fake.base_url)]
    table = {"name": judge, "model": f"judge-{judge}", "base_url": fake.base_url}
    return write_config(directory, models=models, judge=table, questions=QUESTIONS, name=name)


def _panels(store: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT bench, name, judges, aggregate, run_id FROM panels").fetchall()


def _item_medians(store: Path) -> dict[str, list[float]]:
    """Per model, the median of judges a and b on each item both rated: computed in SQL's rows
    directly, not through the engine's scoring."""
    by_item: dict[tuple[str, int, int], list[float]] = defaultdict(list)
    with sqlite3.connect(store) as db:
        found = db.execute(
            "SELECT model, question_id, turn, score FROM judgments WHERE kind = 'single'"
        ).fetchall()
    for model_name, qid, turn, score in found:
        if score != -1:
            by_item[(model_name, qid, turn)].append(score)
    per_model: dict[str, list[float]] = defaultdict(list)
    for (model_name, _, _), scores in by_item.items():
        if len(scores) == 2:
            per_model[model_name].append(statistics.median(scores))
    return per_model


def test_a_run_records_its_panel_and_show_pools_the_judges_a_later_judge_run_added(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    first = replace(load_config(_config(tmp_path, fake, "a", "a.toml")), panel=JURY)
    result = engine.evaluate(first, command="run")
    assert result.ok
    store = tmp_path / "store.sqlite"
    assert _panels(store) == [("mt_bench", "jury", '["a","b"]', "median", result.run_id)]
    # Judge b has not judged yet: the panel is named, not shown.
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    assert code == 0
    shown = orjson.loads(out)
    assert shown["panels"] == []
    assert any("panel 'jury' not shown: judge 'b'" in note for note in shown["not_shown"])

    second = _config(tmp_path, fake, "b", "b.toml")
    code, _, err = mtbench(capsys, "judge", "-c", str(second), "--quiet")
    assert code == 0, err
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    (panel,) = orjson.loads(out)["panels"]
    assert [(j["name"], j["model"]) for j in panel["judges"]] == [
        ("a", "judge-a"), ("b", "judge-b"),
    ]  # fmt: skip
    expected = _item_medians(store)
    for entry in panel["models"]:
        medians = expected[entry["model"]]
        assert entry["items"] == len(medians) == 2 * len(QUESTIONS)
        assert entry["left_out"] == 0
        assert entry["score"] == pytest.approx(sum(medians) / len(medians))


def test_generate_records_no_panel(tmp_path: Path, fake: FakeServer) -> None:
    config = replace(load_config(_config(tmp_path, fake, "a", "a.toml")), panel=JURY)
    assert engine.evaluate(config, command="generate").ok
    assert _panels(tmp_path / "store.sqlite") == []


def test_a_store_from_before_panels_is_upgraded_keeping_every_row(tmp_path: Path) -> None:
    store = tmp_path / "old.sqlite"
    with sqlite3.connect(store) as db:
        for number in range(4):  # migrations 1 to 4: before panels
            db.executescript(
                f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;"
            )
        db.execute(
            "INSERT INTO judgments VALUES ('j', 'gpt-4', 'openai', 'mt_bench', 'single', 'alpha', "
            "'', 81, 1, 0, 0, 'single-v1', 7, NULL, 'ok', 'k', NULL, 1, NULL)"
        )

    async def upgrade() -> None:
        await (await open_store(store, write=True)).close()

    asyncio.run(upgrade())
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT judge, score FROM judgments").fetchall() == [("j", 7)]
    assert _panels(store) == []
