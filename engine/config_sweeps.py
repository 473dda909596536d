"""Checkpoint sweeps as configured: the glob, the model each match becomes, when a match is ready.

A `[[model]]` with `checkpoints` is a sweep: one model per matching file or directory. A plain
run expands the glob once, when the config is loaded (`engine.config`); `mtbench run --watch`
keeps the sweep itself and expands it again at every poll (`engine.run.watch`), taking a match
only once it is complete: its `ready_marker` exists and its files have stopped changing for
`settle` seconds. The sweep keys (`ready_marker`, `settle`, `max_checkpoint_attempts`) are
checked here, with the same one-line refusals as every other key.
"""

from __future__ import annotations

import glob
import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from engine.config_schema import MAX_ATTEMPTS, MAX_SECONDS, KeySpec
from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.config import ModelConfig

__all__ = [
    "DEFAULT_CHECKPOINT_ATTEMPTS",
    "DEFAULT_SETTLE",
    "SWEEP_KEYS",
    "CheckpointSweep",
    "checkpoint_matches",
]

DEFAULT_SETTLE = 60.0  # seconds a checkpoint's files must stay unchanged before it is scored
DEFAULT_CHECKPOINT_ATTEMPTS = 3


def _marker_problem(marker: str) -> str | None:
    if "\x00" in marker:
        return "it contains a NUL character, which no file name can hold"
    path = PurePosixPath(marker)
    if path.is_absolute() or ".." in path.parts:
        return "give a path inside the checkpoint (or beside a checkpoint file), e.g. config.json"
    return None


def _is_marker(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _is_settle(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 <= value <= MAX_SECONDS
    )


def _is_attempts(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ATTEMPTS


# Keys a [[model]] takes only with `checkpoints` (engine.config_tables refuses them without).
SWEEP_KEYS: dict[str, KeySpec] = {
    "ready_marker": KeySpec(
        "a file name such as config.json ({name} is the checkpoint's label)",
        _is_marker,
        _marker_problem,
    ),
    "settle": KeySpec(f"a number of seconds from 0 to {MAX_SECONDS:.0f}", _is_settle),
    "max_checkpoint_attempts": KeySpec(f"an integer from 1 to {MAX_ATTEMPTS}", _is_attempts),
}


@dataclass(frozen=True, slots=True)
class CheckpointSweep:
    """One `[[model]]` with `checkpoints`: what every match becomes, and when it is ready."""

    where: str  # the table, as messages name it
    pattern: str  # the glob, absolute
    template: ModelConfig  # every checkpoint's settings; name, model and checkpoint set per match
    prefix: str  # the table's `name` and a dash, before each label
    model: str | None  # the table's `model` string, else each checkpoint's label
    ready_marker: str | None = None
    settle: float = DEFAULT_SETTLE
    max_attempts: int = DEFAULT_CHECKPOINT_ATTEMPTS

    def matches(self) -> list[tuple[str, Path]]:
        """(label, path) of every match now, in natural order; none is not an error here, two
        with one label are (see `checkpoint_matches`)."""
        found, clashes = _labelled_matches(self.pattern, keep=self._not_a_marker)
        _refuse_clashes(self.pattern, clashes)
        return [(self.prefix + label, path) for label, path in found]

    def watched_matches(self) -> tuple[list[tuple[str, Path]], dict[str, str]]:
        """(label, path) of every match now, in natural order, and the labels two matches share,
        each with why it cannot run yet: a watcher sees a trainer's `step-100.tmp` beside its
        `step-100.pt` for a moment, and must wait, not stop. A match that is its own marker
        (`step-100.done` beside `step-100.pt`, with `ready_marker = "{name}.done"`) is none."""
        found, clashes = _labelled_matches(self.pattern, keep=self._not_a_marker)
        checkpoints = [(self.prefix + label, path) for label, path in found]
        waiting = {
            self.prefix + label: f"{first.name} and {second.name} would share its label"
            for label, (first, second) in clashes.items()
        }
        return checkpoints, waiting

    def _not_a_marker(self, label: str, path: Path) -> bool:
        try:
            return self.marker_path(self.prefix + label, path) != path
        except OSError:  # cannot tell: a checkpoint, which waits saying why (engine.run.readiness)
            return True

    def expand(self) -> list[ModelConfig]:
        """A model per match, for a run that takes the sweep as it is now (not `--watch`)."""
        try:
            found = self.matches()
        except ConfigError as error:
            raise ConfigError(f"{self.where} key 'checkpoints': {error}") from None
        if not found:
            raise ConfigError(
                f"{self.where} key 'checkpoints': checkpoints {self.pattern!r}: "
                f"{self.folder_problem() or 'no file or directory matches'}"
            )
        return [self.model_for(label, path) for label, path in found]

    def folder_problem(self) -> str | None:
        """Why the glob can never match: the folder before its first wildcard is there but this
        user may not list it (a watcher would wait for nothing all night). None otherwise; a
        folder not there yet is fine, a trainer makes it later."""
        folder = _fixed_folder(self.pattern)
        if os.path.isdir(folder) and not os.access(folder, os.R_OK | os.X_OK):
            return f"cannot list {folder} (permission denied); make it readable to this user"
        return None

    def model_for(self, label: str, path: Path) -> ModelConfig:
        return replace(self.template, name=label, model=self.model or label, checkpoint=str(path))

    def marker_path(self, label: str, path: Path) -> Path | None:
        """The file whose presence says the checkpoint is whole: inside a checkpoint directory,
        beside a checkpoint file; `{name}` is its label (without the table's prefix)."""
        if self.ready_marker is None:
            return None
        marker = self.ready_marker.replace("{name}", label.removeprefix(self.prefix))
        return (path if path.is_dir() else path.parent) / marker


def checkpoint_matches(pattern: str) -> list[tuple[str, Path]]:
    """(label, path) for every file or directory the glob matches, in natural order.

    The label is the file's stem or the directory's name, so `ckpt/step-1000` runs as
    `step-1000`; natural order puts step-200 before step-1000. Two matches with the same label
    would store their answers under one model name, so that is an error.
    """
    found, clashes = _labelled_matches(pattern)
    _refuse_clashes(pattern, clashes)
    return found


def _refuse_clashes(pattern: str, clashes: dict[str, tuple[Path, Path]]) -> None:
    for label, (first, second) in clashes.items():
        raise ConfigError(
            f"checkpoints {pattern!r}: {first} and {second} would both be labelled {label!r}; "
            "use a pattern that tells them apart"
        )


def _labelled_matches(
    pattern: str, keep: Callable[[str, Path], bool] = lambda label, path: True
) -> tuple[list[tuple[str, Path]], dict[str, tuple[Path, Path]]]:
    """(label, path) for every match `keep` keeps, in natural order, the first of each label
    only; and the labels that more than one match would have, each with two of those matches."""
    matches = sorted(glob.glob(os.path.expanduser(pattern)), key=_natural_key)
    seen: dict[str, Path] = {}
    clashes: dict[str, tuple[Path, Path]] = {}
    for match in matches:
        path = Path(match)
        label = path.name if os.path.isdir(path) else path.stem  # False where it may not look
        if not keep(label, path):
            continue
        if label not in seen:
            seen[label] = path
        else:
            clashes.setdefault(label, (seen[label], path))
    return list(seen.items()), clashes


def _fixed_folder(pattern: str) -> Path:
    """The folder a glob lists: its path up to the part with the first wildcard."""
    parts = Path(os.path.expanduser(pattern)).parts
    fixed = list(itertools.takewhile(lambda part: not glob.has_magic(part), parts))
    return Path(*fixed[: len(parts) - 1]) if fixed else Path(".")


def _natural_key(text: str) -> list[tuple[int, int, str]]:
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)
    ]
