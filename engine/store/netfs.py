"""Refuse to write a store that lives on a network filesystem.

Cluster home and project directories are NFS, Lustre, GPFS, BeeGFS, CIFS...: exactly where a
Slurm sweep's config, and so its store, tends to be. The store runs in SQLite's WAL mode, whose
readers and writer coordinate through a shared-memory file (`-shm`) that only works between
processes of one host, and whose locks network filesystems implement loosely or not at all: a
store there can be corrupted silently, losing answers that were paid for. No journal mode is
known to be safe on all of them, so a store opened for writing is checked here, by the
filesystem's magic number (`statfs(2)` f_type), and refused with one line that says to put it on
a local disk. Only the servers need the cluster; the store stays with the engine.

`filesystem_type` is looked up at call time, so a test can stand in a network filesystem.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

from engine.errors import StoreError

__all__ = ["NETWORK_FILESYSTEMS", "check_local_filesystem", "filesystem_type"]

# statfs(2) f_type magic numbers (linux/magic.h and the filesystems' own sources).
NETWORK_FILESYSTEMS = {
    0x6969: "NFS",
    0x0BD00BD0: "Lustre",
    0xFF534D42: "CIFS",
    0xFE534D42: "SMB2",
    0x517B: "SMB",
    0x47504653: "GPFS (IBM Storage Scale)",
    0x19830326: "BeeGFS",
    0x00C36400: "CephFS",
    0x5346414F: "AFS",
    0x6B414653: "AFS",
    0x73757245: "Coda",
    0xAAD7AAEA: "PanFS",
}


class _StatFs(ctypes.Structure):
    # Only f_type, the first field, is read; the rest is room for the whole struct.
    _fields_ = (("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 256))


def filesystem_type(path: Path) -> int | None:
    """The statfs f_type of the filesystem holding `path`; None off Linux or when it fails."""
    if not sys.platform.startswith("linux"):
        return None
    result = _StatFs()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.statfs(os.fsencode(path), ctypes.byref(result)) != 0:
        return None
    return int(result.f_type) & 0xFFFFFFFF


def check_local_filesystem(path: Path) -> None:
    """A StoreError (one line) when the store at `path`, or the directory it would be made in,
    is on a network filesystem."""
    place = path.resolve()
    while not place.exists() and place != place.parent:
        place = place.parent
    kind = NETWORK_FILESYSTEMS.get(filesystem_type(place) or 0)
    if kind is None:
        return
    raise StoreError(
        f"{path}: the store is on a network filesystem ({kind}), where SQLite's write-ahead log "
        "is unsafe (it needs shared memory on one host) and a store can be silently corrupted; "
        "put `store` on a local disk of the machine that runs mtbench"
    )
