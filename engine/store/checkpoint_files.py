"""What each checkpoint's files were when a run first served it, kept in the store.

Answers are cached under a hash of their request, and a checkpoint's requests carry its label
(`step-100`), not its content: a trainer that rewrites `step-100/` after it was scored would get
the old scores back, silently. So the first run that serves a checkpoint records its files'
names, sizes and modification times (`engine.run.checkpoint_contents` compares them later). A
record made before any answer was stored under its label vouches for nothing yet: it is replaced.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import orjson

from engine.store import rows
from engine.store.rows import CheckpointFilesRow
from engine.store.store import Store
from engine.store.storefile import peek

__all__ = ["FileEntry", "Recorded", "read_recorded", "record_files", "recorded_files"]

FileEntry = tuple[str, int, int]  # (path relative to the checkpoint, size, mtime_ns)


@dataclass(frozen=True, slots=True)
class Recorded:
    files: tuple[FileEntry, ...]
    answered: bool  # answers are stored under the label: they are these files' answers


async def recorded_files(store: Store) -> dict[str, Recorded]:
    """Label -> its checkpoint's recorded files, for every checkpoint a run has served."""
    return _parsed(await store.read(rows.CHECKPOINT_FILES))


def read_recorded(path: Path) -> dict[str, Recorded]:
    """`recorded_files` of the store at `path`, between runs, creating nothing beside it; empty
    when there is no store yet, or none this engine can read now (the next look tries again)."""
    if not path.exists():
        return {}
    try:
        with closing(peek(path)) as db:
            return _parsed(db.execute(rows.CHECKPOINT_FILES).fetchall())
    except sqlite3.Error:  # a store from before checkpoint_files, or another program's lock
        return {}


async def record_files(
    store: Store, label: str, path: str, files: Sequence[FileEntry], run_id: int | None
) -> None:
    row = CheckpointFilesRow(label, path, orjson.dumps(list(files)).decode(), run_id, time.time())
    await store.execute(*row.write())


def _parsed(found: Sequence[Sequence[object]]) -> dict[str, Recorded]:
    """The rows as records; a row no engine wrote (edited by hand) is left out, as if missing."""
    records = {}
    for label, column, answered in found:
        files = _files(column)
        if isinstance(label, str) and files is not None:
            records[label] = Recorded(files, bool(answered))
    return records


def _files(column: object) -> tuple[FileEntry, ...] | None:
    try:
        entries = orjson.loads(column) if isinstance(column, str) else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entries, list):
        return None
    files = []
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
            return None
        name, size, mtime = entry
        if not (isinstance(size, int) and isinstance(mtime, int)):
            return None
        files.append((name, size, mtime))
    return tuple(files)
