"""The `[panel]` table: which judges of the config are pooled into one panel, and how.

A panel names judges by their labels (`judges = ["a", "b", "c"]`), at least two and each once,
and says how their ratings are pooled (`aggregate = "mean"` or `"median"`; pairwise verdicts are
always pooled by majority, `engine.scoring.panel`). A label the config has no judge for is a typo
found at load, before anything is paid for, in one line naming the file, the key, the value and
the judges the config has. The same checks serve `mtbench show --panel`, whose labels are the
store's judges instead (`panel_problem`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from engine.config_schema import KeySpec
from engine.config_tables import TableChecker, shown
from engine.errors import ConfigError

__all__ = [
    "AGGREGATES",
    "DEFAULT_PANEL_NAME",
    "PANEL_KEYS",
    "Aggregate",
    "PanelConfig",
    "grading_of",
    "panel_from_table",
    "panel_problem",
]

Aggregate = Literal["mean", "median"]  # how a panel pools its members' ratings
AGGREGATES: tuple[Aggregate, ...] = get_args(Aggregate)
DEFAULT_PANEL_NAME = "panel"
MIN_MEMBERS = 2


@dataclass(frozen=True, slots=True)
class PanelConfig:
    """A panel of judges (by label) and how their ratings are pooled."""

    judges: tuple[str, ...]
    aggregate: Aggregate = "mean"
    name: str = DEFAULT_PANEL_NAME

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "judges": list(self.judges), "aggregate": self.aggregate}


def _is_label_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v != "" for v in value)


def panel_problem(judges: Sequence[str]) -> str | None:
    """Why these labels make no panel (too few, one twice), or None."""
    if len(judges) < MIN_MEMBERS:
        return f"a panel needs at least {MIN_MEMBERS} judges"
    repeated = sorted({label for label in judges if judges.count(label) > 1})
    if repeated:
        return f"judge {repeated[0]!r} is named twice; name each judge once"
    return None


PANEL_KEYS: dict[str, KeySpec] = {
    "judges": KeySpec(
        'a list of judge labels such as ["a", "b", "c"]',
        _is_label_list,
        lambda v: panel_problem(v),
    ),
    "aggregate": KeySpec(f"one of {', '.join(AGGREGATES)}", lambda v: v in AGGREGATES),
    "name": KeySpec("a non-empty string", lambda v: isinstance(v, str) and v != ""),
}


def panel_from_table(
    source: str, table: Any, known: Sequence[str], grading: Mapping[str, str] | None = None
) -> PanelConfig | None:
    """The `[panel]` of the config at `source` (None without one); `known` are the labels of the
    judges the config has, which every member must be, and `grading` says how each judges
    (`single`, `pairwise-all`, `pairwise-baseline against X`): members that judge differently
    could never be pooled, so such a panel is refused before anything is paid for."""
    if table is None:
        return None
    where = f"{source}: [panel]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {shown(table)}")
    check = TableChecker(where, table, PANEL_KEYS)
    judges = check.get("judges")
    if judges is None:
        raise ConfigError(f"{where} key 'judges' is missing; list the labels of the judges to pool")
    unknown = [label for label in judges if label not in known]
    if unknown:
        names = ", ".join(repr(label) for label in known) or "none"
        check.fail("judges", judges, f"no judge {unknown[0]!r} in this config (judges: {names})")
    mixed = _mixed_grading(judges, grading or {})
    if mixed is not None:
        check.fail("judges", judges, mixed)
    return PanelConfig(
        tuple(judges), check.get("aggregate", "mean"), check.get("name", DEFAULT_PANEL_NAME)
    )


def grading_of(mode: str, baseline: str) -> str:
    """How a judge of `mode` grades, as a panel's members must share it."""
    return f"pairwise-baseline against {baseline!r}" if mode == "pairwise-baseline" else mode


def _mixed_grading(judges: Sequence[str], grading: Mapping[str, str]) -> str | None:
    """Why members grading in different modes (or against different baselines) make no panel."""
    first = judges[0]
    for label in judges[1:]:
        if grading.get(label) != grading.get(first):
            return (
                f"judge {first!r} grades {grading.get(first)}, judge {label!r} "
                f"{grading.get(label)}; a panel pools judges that grade the same way"
            )
    return None
