"""The SQLite store: opening (checks, lock, migrations) and the reads the engine and `show` need.

Everything ever paid for lives here, inspectable with any SQLite tool. Writes during a run go
through `engine.writer.StoreWriter`; this module only opens the file and reads. A store that is
not ours, or is from a newer engine, is refused before anything touches it; a second writer is
refused by an advisory lock, because two runs on one store would pay twice for the same answers.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiosqlite
import orjson

from engine.data import BenchData
from engine.errors import StoreError
from engine.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["CachedResponse", "JudgeIdentity", "Store", "open_store"]

SQLITE_MAGIC = b"SQLite format 3\x00"
LOOKUP_BATCH = 500
WRITER_CHECKPOINT_PAGES = 10000
CACHE_KIB = 16384  # page cache per connection: the default 2 MB thrashes on stores of 10k+ answers


@dataclass(frozen=True, slots=True)
class CachedResponse:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True, slots=True)
class JudgeIdentity:
    """Who judged: label, served model string and API kind (imports use api 'import')."""

    name: str
    model: str
    api: str


AnswerSlotKey = tuple[str, int, int, int]  # (model, question_id, turn, sample)
JudgmentSlotKey = tuple[str, str, str, int, int, int, int]
# (kind, model, opponent, question_id, turn, game, sample)


class Store:
    def __init__(self, path: Path, db: aiosqlite.Connection, lock: IO[str] | None) -> None:
        self.path = path
        self.db = db
        self._lock = lock

    async def close(self) -> None:
        await self.db.close()
        if self._lock is not None:
            self._lock.close()

    async def lookup(self, keys: Sequence[str]) -> dict[str, CachedResponse]:
        """Which of these request keys are cached, with their responses (batched IN queries)."""
        found: dict[str, CachedResponse] = {}
        for start in range(0, len(keys), LOOKUP_BATCH):
            chunk = keys[start : start + LOOKUP_BATCH]
            marks = ",".join("?" * len(chunk))
            sql = (
                "SELECT key, text, finish_reason, prompt_tokens, completion_tokens "
                f"FROM responses WHERE key IN ({marks})"
            )
            async with self.db.execute(sql, chunk) as cursor:
                for key, text, finish, prompt, completion in await cursor.fetchall():
                    found[key] = CachedResponse(text, finish, prompt, completion)
        return found

    async def answer_index(self, bench: str) -> dict[AnswerSlotKey, tuple[str, str]]:
        """(model, question, turn, sample) -> (response key, source) for every stored answer."""
        sql = (
            "SELECT model, question_id, turn, sample, response_key, source "
            "FROM answers WHERE bench = ?"
        )
        async with self.db.execute(sql, (bench,)) as cursor:
            return {(m, q, t, s): (k, src) for m, q, t, s, k, src in await cursor.fetchall()}

    async def answer_texts(
        self, bench: str, models: Iterable[str]
    ) -> dict[tuple[str, int, int], str]:
        """The current answer text of every (model, question, turn) of these models (sample 0)."""
        wanted = list(models)
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        sql = (
            "SELECT a.model, a.question_id, a.turn, r.text FROM answers a "
            "JOIN responses r ON r.key = a.response_key "
            f"WHERE a.bench = ? AND a.sample = 0 AND a.model IN ({marks})"
        )
        async with self.db.execute(sql, (bench, *wanted)) as cursor:
            return {(m, q, t): text for m, q, t, text in await cursor.fetchall()}

    async def answered_models(self, bench: str) -> list[str]:
        sql = "SELECT DISTINCT model FROM answers WHERE bench = ? ORDER BY model"
        async with self.db.execute(sql, (bench,)) as cursor:
            return [row[0] for row in await cursor.fetchall()]

    async def judgment_index(self, judge: JudgeIdentity, bench: str) -> dict[JudgmentSlotKey, str]:
        sql = (
            "SELECT kind, model, opponent, question_id, turn, game, sample, response_key "
            "FROM judgments WHERE judge = ? AND judge_model = ? AND judge_api = ? AND bench = ?"
        )
        params = (judge.name, judge.model, judge.api, bench)
        async with self.db.execute(sql, params) as cursor:
            return {tuple(row[:7]): row[7] for row in await cursor.fetchall()}

    async def record_questions(self, bench: BenchData) -> None:
        """Keep the bench's questions beside the answers, so `show` and `report` stand alone."""
        rows = [
            (
                bench.bench,
                q.question_id,
                q.category,
                orjson.dumps(list(q.turns)).decode(),
                _json_or_none(bench.references.get(q.question_id)),
            )
            for q in bench.questions
        ]
        await self.db.execute("BEGIN")
        await self.db.executemany(
            "INSERT OR REPLACE INTO questions (bench, question_id, category, turns, reference) "
            "VALUES (?,?,?,?,?)",
            rows,
        )
        await self.db.execute("COMMIT")

    async def completion_estimates(self) -> dict[str, float]:
        """Mean completion tokens per label, from the responses already paid for."""
        rows = await self.fetch(
            "SELECT label, AVG(completion_tokens) FROM responses "
            "WHERE completion_tokens IS NOT NULL GROUP BY label"
        )
        return {label: mean for label, mean in rows}

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self.db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())


def _json_or_none(value: Sequence[str] | None) -> str | None:
    return None if value is None else orjson.dumps(list(value)).decode()


async def open_store(path: Path, *, write: bool, lock: bool = True) -> Store:
    """Open a store for reading (it must exist) or writing (created and migrated if needed).

    `lock=False` is for the throwaway in-memory store `plan` uses when no store exists yet.
    """
    path = Path(path)
    in_memory = str(path) == ":memory:"
    if not in_memory:
        _check_file(path, must_exist=not write)
    writer_lock = _take_writer_lock(path) if write and lock else None
    try:
        if write:
            if not in_memory:
                path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path, isolation_level=None)
        else:
            db = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            await _prepare(db, path, write=write)
        except BaseException:
            await db.close()
            raise
    except BaseException:
        if writer_lock is not None:
            writer_lock.close()
        raise
    return Store(path, db, writer_lock)


def _check_file(path: Path, *, must_exist: bool) -> None:
    if not path.exists():
        if must_exist:
            raise StoreError(f"{path}: no store there; run `mtbench generate` or `import` first")
        return
    if path.is_dir():
        raise StoreError(f"{path}: is a directory; give the path of a SQLite file")
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head and head != SQLITE_MAGIC:
        raise StoreError(
            f"{path}: not a SQLite database; point `store` at an mtbench store or a new file"
        )


def _take_writer_lock(path: Path) -> IO[str]:
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StoreError(
            f"{path}: another mtbench run is writing to this store (pid {holder}); "
            "wait for it to finish or use another store"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


CONNECTION_PRAGMAS = ("PRAGMA busy_timeout = 10000", f"PRAGMA cache_size = -{CACHE_KIB}")
# With WAL, NORMAL is consistent after any crash and loses nothing a process crash can reach.
WRITE_PRAGMAS = (*CONNECTION_PRAGMAS, "PRAGMA synchronous = NORMAL")


def configure_connection(db: sqlite3.Connection) -> None:
    """Settings of a second write connection (the run's writer) to a prepared store.

    Its WAL is checkpointed every ~40 MB instead of SQLite's 4 MB: each checkpoint syncs the file,
    and a run writes kilobytes per answer.
    """
    for pragma in (*WRITE_PRAGMAS, f"PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}"):
        db.execute(pragma)


async def _prepare(db: aiosqlite.Connection, path: Path, *, write: bool) -> None:
    try:
        version = (await (await db.execute("PRAGMA user_version")).fetchone())[0]  # type: ignore[index]
        tables = await (
            await db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a usable SQLite database ({exc})") from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: store schema version {version} is newer than this engine's "
            f"({SCHEMA_VERSION}); upgrade mtbench-engine"
        )
    if version == 0 and tables:
        raise StoreError(f"{path}: a SQLite database but not an mtbench store; use another path")
    if not write:
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"{path}: store is from an older engine; run any write command to upgrade it"
            )
        for pragma in CONNECTION_PRAGMAS:
            await db.execute(pragma)
        return
    await db.execute("PRAGMA journal_mode = WAL")
    for pragma in WRITE_PRAGMAS:
        await db.execute(pragma)
    for number in range(version, SCHEMA_VERSION):
        await db.executescript(
            f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;"
        )
