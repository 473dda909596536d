"""The one task that writes to the store during a run: group commit, then release what waited.

Results arrive one by one from many requests; committing each alone would cap the engine at a few
thousand rows per second. The writer takes the groups queued since its last commit (up to about
MAX_BATCH rows; a group, the rows of one result, is never split), writes them with one
`executemany` per statement in one transaction, commits, and only then runs the callbacks: a
follow-up job (turn 2, a judgment) never starts on an answer that a crash could still lose.
Batches form naturally: while one commit runs, the next one fills up, so an idle engine commits
at once and a busy one commits in large batches.

One bad row never costs good rows. If a batch fails because of a value SQLite refuses (a dict
where text belongs, an integer beyond 64 bits), it is rolled back and written again group by
group, each under its own SAVEPOINT: the good groups commit, and each bad group's `on_error` is
told why, so its job fails alone. If the store itself fails (disk full, read-only, I/O error,
lock timeout), nothing more can be written: the writer stops with a `StoreWriteError`, which its
supervisor turns into the end of the run; everything committed before stays.

The writer owns its own connection on its own thread, and a whole batch (BEGIN, the executemany
calls, COMMIT) is one hand-off to that thread. Through aiosqlite every call is a hand-off, each
waiting for a turn of a busy event loop; that made a commit four times slower, and a concurrency
slot is held until its result is committed, so commit latency is throughput (reads stay on
aiosqlite).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import StoreWriteError
from engine.store.store import configure_connection
from engine.store.storefile import is_data_error, store_write_error

__all__ = ["OnCommit", "OnError", "StoreWriter"]

log = logging.getLogger(__name__)

MAX_BATCH = 500

# A statement and its parameters: named (`engine.store.rows`), or positional for raw SQL.
Row = tuple[str, Mapping[str, Any] | Sequence[Any]]
OnCommit = Callable[[], None]
OnError = Callable[[str], None]  # told why its group could not be stored
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Group:
    """Rows that land in the same transaction, or not at all."""

    rows: Sequence[Row]
    on_commit: OnCommit | None
    on_error: OnError | None


class StoreWriter:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._db: sqlite3.Connection | None = None
        self._pending: list[_Group] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.failure: StoreWriteError | None = None
        self.rows_written = 0
        self.commits = 0

    def start(self) -> asyncio.Task[None]:
        """Start writing; the task ends with a `StoreWriteError` if the store fails."""
        self._task = asyncio.create_task(self._run(), name="store writer")
        return self._task

    def put(
        self,
        sql: str,
        params: Mapping[str, Any] | Sequence[Any],
        on_commit: OnCommit | None = None,
        on_error: OnError | None = None,
    ) -> None:
        self.put_many([(sql, params)], on_commit, on_error)

    def put_many(
        self,
        rows: Sequence[Row],
        on_commit: OnCommit | None = None,
        on_error: OnError | None = None,
    ) -> None:
        """Rows that must land in the same transaction; after it, `on_commit` runs once, or,
        if SQLite refuses one of their values, none of them is stored and `on_error` runs."""
        self._pending.append(_Group(rows, on_commit, on_error))
        self._wake.set()

    async def close(self) -> None:
        """Commit everything queued, then stop; raises the store's failure if it had one.

        If the writer task died of something else (a callback's bug, which its supervisor
        reports), what is still queued was received all the same: it is committed here.
        """
        self._closing = True
        self._wake.set()
        try:
            if self._task is not None:
                await asyncio.wait([self._task])
                if not self._task.cancelled():
                    self._task.exception()  # seen: its supervisor has reported it
            if self.failure is None and self._pending and self._db is not None:
                for reason in await self._commit_next(callbacks=False):
                    log.error("not stored: %s", reason)
        finally:
            await self._on_thread(self._disconnect)
            self._thread.shutdown(wait=True)
        if self.failure is not None:
            raise self.failure

    async def _run(self) -> None:
        try:
            await self._on_thread(self._connect)
        except StoreWriteError as error:
            self.failure = error
            raise
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._commit_next(callbacks=True)

    async def _commit_next(self, *, callbacks: bool) -> list[str]:
        """Commit the next batch (everything queued, when closing); why groups were refused."""
        batch = self._next_batch(everything=not callbacks)
        try:
            refused = await self._on_thread(self._commit, batch)
        except StoreWriteError as error:
            self.failure = error
            raise
        self.rows_written += sum(len(g.rows) for i, g in enumerate(batch) if i not in refused)
        self.commits += 1
        if callbacks:
            self._settle(batch, refused)
        return list(refused.values())

    def _next_batch(self, *, everything: bool) -> list[_Group]:
        taken = 0
        rows = 0
        while taken < len(self._pending) and (everything or rows < MAX_BATCH):
            rows += len(self._pending[taken].rows)
            taken += 1
        batch = self._pending[:taken]
        del self._pending[:taken]
        return batch

    def _settle(self, batch: list[_Group], refused: dict[int, str]) -> None:
        for index, group in enumerate(batch):
            reason = refused.get(index)
            if reason is None:
                if group.on_commit is not None:
                    group.on_commit()
            elif group.on_error is not None:
                group.on_error(reason)
            else:
                log.error("not stored: %s", reason)

    async def _on_thread(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    def _connect(self) -> None:
        try:
            self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            configure_connection(self._db)
        except sqlite3.Error as exc:
            raise store_write_error(self._path, exc) from None

    def _disconnect(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _commit(self, batch: list[_Group]) -> dict[int, str]:
        """Write the batch in one transaction; on a refused value, group by group.

        Returns the index and reason of every group that could not be stored.
        """
        try:
            try:
                self._transaction(lambda: self._write_together(batch))
                return {}
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                refused: dict[int, str] = {}
                self._transaction(lambda: self._write_each(batch, refused))
                return refused
        except (sqlite3.Error, OSError) as exc:
            raise store_write_error(self._path, exc) from None

    def _transaction(self, write: Callable[[], None]) -> None:
        assert self._db is not None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            write()
            self._db.execute("COMMIT")
        except BaseException:
            # SQLite rolls some failures (disk full, I/O) back by itself; the rest is ours to undo
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _write_together(self, batch: list[_Group]) -> None:
        """One executemany per statement, in the order statements first came."""
        assert self._db is not None
        by_statement: dict[str, list[Mapping[str, Any] | Sequence[Any]]] = {}
        for group in batch:
            for sql, params in group.rows:
                by_statement.setdefault(sql, []).append(params)
        for sql, rows in by_statement.items():
            self._db.executemany(sql, rows)

    def _write_each(self, batch: list[_Group], refused: dict[int, str]) -> None:
        assert self._db is not None
        for index, group in enumerate(batch):
            self._db.execute("SAVEPOINT result_group")
            try:
                for sql, params in group.rows:
                    self._db.execute(sql, params)
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                self._db.execute("ROLLBACK TO result_group")
                refused[index] = refusal(group.rows, exc)
            self._db.execute("RELEASE result_group")


def refusal(rows: Sequence[Row], error: BaseException) -> str:
    """Why SQLite refused a group, naming the column and value when one value is to blame."""
    for sql, params in rows:
        named = params.items() if isinstance(params, Mapping) else _positional(sql, params)
        for column, value in named:
            if not _bindable(value):
                shown = repr(value)
                shown = shown if len(shown) <= 80 else shown[:77] + "..."
                return f"{column} = {shown} cannot be stored ({type(error).__name__}: {error})"
    return f"{type(error).__name__}: {error}"


def _positional(sql: str, params: Sequence[Any]) -> list[tuple[str, Any]]:
    """(column, value) of an `INSERT ... (a, b) VALUES (?, ?)` written by hand."""
    opening = sql.find("(")
    closing = sql.find(")", opening)
    columns: list[str] = []
    if opening >= 0 and closing >= 0 and sql.lstrip().upper().startswith("INSERT"):
        columns = [name.strip() for name in sql[opening + 1 : closing].split(",")]
    return [
        (columns[i] if i < len(columns) else f"#{i + 1}", value) for i, value in enumerate(params)
    ]


INT64 = (-(2**63), 2**63 - 1)


def _bindable(value: object) -> bool:
    if value is None or isinstance(value, (float, bytes)):
        return True
    if isinstance(value, int):
        return INT64[0] <= value <= INT64[1]
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return False
        return True
    return False
