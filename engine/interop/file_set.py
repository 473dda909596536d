"""Write a set of export files all or nothing, never over a file the user did not agree to lose.

An export replaces files other tools read (FastChat's `show_result.py`, a colleague's scripts), so
it must not clobber them silently nor leave a half-written set behind: existing files are replaced
only with `--force`; every file is first written to a temporary file in its own folder and synced,
and only once all of them are written are they renamed into place (a rename within a folder is
atomic). A destination that cannot be written (read-only, a file where a folder should be) is one
line naming the path, and nothing is left behind: no temporary file, no folder created.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.atomic_files import write_temporary
from engine.errors import InputError

__all__ = ["PlannedFile", "check_destination", "other_files", "write_all"]


@dataclass(frozen=True, slots=True)
class PlannedFile:
    path: Path
    content: bytes


def check_destination(dest: Path, planned: Sequence[PlannedFile], *, force: bool) -> list[Path]:
    """Refuse a destination that is a file, or files to replace without `force`; the files
    this export will replace otherwise."""
    for folder in sorted({dest, *(file.path.parent for file in planned)}):
        if folder.exists() and not folder.is_dir():
            raise InputError(
                f"{folder}: is a file, not a folder; export into a directory "
                "(FastChat's layout needs model_answer/ and model_judgment/ folders there)"
            )
    for file in planned:
        if file.path.is_dir():
            raise InputError(
                f"{file.path}: is a folder where this export writes a file; move it away or "
                "export elsewhere"
            )
    existing = [file.path for file in planned if os.path.lexists(file.path)]
    if existing and not force:
        others = f" (and {len(existing) - 1} more files)" if len(existing) > 1 else ""
        raise InputError(
            f"{existing[0]}: already exists{others}; pass --force to replace what this export "
            "writes, or export into an empty directory"
        )
    return existing


def write_all(planned: Sequence[PlannedFile]) -> None:
    """Write every file, or (on any OS error) none: one line naming the path that failed."""
    created: list[Path] = []
    temporaries: list[tuple[Path, Path]] = []
    current = planned[0].path if planned else Path()
    try:
        for file in planned:
            current = file.path
            created += _make_folders(file.path.parent)
            temporaries.append((write_temporary(file.path, file.content), file.path))
        for temporary, path in temporaries:
            current = path
            os.replace(temporary, path)
    except OSError as error:
        for temporary, _ in temporaries:
            temporary.unlink(missing_ok=True)
        for folder in reversed(created):
            _remove_if_empty(folder)
        reason = error.strerror or str(error)
        raise InputError(
            f"{current}: cannot write the export ({reason}); choose a directory you can write to"
        ) from None


def other_files(planned: Sequence[PlannedFile]) -> list[Path]:
    """`.jsonl` files in the written folders that this export did not write: an import of the
    folder would take them in too, so the user is told."""
    ours = {file.path for file in planned}
    folders = sorted({file.path.parent for file in planned})
    return [
        path for folder in folders for path in sorted(folder.glob("*.jsonl")) if path not in ours
    ]


def _make_folders(folder: Path) -> list[Path]:
    """Create `folder` and missing parents; the ones created, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
    return list(reversed(missing))


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()
