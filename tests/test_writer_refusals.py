"""The writer on a real SQLite file: a value SQLite refuses costs its own group, nothing else."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine.store.rows import ResponseRow
from engine.store.store import open_store
from engine.store.writer import StoreWriter
from tests.support.engineproc import integrity

INSERT_RUN = "INSERT INTO runs (command, started, status, config) VALUES (?, ?, ?, '{}')"


def response(key: str, *, finish_reason: Any = "stop", prompt_tokens: Any = 10) -> tuple:
    return ResponseRow(
        key, "openai", "alpha", "alpha", b"{}", f"answer {key}", finish_reason, prompt_tokens, 5,
        0.1, 1.0,
    ).write()  # fmt: skip


def answer(key: str) -> tuple:
    return (
        "INSERT INTO answers (model, bench, question_id, turn, sample, response_key, source, "
        "created) VALUES ('alpha', 'mt_bench', ?, 1, 0, ?, 'generated', 1.0)",
        (int(key[1:]), key),
    )


def stored_keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [k for (k,) in db.execute("SELECT key FROM responses ORDER BY key")]


def answer_keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [k for (k,) in db.execute("SELECT response_key FROM answers ORDER BY 1")]


POISONS = {
    "finish-reason-object": {"finish_reason": {"why": "stop"}},
    "prompt-tokens-beyond-64-bits": {"prompt_tokens": 2**63 + 1},
    "lone-surrogate": {"finish_reason": "\ud800"},
}


@pytest.mark.parametrize("poison", list(POISONS))
def test_a_refused_value_fails_its_group_alone_and_every_other_group_commits(
    tmp_path: Path, poison: str
) -> None:
    path = tmp_path / "store.sqlite"
    committed: list[str] = []
    refused: list[tuple[str, str]] = []

    async def scenario() -> None:
        store = await open_store(path, write=True)
        writer = StoreWriter(path)
        task = writer.start()
        for index in range(1, 7):
            key = f"k{index}"
            values = POISONS[poison] if index == 3 else {}
            writer.put_many(
                [response(key, **values), answer(key)],
                lambda key=key: committed.append(key),
                lambda reason, key=key: refused.append((key, reason)),
            )
        await asyncio.sleep(0.2)
        assert not task.done()  # the writer lives on after the refusal
        writer.put_many([response("k7"), answer("k7")], lambda: committed.append("k7"))
        await writer.close()
        await store.close()

    asyncio.run(scenario())
    good = ["k1", "k2", "k4", "k5", "k6", "k7"]
    assert stored_keys(path) == good
    assert answer_keys(path) == good  # the bad group's answer row went with its response
    assert sorted(committed) == good
    ((key, reason),) = refused
    assert key == "k3"
    column = next(iter(POISONS[poison]))
    assert reason.startswith(f"{column} = ")
    assert "cannot be stored" in reason
    assert integrity(path) == "ok"


def test_groups_are_never_split_across_commits_and_callbacks_follow_their_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite"
    seen: list[tuple[int, int]] = []

    async def scenario() -> None:
        store = await open_store(path, write=True)
        writer = StoreWriter(path)
        writer.start()

        def check(group: int) -> None:
            with sqlite3.connect(path) as reader:
                rows = reader.execute(
                    "SELECT COUNT(*) FROM runs WHERE command = ?", (f"g{group}",)
                ).fetchone()[0]
            seen.append((group, rows))

        for group in range(30):
            rows = [(INSERT_RUN, (f"g{group}", float(i), "ok")) for i in range(37)]
            writer.put_many(rows, lambda group=group: check(group))
        await writer.close()
        await store.close()
        assert writer.commits > 1

    asyncio.run(scenario())
    assert seen == [(group, 37) for group in range(30)]


def test_a_store_that_fails_stops_the_writer_with_a_store_write_error_and_keeps_the_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy store (another program holds the write lock past the timeout) is a store failure."""
    from engine.errors import StoreWriteError
    from engine.store import store as store_module

    path = tmp_path / "store.sqlite"

    async def scenario() -> None:
        store = await open_store(path, write=True)
        writer = StoreWriter(path)
        task = writer.start()
        writer.put_many([response("k1"), answer("k1")])
        await asyncio.sleep(0.2)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            writer.put_many([response("k2"), answer("k2")])
            await asyncio.wait_for(asyncio.wait([task]), 10)
            assert isinstance(task.exception(), StoreWriteError)
            with pytest.raises(StoreWriteError) as raised:
                await writer.close()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
            await store.close()
        message = str(raised.value)
        assert message.startswith(f"{path}: the store could not be written (database is locked)")
        assert "rerun the same command" in message
        assert "\n" not in message

    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 200)
    asyncio.run(scenario())
    assert stored_keys(path) == ["k1"]
    assert integrity(path) == "ok"
