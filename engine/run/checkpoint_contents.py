"""Has a checkpoint been rewritten since its answers were generated?

A checkpoint's answers are cached under its label, so a trainer that writes `step-100/` again
(a resumed run saving the same step, a store reused for a new training run) would be given the
old content's scores by every later run. The first run that serves a checkpoint records its files
(`engine.store.checkpoint_files`: names, sizes, modification times; the weights are never read);
later, a file that is there now and was not, or whose size or modification time differ, means the
checkpoint changed after scoring. A file removed since is no change: trainers and users delete
optimizer states, and a checkpoint deleted altogether has no content to mismatch.

A plain run warns, one line per such checkpoint, and goes on (`check_contents`); the watcher does
not run it again and reports it (`changed_after_scoring`). Neither scores the new content under
the old label: that would mix two checkpoints' answers under one name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from engine.config import ModelConfig
from engine.store.checkpoint_files import (
    FileEntry,
    Recorded,
    read_recorded,
    record_files,
    recorded_files,
)
from engine.store.store import Store

__all__ = ["changed_after_scoring", "check_contents", "checkpoint_files"]

log = logging.getLogger(__name__)


def checkpoint_files(path: Path) -> tuple[FileEntry, ...] | None:
    """(relative path, size, mtime_ns) of every file of the checkpoint (a file: itself), sorted;
    a symbolic link by its target (a Hugging Face snapshot's shards point into `blobs/`). None
    if it cannot be looked at now (gone, unreadable, a file removed while it was walked)."""
    try:
        if not path.is_dir():
            return (_entry(path, _text(path.name)),)
        found = []
        for folder, _, files in os.walk(path, onerror=_raise):
            for name in files:
                full = Path(folder, name)
                found.append(_entry(full, _text(full.relative_to(path).as_posix())))
    except OSError:
        return None
    return tuple(sorted(found))


def _entry(path: Path, name: str) -> FileEntry:
    try:
        status = path.stat()
    except FileNotFoundError:
        if not path.is_symlink():
            raise
        status = path.lstat()  # a dangling link: itself
    return name, status.st_size, status.st_mtime_ns


def _text(name: str) -> str:
    """`name` as text the store's JSON can hold: a byte that is no UTF-8 (Python's lone
    surrogate for it) as `\\xff`, the same at every look, so the name still compares equal."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _raise(error: OSError) -> None:
    raise error


def changed_file(recorded: Iterable[FileEntry], now: Iterable[FileEntry]) -> str | None:
    """The first file that is new or differs from what was recorded; None if none does."""
    before = {name: (size, mtime) for name, size, mtime in recorded}
    for name, size, mtime in now:
        if before.get(name) != (size, mtime):
            return name
    return None


def changed_line(label: str, file: str) -> str:
    """What the user is told, with what to do (escaped for a terminal where it is shown)."""
    return (
        f"{label} changed after scoring ({file} is not the file its answers came from): its "
        "scores are the old content's; give the new content a new label (a new `name` for its "
        f"[[model]] table, or another store), or delete {label}'s answers, judgments and "
        'responses from the store (no mtbench command does that: see README "Watch mode") '
        "and run again"
    )


def _changed(model: ModelConfig, recorded: Mapping[str, Recorded]) -> str | None:
    """Why `model`'s checkpoint is not what its stored answers came from, or None."""
    record = recorded.get(model.name)
    if model.checkpoint is None or record is None or not record.answered:
        return None
    now = checkpoint_files(Path(model.checkpoint))
    file = None if now is None else changed_file(record.files, now)
    return None if file is None else changed_line(model.name, file)


def changed_after_scoring(store: Path, models: Iterable[ModelConfig]) -> dict[str, str]:
    """Label -> what to tell the user, for each of `models` (checkpoints) whose files changed
    since the answers stored under its label were generated; read between runs."""
    wanted = [model for model in models if model.checkpoint is not None]
    recorded = read_recorded(store) if wanted else {}
    changed = {model.name: _changed(model, recorded) for model in wanted}
    return {label: line for label, line in changed.items() if line is not None}


async def check_contents(store: Store, models: Iterable[ModelConfig], run_id: int) -> None:
    """Before a run serves `models`: a warning line for each checkpoint changed after scoring
    (the run goes on, answering from the cache), and a record of each checkpoint's files where
    none vouches for its stored answers yet."""
    recorded = await recorded_files(store)
    for model in models:
        if model.checkpoint is None:
            continue
        line = _changed(model, recorded)
        if line is not None:
            log.warning(line)
            continue
        record = recorded.get(model.name)
        if record is None or not record.answered:
            files = checkpoint_files(Path(model.checkpoint))
            if files is not None:
                await record_files(store, model.name, model.checkpoint, files, run_id)
