"""Migration 4 (reasoning columns) upgrades a store in place: every row kept, the new columns NULL
(thinking and settings unknown for what was paid before), and `show` reads it as before."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from engine.store.schema import MIGRATIONS, SCHEMA_VERSION
from engine.store.store import open_store
from tests.support.runconfig import mtbench

BEFORE_REASONING = 3


def test_a_store_from_before_reasoning_models_is_upgraded_keeping_every_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "old.sqlite"
    with sqlite3.connect(store) as db:
        for number in range(BEFORE_REASONING):
            db.executescript(
                f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;"
            )
        db.execute(
            "INSERT INTO responses (key, api, label, model, request, text, completion_tokens, "
            "created, cost) VALUES ('k', 'openai', 'j', 'gpt-4', '{}', 'Rating: [[7]]', 9, 1, 0.5)"
        )
        db.execute(
            "INSERT INTO judgments VALUES ('j', 'gpt-4', 'openai', 'mt_bench', 'single', 'alpha', "
            "'', 81, 1, 0, 0, 'single-v1', 7, NULL, 'ok', 'k', NULL, 1)"
        )

    async def upgrade() -> None:
        await (await open_store(store, write=True)).close()

    asyncio.run(upgrade())
    assert SCHEMA_VERSION > BEFORE_REASONING
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute(
            "SELECT text, completion_tokens, cost, reasoning, reasoning_tokens FROM responses"
        ).fetchall() == [("Rating: [[7]]", 9, 0.5, None, None)]
        assert db.execute("SELECT score, judge_settings FROM judgments").fetchall() == [(7, None)]

    code, out, _ = mtbench(capsys, "show", "--store", str(store))
    assert code == 0, out
    assert out.startswith("Judge j (model gpt-4, api openai, prompts single-v1")
    assert "reasoning" not in out
