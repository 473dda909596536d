"""The one task that writes to the store during a run: group commit, then release what waited.

Results arrive one by one from many requests; committing each alone would cap the engine at a few
thousand rows per second. The writer takes everything queued since its last commit (up to
MAX_BATCH rows), writes it with one `executemany` per statement in one transaction, commits, and
only then runs the callbacks: a follow-up job (turn 2, a judgment) never starts on an answer that a
crash could still lose. Batches form naturally: while one commit runs, the next one fills up, so an
idle engine commits at once and a busy one commits in large batches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiosqlite

__all__ = ["StoreWriter"]

log = logging.getLogger(__name__)

MAX_BATCH = 500

OnCommit = Callable[[], None]


class StoreWriter:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._pending: list[tuple[str, tuple[Any, ...], OnCommit | None]] = []
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
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
            await self._commit(batch)
            for _, _, on_commit in batch:
                if on_commit is not None:
                    on_commit()

    async def _commit(self, batch: list[tuple[str, tuple[Any, ...], OnCommit | None]]) -> None:
        by_statement: dict[str, list[tuple[Any, ...]]] = {}
        for sql, params, _ in batch:
            by_statement.setdefault(sql, []).append(params)
        await self._db.execute("BEGIN")
        try:
            for sql, rows in by_statement.items():
                await self._db.executemany(sql, rows)
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        await self._db.execute("COMMIT")
        self.rows_written += len(batch)
        self.commits += 1
