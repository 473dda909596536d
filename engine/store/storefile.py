"""The store's file on disk: checks before anything is created, the writer lock, SQLite's errors.

A store path that cannot work (its parent is a file, a directory we may not write, a file we may
not read or write, a device or pipe, a file that is not an mtbench store or is from a newer engine)
is refused with one line before a single file is created: no store, no -wal/-shm, no lock. The
writer lock follows symlinks, and a store with hard links is refused for writing, so two spellings
of one store cannot both write it, and one on a network filesystem is refused for writing
(`engine.store.netfs`). And this is the one place where
sqlite3's and the OS's errors about the store become the engine's: `StoreError` (exit 2) while
opening, `StoreWriteError` (exit 3, with what to do) once a run is going.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import stat
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote

from engine.errors import StoreBusy, StoreError, StoreWriteError
from engine.store.netfs import check_local_filesystem
from engine.store.schema import SCHEMA_VERSION

__all__ = [
    "JOURNAL_SUFFIXES",
    "SQLITE_MAGIC",
    "SchemaInfo",
    "WriterLock",
    "check_schema",
    "check_store_path",
    "inspect_schema",
    "is_data_error",
    "lock_path",
    "peek",
    "store_write_error",
    "take_writer_lock",
]

SQLITE_MAGIC = b"SQLite format 3\x00"
JOURNAL_SUFFIXES = ("-wal", "-shm", "-journal")  # the files SQLite keeps beside a database
_WRITABLE_DIR = os.W_OK | os.X_OK
# What a value SQLite cannot hold raises while binding or inserting it: a wrong type, an integer
# beyond 64 bits, a string with lone surrogates, a constraint. Not a broken store.
_DATA_ERRORS = (
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    OverflowError,
    TypeError,
    ValueError,
)


def is_data_error(error: BaseException) -> bool:
    """True when `error` is about the values written, not about the store."""
    return isinstance(error, _DATA_ERRORS)


def lock_path(path: Path) -> Path:
    """The advisory lock beside the real file: a symlink and its target share one lock."""
    real = path.resolve()
    return real.with_name(real.name + ".lock")


def check_store_path(path: Path, *, write: bool) -> bool:
    """Refuse a store path that cannot work, with one line; True if the store file exists."""
    if "\x00" in str(path):  # given from Python (engine.scores): pathlib raises a ValueError
        raise StoreError(f"{str(path)!r}: has a NUL character, which no file name can hold")
    try:
        path.resolve()
    except RuntimeError:  # pathlib before Python 3.13; from 3.13 on, stat says ELOOP below
        raise StoreError(f"{path}: a loop of symbolic links; point `store` at a file") from None
    try:
        is_dir = path.is_dir()
        exists = path.exists()
    except OSError as exc:  # e.g. permission denied on a parent
        raise StoreError(f"{path}: cannot reach the store ({exc.strerror})") from None
    if not exists:
        _check_creatable(path, write=write)
        check_local_filesystem(path)  # only a writer gets here
        return False
    if is_dir:
        raise StoreError(f"{path}: is a directory; give the path of a SQLite file")
    _check_regular(path)
    _check_readable(path)
    if write:
        _check_writable(path)
        _check_one_name(path)
        check_local_filesystem(path)
    return True


def _check_regular(path: Path) -> None:
    """A device, pipe or socket is no store: /dev/null would swallow every answer paid for, and
    opening a pipe waits for a writer forever (deaf to Ctrl-C, in a system call)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise StoreError(f"{path}: cannot reach the store ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise StoreError(
            f"{path}: not a regular file (a device, pipe or socket); point `store` at a SQLite "
            "file or a new path"
        )


def _check_one_name(path: Path) -> None:
    """A store with hard links has two names, and SQLite keeps its journal beside the name it is
    opened by, as the writer lock is: runs through two names would both write it (paying twice)
    with two journals (corrupting it). A symlink is fine: both follow it to the one real name."""
    links = path.stat().st_nlink
    if links > 1:
        raise StoreError(
            f"{path}: the store file has {links} names (hard links), and runs through two names "
            "would write it at once with two journals; keep one name (a symlink is fine) or "
            "copy the file (cp) to a store of its own"
        )


def _check_creatable(path: Path, *, write: bool) -> None:
    ancestor = path.resolve().parent  # a symlink to a store yet to be made: its target's place
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise StoreError(
            f"{path}: {ancestor} is a file, not a directory; point `store` at a path in a directory"
        )
    if not write:
        raise StoreError(f"{path}: no store there; run `mtbench generate` or `import` first")
    if not os.access(ancestor, _WRITABLE_DIR):
        raise StoreError(
            f"{path}: cannot create the store: directory {ancestor} is not writable; "
            "make it writable or choose another path for `store`"
        )


def _check_readable(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(
            f"{path}: cannot read the store ({exc.strerror}); make it readable "
            "(chmod u+r, or run as its owner) or choose another store"
        ) from None
    if head and head != SQLITE_MAGIC:
        raise StoreError(
            f"{path}: not a SQLite database; point `store` at an mtbench store or a new file"
        )


def _check_writable(path: Path) -> None:
    if not os.access(path, os.W_OK):
        raise StoreError(
            f"{path}: the store file is read-only; make it writable (chmod u+w, or run as its "
            "owner) or choose another store"
        )
    directory = path.resolve().parent
    if not os.access(directory, _WRITABLE_DIR):
        raise StoreError(
            f"{path}: directory {directory} is not writable, and a run keeps its journal and lock "
            "files beside the store; make it writable or move the store"
        )


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    version: int
    tables: tuple[str, ...]


def peek(path: Path) -> sqlite3.Connection:
    """A read-only connection that creates nothing beside the store.

    A normal read-only connection creates the -wal and -shm files of a WAL database. Without a
    -wal file everything is in the main file, which `immutable` reads as it is; with one (a run
    is writing, or one crashed) those files exist already.
    """
    real = path.resolve()  # SQLite keeps the journal beside the file a symlink names
    wal = real.with_name(real.name + "-wal")
    mode = "mode=ro" if wal.exists() else "immutable=1"
    return sqlite3.connect(f"file:{quote(str(path))}?{mode}", uri=True)


def inspect_schema(path: Path) -> SchemaInfo:
    """The store's schema version and tables, read without creating anything beside it."""
    try:
        with closing(peek(path)) as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            rows = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: not a usable SQLite database ({exc})") from None
    return SchemaInfo(version, tuple(name for (name,) in rows))


def check_schema(path: Path, info: SchemaInfo, *, write: bool) -> None:
    if info.version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: store schema version {info.version} is newer than this engine's "
            f"({SCHEMA_VERSION}); upgrade mtbench-engine"
        )
    if info.version == 0 and info.tables:
        raise StoreError(f"{path}: a SQLite database but not an mtbench store; use another path")
    if not write and info.version < SCHEMA_VERSION:
        raise StoreError(
            f"{path}: store is from an older engine; run any write command to upgrade it"
        )


class WriterLock:
    """The held advisory lock; `discard` also removes a lock file this process created."""

    def __init__(self, path: Path, handle: IO[str], created: bool) -> None:
        self.path = path
        self._handle = handle
        self._created = created

    def release(self) -> None:
        self._handle.close()

    def discard(self) -> None:
        # Unlinked while still held: a process that opened the old file finds, once it holds
        # the lock, that it is no longer the file at the path, and starts over.
        if self._created:
            self.path.unlink(missing_ok=True)
        self.release()


def take_writer_lock(store: Path) -> WriterLock:
    path = lock_path(store)
    created = not path.exists()
    while True:
        try:
            handle = path.open("a+")
        except OSError as exc:
            raise StoreError(
                f"{store}: cannot create the lock file {path} ({exc.strerror}); make the "
                "directory writable or choose another store"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreBusy(store, holder) from None
        if _is_current(path, handle):
            break
        handle.close()
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return WriterLock(path, handle, created)


def _is_current(path: Path, handle: IO[str]) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def store_write_error(path: Path, error: BaseException) -> StoreWriteError:
    """One line for a store that failed during a run: the store, SQLite's words, what to do."""
    detail = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return StoreWriteError(
        f"{path}: the store could not be written ({detail}); {_advice(path, error)}, then rerun "
        "the same command: everything committed is kept and the run resumes"
    )


def _advice(path: Path, error: BaseException) -> str:
    directory = path.resolve().parent
    kind = _error_kind(error)
    if kind == "full":
        return f"free space on {directory}"
    if kind == "readonly":
        return f"make {path} and {directory} writable"
    if kind == "busy":
        return "another program holds a lock on the store: close it"
    if kind == "corrupt":
        return f"the file is damaged: check it with `sqlite3 {path} 'PRAGMA integrity_check'`"
    return f"check that {directory} has free space and its disk works"


def _error_kind(error: BaseException) -> str:
    if isinstance(error, OSError):
        return {
            errno.ENOSPC: "full",
            errno.EDQUOT: "full",
            errno.EROFS: "readonly",
            errno.EACCES: "readonly",
            errno.EPERM: "readonly",
        }.get(error.errno or 0, "io")
    name = getattr(error, "sqlite_errorname", "") or ""
    message = str(error).lower()
    if name.startswith("SQLITE_FULL") or "disk is full" in message:
        return "full"
    if name.startswith("SQLITE_READONLY") or "readonly" in message:
        return "readonly"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in message:
        return "busy"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in message:
        return "corrupt"
    return "io"
