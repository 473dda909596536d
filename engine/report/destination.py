"""Where the HTML report may be written, and writing it there without harm.

`-o` is a path the user typed, and a slip can name the store, its journal or lock, or another
SQLite database: a report written there would destroy every answer paid for, so such a path is
refused before anything is read. A file is replaced atomically (readers never see half a page); a
device, pipe or terminal is written into; a symlink keeps pointing where it did.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.atomic_files import write_atomically
from engine.errors import InputError
from engine.store.storefile import JOURNAL_SUFFIXES, SQLITE_MAGIC, lock_path

__all__ = ["refuse_output_over_a_store", "write_output"]


def refuse_output_over_a_store(out: Path, store: Path) -> None:
    """InputError when `out` is the store by any name, one of its companions, or a database."""
    try:
        if out.is_file() and store.exists() and os.path.samefile(out, store):
            raise InputError(f"{out}: is the store itself; give -o a path for the HTML file")
        real = store.resolve()
        journals = {real.with_name(real.name + suffix) for suffix in JOURNAL_SUFFIXES}
        companions = {*journals, lock_path(store)}
        if out.resolve() in companions:
            raise InputError(f"{out}: belongs to the store {store}; give -o another path")
        if out.is_file():
            with out.open("rb") as existing:
                head = existing.read(len(SQLITE_MAGIC))
            if head == SQLITE_MAGIC:
                raise InputError(
                    f"{out}: is a SQLite database, which the report would replace; "
                    "give -o another path"
                )
    except (OSError, RuntimeError):
        return  # writing (or opening the store) will say what is wrong with the path


def write_output(out: Path, payload: bytes) -> Path:
    """Replace a file atomically; write into a device, pipe or terminal where it is."""
    try:
        mode = out.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        with out.open("wb") as stream:
            stream.write(payload)
        return out
    write_atomically(out.resolve() if out.is_symlink() else out, payload)
    return out
