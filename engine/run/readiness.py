"""Is a checkpoint complete? Its marker exists and its files have stopped changing.

A training job writes a checkpoint over seconds or minutes: shards appear one by one, grow, and a
last small file (`config.json`, an index, a `STABLE` file) says it is done. Serving it before then
fails, or worse, scores half a model. So the watcher (`engine.run.watch`) takes a match only once
its sweep's `ready_marker` exists and nothing in it has changed for `settle` seconds: the files'
names, sizes, modification and change times (a symbolic link's: its target's, which is what grows)
are the same as they were `settle` seconds ago, or the newest change time (which no copy tool can
set back, unlike a modification time) is that old. The second rule lets a restarted watcher take
checkpoints written long ago at once: it holds for what its first look finds, and only until the
watcher sees such a checkpoint change, since a wall clock that jumps forward (NTP, a VM resumed),
or a file server's clock behind ours, would make a checkpoint still being written look old,
while the monotonic clock does not jump.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.config_sweeps import CheckpointSweep

__all__ = ["ReadinessTracker"]

Fingerprint = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class _Seen:
    fingerprint: Fingerprint
    since: float  # monotonic time it was first seen like this
    changed: bool = False  # seen changing: its quiet time is the watcher's own clock's alone


class ReadinessTracker:
    """Remembers what each checkpoint looked like, to tell when it stopped changing."""

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._monotonic, self._wall = monotonic, wall
        self._seen: dict[str, _Seen] = {}
        self._settling: set[str] = set()  # marker there, waiting for the files to stay unchanged
        self._started = False  # the first look is over: what appears now is watched from birth

    def waiting_for(self, sweep: CheckpointSweep, label: str, path: Path) -> str | None:
        """None if the checkpoint is complete, else what it is waiting for, in a few words."""
        self._settling.discard(label)
        try:
            marker = sweep.marker_path(label, path)
            if marker is not None and not marker.exists():
                return f"no {marker.name} yet"
        except OSError as error:  # a checkpoint this user may not read (yet): never taken
            self._seen.pop(label, None)
            return f"cannot read it: {error.strerror or error}"
        try:
            fingerprint, newest_change = _fingerprint(path)
        except OSError as error:  # a file removed while we looked: it is still changing
            self._seen.pop(label, None)
            return f"changing ({error.strerror or error})"
        now = self._monotonic()
        seen = self._seen.get(label)
        if seen is None:
            seen = self._seen[label] = _Seen(fingerprint, now, changed=self._started)
        elif seen.fingerprint != fingerprint:
            seen = self._seen[label] = _Seen(fingerprint, now, changed=True)
        quiet = now - seen.since
        if not seen.changed:  # as first seen: maybe written long ago, as its change time says
            quiet = max(quiet, self._wall() - newest_change)
        if quiet >= sweep.settle:
            return None
        self._settling.add(label)
        return f"settling, {math.ceil(sweep.settle - quiet)} s"

    def started(self) -> None:
        """The watcher's first look is over. A checkpoint it finds from now on was written while
        it watched: its quiet time is the watcher's own clock's, never the files' change times,
        which a trainer on another node stamps with its file server's clock (minutes off, on
        NFS, would make a checkpoint being written look old at first sight)."""
        self._started = True

    def settling(self, label: str) -> bool:
        """Whether the last look found the checkpoint whole but for its files' quiet time: it
        will be complete within `settle` seconds, or it is still being written."""
        return label in self._settling

    def forget(self, label: str) -> None:
        self._seen.pop(label, None)
        self._settling.discard(label)


def _fingerprint(path: Path) -> tuple[Fingerprint, float]:
    """(name, size, mtime, ctime) of every file and directory under `path`, and the newest
    change time among them."""
    entries = [_entry(path, ".")]
    if path.is_dir():
        for folder, dirs, files in os.walk(path, onerror=_raise):
            for name in (*dirs, *files):
                full = os.path.join(folder, name)
                entries.append(_entry(Path(full), os.path.relpath(full, path)))
    entries.sort()
    return tuple(entries), max(entry[3] for entry in entries) / 1e9


def _entry(path: Path, name: str) -> tuple[str, int, int, int]:
    """A file as it is: a symbolic link (a shard in a Hugging Face snapshot points into `blobs/`)
    by its target, which is what grows while it is written; a dangling link by itself."""
    try:
        status = path.stat()
    except OSError:
        if not path.is_symlink():
            raise
        status = path.lstat()  # dangling, or a loop of links
    return name, status.st_size, status.st_mtime_ns, status.st_ctime_ns


def _raise(error: OSError) -> None:
    raise error
