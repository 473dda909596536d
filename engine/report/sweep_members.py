"""Which stored models form a sweep, and at which steps: from a run config, or from their labels.

With a config (`show --sweep -c FILE`), each `[[model]]` with `checkpoints` is one sweep, named by
its `name` (else its glob): the stored models whose labels the glob's last part matches, so a
checkpoint deleted since it was scored stays in the picture. The `[[model]]`s with an explicit
`step` form one more sweep, named after the config file. Only the models' tables are read (their
keys checked as `run` checks them): no API key needs to be set, no checkpoint needs to exist.
Without a config, every group of two or more stored labels that differ only in their last integer
(`step-100`, `step-200`) is a sweep (`engine.scoring.steps`).
"""

from __future__ import annotations

import fnmatch
import glob
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from engine.config import read_config_toml
from engine.config_schema import MODEL_KEYS, TOP_KEYS
from engine.config_tables import TableChecker
from engine.errors import ConfigError
from engine.scoring.steps import SweepMember, in_step_order, parse_step, sweeps_by_pattern

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass

__all__ = ["ConfiguredSweep", "Sweep", "configured_sweeps", "find_sweeps"]


@dataclass(frozen=True, slots=True)
class Sweep:
    name: str
    members: tuple[SweepMember, ...]  # in step order


@dataclass(frozen=True, slots=True)
class ConfiguredSweep:
    """A sweep as a config defines it: label patterns (a checkpoints glob), or explicit steps."""

    name: str
    patterns: tuple[str, ...] = ()
    explicit: tuple[SweepMember, ...] = ()

    def members(self, labels: Iterable[str]) -> tuple[SweepMember, ...]:
        found = {m.label: m for m in self.explicit}
        for label in labels:
            step = parse_step(label)
            if step is not None and any(fnmatch.fnmatchcase(label, p) for p in self.patterns):
                found.setdefault(label, SweepMember(label, step))
        return in_step_order(found.values())


def find_sweeps(labels: Sequence[str], configured: Sequence[ConfiguredSweep] | None) -> list[Sweep]:
    """The sweeps among the stored `labels` (every model with answers or judgments)."""
    if configured is None:
        return [Sweep(name, members) for name, members in sweeps_by_pattern(labels).items()]
    return [Sweep(sweep.name, sweep.members(labels)) for sweep in configured]


def configured_sweeps(path: PurePath) -> tuple[ConfiguredSweep, ...]:
    """The sweeps a run config defines; ConfigError (one line) for a config `run` would refuse."""
    raw = read_config_toml(Path(path))
    top = TableChecker(f"{path}: top-level", raw, TOP_KEYS)
    sweeps: list[ConfiguredSweep] = []
    explicit: list[SweepMember] = []
    for number, table in enumerate(top.get("model", []), start=1):
        where = f"{path}: [[model]] #{number}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        TableChecker(where, table, MODEL_KEYS)
        pattern = table.get("checkpoints")
        if pattern is not None:
            sweeps.append(_checkpoint_sweep(table, pattern))
        elif table.get("step") is not None:
            label = table.get("name") or table.get("model")
            if label is not None:
                explicit.append(SweepMember(str(label), table["step"]))
    if explicit:
        sweeps.append(ConfiguredSweep(PurePath(path).stem, explicit=in_step_order(explicit)))
    if not sweeps:
        raise ConfigError(
            f"{path}: no sweep in this config: give a [[model]] 'checkpoints' (a glob) or 'step'"
        )
    return tuple(sweeps)


def _checkpoint_sweep(table: dict[str, Any], pattern: str) -> ConfiguredSweep:
    # A checkpoint's label is its directory's name or its file's stem (config_tables), with the
    # table's name as prefix: taken literally (`run[7]` is no character class matching `run7`).
    prefix = glob.escape(f"{table['name']}-") if table.get("name") else ""
    last = PurePath(pattern).name
    patterns = {prefix + last, prefix + PurePath(last).stem}
    return ConfiguredSweep(str(table.get("name") or pattern), tuple(sorted(patterns)))
