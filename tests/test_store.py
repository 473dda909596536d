"""The store file itself: migrations upgrade in place, and group commits release after commit."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from engine.errors import StoreError
from engine.store.schema import MIGRATIONS, SCHEMA_VERSION
from engine.store.store import open_store
from engine.store.writer import StoreWriter


def test_a_store_from_an_older_engine_is_upgraded_in_place_without_losing_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(f"BEGIN; {MIGRATIONS[0]} PRAGMA user_version = 1; COMMIT;")
        db.execute(
            "INSERT INTO responses (key, api, label, model, request, text, created) "
            "VALUES ('k1', 'openai', 'alpha', 'alpha', '{}', 'an old answer', 1.0)"
        )

    with pytest.raises(StoreError, match="older engine"):
        asyncio.run(open_store(path, write=False))

    async def upgrade() -> None:
        store = await open_store(path, write=True)
        await store.close()

    asyncio.run(upgrade())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT text, cost FROM responses").fetchall() == [
            ("an old answer", None)
        ]


def test_callbacks_run_only_after_their_rows_are_committed(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"

    async def scenario() -> list[int]:
        store = await open_store(path, write=True)
        writer = StoreWriter(path)
        writer.start()
        seen_by_reader: list[int] = []

        def on_commit() -> None:
            with sqlite3.connect(path) as reader:  # another connection sees the rows already
                seen_by_reader.append(reader.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

        for i in range(250):
            writer.put(
                "INSERT INTO runs (command, started, status, config) VALUES (?, ?, 'ok', '{}')",
                (f"c{i}", float(i)),
                on_commit if i % 50 == 49 else None,
            )
        await writer.close()
        await store.close()
        assert writer.rows_written == 250
        assert writer.commits < 250  # grouped, not one commit per row
        return seen_by_reader

    seen = asyncio.run(scenario())
    assert len(seen) == 5
    assert all(count >= (i + 1) * 50 for i, count in enumerate(seen))


def test_a_second_writer_is_refused_while_the_first_holds_the_store(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"

    async def scenario() -> None:
        first = await open_store(path, write=True)
        try:
            with pytest.raises(StoreError, match="another mtbench run is writing"):
                await open_store(path, write=True)
            reader = await open_store(path, write=False)  # readers are always welcome
            await reader.close()
        finally:
            await first.close()
        second = await open_store(path, write=True)  # the lock goes with the first writer
        await second.close()

    asyncio.run(scenario())


QUESTION = "INSERT INTO questions (bench, question_id, category, turns) VALUES ('b', 1, 'c', '[]')"


def stored_questions(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM questions").fetchone()[0])


@pytest.mark.parametrize("sqlite_rolled_back", [False, True], ids=["open", "rolled-back"])
def test_a_transaction_whose_block_raises_keeps_none_of_its_rows_and_raises_that_error(
    tmp_path: Path, sqlite_rolled_back: bool
) -> None:
    """After some errors (a full disk) SQLite has ended the transaction itself: the block's error
    is what the caller sees, not a failed second ROLLBACK."""
    path = tmp_path / "store.sqlite"

    async def scenario() -> None:
        store = await open_store(path, write=True)
        try:
            async with store.transaction("BEGIN IMMEDIATE"):
                await store.db.execute(QUESTION)
                if sqlite_rolled_back:
                    await store.db.execute("ROLLBACK")
                raise ValueError("the block failed")
        finally:
            await store.close()

    with pytest.raises(ValueError, match="the block failed"):
        asyncio.run(scenario())
    assert stored_questions(path) == 0


def test_a_transaction_whose_block_ends_commits_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"

    async def scenario() -> None:
        store = await open_store(path, write=True)
        async with store.transaction():
            await store.db.execute(QUESTION)
        await store.close()

    asyncio.run(scenario())
    assert stored_questions(path) == 1
