"""The one task that writes to the store during a run: group commit, then release what waited.

Results arrive one by one from many requests; committing each alone would cap the engine at a few
thousand rows per second. The writer takes everything queued since its last commit (up to
MAX_BATCH rows), writes it with one `executemany` per statement in one transaction, commits, and
only then runs the callbacks: a follow-up job (turn 2, a judgment) never starts on an answer that a
crash could still lose. Batches form naturally: while one commit runs, the next one fills up, so an
idle engine commits at once and a busy one commits in large batches.

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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["StoreWriter"]

log = logging.getLogger(__name__)

MAX_BATCH = 500

OnCommit = Callable[[], None]
Pending = tuple[str, tuple[Any, ...], OnCommit | None]


class StoreWriter:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._db: sqlite3.Connection | None = None
        self._pending: list[Pending] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.rows_written = 0
        self.commits = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="store-writer")

    def put(self, sql: str, params: tuple[Any, ...], on_commit: OnCommit | None = None) -> None:
        self._pending.append((sql, params, on_commit))
        self._wake.set()

    def put_many(
        self, rows: list[tuple[str, tuple[Any, ...]]], on_commit: OnCommit | None = None
    ) -> None:
        """Rows that must land in the same transaction; `on_commit` runs once after it."""
        for sql, params in rows[:-1]:
            self._pending.append((sql, params, None))
        sql, params = rows[-1]
        self.put(sql, params, on_commit)

    async def close(self) -> None:
        """Commit everything queued, then stop."""
        self._closing = True
        self._wake.set()
        try:
            if self._task is not None:
                await self._task
        finally:
            await self._on_thread(self._disconnect)
            self._thread.shutdown(wait=True)

    async def _run(self) -> None:
        await self._on_thread(self._connect)
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
            await self._on_thread(self._commit, batch)
            self.rows_written += len(batch)
            self.commits += 1
            for _, _, on_commit in batch:
                if on_commit is not None:
                    on_commit()

    async def _on_thread(self, function: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    def _connect(self) -> None:
        from engine.store import configure_connection

        self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        configure_connection(self._db)

    def _disconnect(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _commit(self, batch: list[Pending]) -> None:
        """One transaction, one executemany per statement, in the order statements first came."""
        assert self._db is not None
        by_statement: dict[str, list[tuple[Any, ...]]] = {}
        for sql, params, _ in batch:
            by_statement.setdefault(sql, []).append(params)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in by_statement.items():
                self._db.executemany(sql, rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
