"""The SQLite store: opening (checks, lock, migrations) and the reads the engine and `show` need.

Everything ever paid for lives here, inspectable with any SQLite tool. Writes during a run go
through `engine.store.writer.StoreWriter`; this module opens the file, reads, and records the run
and its questions. A store that is not ours, or is from a newer engine, is refused before anything
touches it (`engine.store.storefile`); a second writer is refused by an advisory lock, because two
runs on one store would pay twice for the same answers. A SQLite failure while a run uses the store
(disk full, I/O error, lock timeout) becomes a `StoreWriteError`: the run stops, exit 3.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosqlite
import orjson

from engine.bench.data import BenchData
from engine.critical import critical
from engine.errors import StoreError
from engine.store import rows
from engine.store.rows import CompletionEstimate, JudgeIdentity, QuestionRow
from engine.store.schema import MIGRATIONS, SCHEMA_VERSION
from engine.store.storefile import (
    JOURNAL_SUFFIXES,
    SchemaInfo,
    WriterLock,
    check_schema,
    check_store_path,
    inspect_schema,
    is_data_error,
    peek,
    store_write_error,
    take_writer_lock,
)

__all__ = [
    "CachedResponse",
    "JudgeIdentity",
    "Store",
    "check_store",
    "open_store",
    "stored_models",
]

LOOKUP_BATCH = 500
WRITER_CHECKPOINT_PAGES = 10000
CACHE_KIB = 16384  # page cache per connection: the default 2 MB thrashes on stores of 10k+ answers


@dataclass(frozen=True, slots=True)
class CachedResponse:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


AnswerSlotKey = tuple[str, int, int, int]  # (model, question_id, turn, sample)
JudgmentSlotKey = tuple[str, str, str, int, int, int, int]
# (kind, model, opponent, question_id, turn, game, sample)


class Store:
    def __init__(
        self,
        path: Path,
        db: aiosqlite.Connection,
        lock: WriterLock | None,
        created: _Created | None = None,
    ) -> None:
        self.path = path
        self.db = db
        self._lock = lock
        self._created = created

    async def close(self, *, discard: bool = False) -> None:
        """Close; with `discard`, also remove what opening created (nothing was run yet)."""
        try:
            with critical():  # a signal waits: a half-closed connection's thread would complain
                if self._lock is not None and not discard:
                    await self._at_rest()
                await self.db.close()
        finally:
            new = self._created if discard else None
            if new is not None:
                _remove_store_files(self.path)  # while still locked: nobody else has it
            if self._lock is not None:
                if discard:
                    self._lock.discard()
                else:
                    self._lock.release()
            if new is not None:
                _remove_directories(new)

    async def _at_rest(self) -> None:
        """Leave the store as one file: out of WAL mode once its writer is done (the next writer
        turns WAL back on). Readers (`show`, `report`, `export`) of a WAL store create `-wal` and
        `-shm` files beside it, which would be left behind; and one file is what users copy. A
        reader still open keeps the store in WAL mode until the next run ends: harmless."""
        with suppress(sqlite3.Error):
            await self.db.execute("PRAGMA journal_mode = DELETE")

    @contextmanager
    def _io(self) -> Iterator[None]:
        """SQLite failing under a run (disk full, I/O, lock timeout) stops the run: exit 3."""
        try:
            yield
        except sqlite3.Error as exc:
            if is_data_error(exc):
                raise
            raise store_write_error(self.path, exc) from None

    async def lookup(self, keys: Sequence[str]) -> dict[str, CachedResponse]:
        """Which of these request keys are cached, with their responses (batched IN queries)."""
        found: dict[str, CachedResponse] = {}
        with self._io():
            for start in range(0, len(keys), LOOKUP_BATCH):
                chunk = keys[start : start + LOOKUP_BATCH]
                sql = f"{rows.CACHED_RESPONSES}({rows.in_list(len(chunk))})"
                async with self.db.execute(sql, chunk) as cursor:
                    for key, text, finish, prompt, completion in await cursor.fetchall():
                        found[key] = CachedResponse(text, finish, prompt, completion)
        return found

    async def read(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Any]:
        """A read the run depends on (graph, cache): a failing store stops the run."""
        with self._io():
            async with self.db.execute(sql, params) as cursor:
                return list(await cursor.fetchall())

    async def begin_run(self, command: str, snapshot: str) -> int:
        """The run's row, status 'running' until `finish_run`."""
        with self._io():
            cursor = await self.db.execute(
                rows.INSERT_RUN, {"command": command, "started": time.time(), "config": snapshot}
            )
        run_id = cursor.lastrowid
        assert run_id is not None
        return run_id

    async def finish_run(self, run_id: int, status: str, counts: str | None) -> None:
        with self._io():
            finished = {"finished": time.time(), "status": status, "counts": counts, "id": run_id}
            await self.db.execute(rows.FINISH_RUN, finished)

    async def answer_index(self, bench: str) -> dict[AnswerSlotKey, tuple[str, str]]:
        """(model, question, turn, sample) -> (response key, source) for every stored answer."""
        found = await self.read(rows.ANSWER_INDEX, {"bench": bench})
        return {(m, q, t, s): (k, src) for m, q, t, s, k, src in found}

    async def answer_texts(
        self, bench: str, models: Iterable[str]
    ) -> dict[tuple[str, int, int], str]:
        """The current answer text of every (model, question, turn) of these models (sample 0)."""
        wanted = list(models)
        if not wanted:
            return {}
        sql = f"{rows.ANSWER_TEXTS}({rows.in_list(len(wanted))})"
        found = await self.read(sql, (bench, *wanted))
        return {(m, q, t): text for m, q, t, text in found}

    async def answered_models(self, bench: str) -> list[str]:
        return [row[0] for row in await self.fetch(rows.ANSWERED_MODELS, {"bench": bench})]

    async def judgment_index(self, judge: JudgeIdentity, bench: str) -> dict[JudgmentSlotKey, str]:
        found = await self.read(rows.JUDGMENT_INDEX, rows.judge_params(judge, bench))
        return {tuple(row[:7]): row[7] for row in found}

    async def record_questions(self, bench: BenchData) -> None:
        """Keep the bench's questions beside the answers, so `show` and `report` stand alone."""
        questions = [
            rows.params(
                QuestionRow(
                    bench.bench,
                    q.question_id,
                    q.category,
                    orjson.dumps(list(q.turns)).decode(),
                    _json_or_none(bench.references.get(q.question_id)),
                )
            )
            for q in bench.questions
        ]
        with self._io():
            async with self.transaction():
                await self.db.executemany(rows.UPSERT_QUESTION, questions)

    @asynccontextmanager
    async def transaction(self, begin: str = "BEGIN") -> AsyncIterator[None]:
        """The block's statements commit together, or (when it raises) not at all."""
        await self.db.execute(begin)
        try:
            yield
            await self.db.execute("COMMIT")
        except BaseException:
            # SQLite has already rolled back after some errors (disk full, I/O): a second
            # ROLLBACK would fail and hide the error that matters.
            if self.db.in_transaction:
                await self.db.execute("ROLLBACK")
            raise

    async def completion_estimates(self) -> dict[str, CompletionEstimate]:
        """Mean completion (and reasoning) tokens per label, from the responses paid for."""
        found = await self.fetch(rows.COMPLETION_ESTIMATES)
        return {label: CompletionEstimate(mean, reasoning) for label, mean, reasoning in found}

    async def execute(self, sql: str, params: Mapping[str, Any] | Sequence[Any]) -> None:
        """One autocommitted statement outside the run's writer (the `servers` table); a store
        that refuses it raises StoreWriteError."""
        try:
            await self.db.execute(sql, params)
        except sqlite3.Error as exc:
            raise store_write_error(self.path, exc) from None

    async def fetch(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[sqlite3.Row]:
        async with self.db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())


def _json_or_none(value: Sequence[str] | None) -> str | None:
    return None if value is None else orjson.dumps(list(value)).decode()


async def open_store(path: Path, *, write: bool, lock: bool = True) -> Store:
    """Open a store for reading (it must exist) or writing (created and migrated if needed).

    Every check that can refuse the store runs before anything is created or locked; if opening
    fails after that, what this call created (store, journal files, lock, directories) is removed.
    `lock=False` is for the throwaway in-memory store `plan` uses when no store exists yet.
    """
    path = Path(path)
    if str(path) == ":memory:":
        return await _connect(path, path, write=True, lock=None, created=None)
    exists = check_store(path, write=write)
    if not write:
        return await _connect(path, f"file:{quote(str(path))}?mode=ro", write=False)
    created = None if exists else _Created(_missing_directories(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer_lock = take_writer_lock(path) if lock else None
    except BaseException as exc:
        if created is not None:
            _remove_directories(created)
        if isinstance(exc, OSError):
            raise StoreError(f"{path}: cannot create its directory ({exc.strerror})") from None
        raise
    return await _connect(path, path, write=True, lock=writer_lock, created=created)


def check_store(path: Path, *, write: bool) -> bool:
    """Every refusal `open_store` makes before it creates or locks anything (one line, exit 2);
    True if the store exists. Nothing is created, locked or written."""
    exists = check_store_path(path, write=write)
    if exists:
        check_schema(path, inspect_schema(path), write=write)
    return exists


@dataclass(frozen=True, slots=True)
class _Created:
    """What opening a new store created besides the file: removed again if the run never starts."""

    directories: tuple[Path, ...]


async def _connect(
    path: Path,
    target: Path | str,
    *,
    write: bool,
    lock: WriterLock | None = None,
    created: _Created | None = None,
) -> Store:
    store: Store | None = None
    try:
        with critical():  # a cancelled connect would leave aiosqlite's thread without a loop
            db = await aiosqlite.connect(target, isolation_level=None, uri=not write)
        store = Store(path, db, lock, created)
        db.row_factory = sqlite3.Row
        await _prepare(db, path, write=write)
    except BaseException as exc:
        if store is not None:
            await store.close(discard=True)
        else:
            if created is not None:
                _remove_store_files(path)
            if lock is not None:
                lock.discard()
            if created is not None:
                _remove_directories(created)
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise StoreError(f"{path}: cannot open the store ({exc}); {_advice(path)}") from None
        raise
    return store


def _advice(path: Path) -> str:
    return f"check that {path.resolve().parent} is writable and has free space"


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return True  # let the checks say what is wrong with it


def _remove_store_files(path: Path) -> None:
    for suffix in ("", *JOURNAL_SUFFIXES):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _remove_directories(created: _Created) -> None:
    for directory in created.directories:
        try:
            directory.rmdir()
        except OSError:
            return  # something else was put there meanwhile: not ours to remove


def _missing_directories(path: Path) -> tuple[Path, ...]:
    missing = []
    directory = path.parent
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    return tuple(missing)


def stored_models(path: Path, bench: str) -> list[str]:
    """Models with answers in the store at `path`, read without creating anything beside it."""
    if not _exists(path) or not check_store_path(path, write=False):
        return []
    info = inspect_schema(path)
    check_schema(path, info, write=True)
    if "answers" not in info.tables:
        return []
    with closing(peek(path)) as db:
        found = db.execute(rows.ANSWERED_MODELS, {"bench": bench}).fetchall()
    return [model for (model,) in found]


BUSY_TIMEOUT_MS = 10_000  # how long a write waits for another program's lock: then exit 3


def _connection_pragmas() -> tuple[str, ...]:
    return (f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}", f"PRAGMA cache_size = -{CACHE_KIB}")


def _write_pragmas() -> tuple[str, ...]:
    # With WAL, NORMAL is consistent after any crash and loses nothing a process crash can reach.
    return (*_connection_pragmas(), "PRAGMA synchronous = NORMAL")


def configure_connection(db: sqlite3.Connection) -> None:
    """Settings of a second write connection (the run's writer) to a prepared store.

    Its WAL is checkpointed every ~40 MB instead of SQLite's 4 MB: each checkpoint syncs the file,
    and a run writes kilobytes per answer.
    """
    for pragma in (*_write_pragmas(), f"PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}"):
        db.execute(pragma)


async def _prepare(db: aiosqlite.Connection, path: Path, *, write: bool) -> None:
    """Check the schema again (under the lock, for a writer) and set the connection up."""
    if str(path) != ":memory:":
        version = (await (await db.execute("PRAGMA user_version")).fetchone())[0]  # type: ignore[index]
        rows = await (
            await db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ).fetchall()
        check_schema(path, SchemaInfo(version, tuple(r[0] for r in rows)), write=write)
    else:
        version = 0
    if not write:
        for pragma in _connection_pragmas():
            await db.execute(pragma)
        return
    await db.execute("PRAGMA journal_mode = WAL")
    for pragma in _write_pragmas():
        await db.execute(pragma)
    for number in range(version, SCHEMA_VERSION):
        await db.executescript(
            f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;"
        )
