"""Write a file so that a reader sees the old content or the new one, never half of either.

Data files, HTML reports and FastChat exports are read by other programs, possibly while they are
being written, and a crash or a full disk mid-write must not leave a torn file in their place. So
the content goes to a temporary file beside the target (same folder, so same file system), is
synced to disk, made readable like a normally created file, and only then renamed over the target
(a rename within a folder is atomic). A write that fails removes its temporary file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically", "write_temporary"]


def write_atomically(path: Path, content: bytes) -> None:
    """Replace `path` (creating its folder if needed) with `content`, all at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = write_temporary(path, content)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_temporary(path: Path, content: bytes) -> Path:
    """`content` in a synced temporary file beside `path`, for the caller to rename over it."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the file from its other readers
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary
