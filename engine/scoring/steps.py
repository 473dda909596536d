"""A checkpoint's training step, read from its label, and labels grouped into sweeps.

Trainers name checkpoints after their step in many ways (`step-1200`, `checkpoint-1200`,
`iter_0001200`, `run7-ep2-step1200`); what they share is that the step is the label's last
integer. Two labels that differ only in that integer (`run7/step-200`, `run7/step-1000`) belong to
one sweep, whose name is the label with the step replaced by `*`, so `step-*` reads like the glob
that found the checkpoints; a number followed by a letter (`llama-2-7b-chat`) is a model's size,
so such labels form no sweep. Only ASCII digits make a step (`step-١٠٠` is no `step-100`), and
only one a signed 64-bit integer holds, what W&B, MLflow and JSON readers take (a longer run of
digits is a hash or an id, not a step). Pure functions: no store, no config.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "STEP_WILDCARD",
    "SweepMember",
    "in_step_order",
    "label_pattern",
    "parse_step",
    "sweeps_by_pattern",
]

STEP_WILDCARD = "*"
STEP_MAX = 2**63 - 1  # as the config's `step` key: what trackers and JSON readers take
_LAST_INTEGER = re.compile(r"([0-9]+)(?!.*[0-9])", re.DOTALL)


@dataclass(frozen=True, slots=True)
class SweepMember:
    """One checkpoint of a sweep: the label its answers are stored under, and its step."""

    label: str
    step: int


def _last_integer(label: str) -> re.Match[str] | None:
    """Where the step is: the last run of ASCII digits, if it is at most STEP_MAX."""
    found = _LAST_INTEGER.search(label)
    if found is None:
        return None
    digits = found.group(1).lstrip("0")
    # Compared as text first: int() refuses more than 4300 digits.
    if len(digits) > len(str(STEP_MAX)) or int(digits or "0") > STEP_MAX:
        return None
    return found


def parse_step(label: str) -> int | None:
    """The last integer in the label (`iter_0001200` -> 1200), or None when it has none."""
    found = _last_integer(label)
    return None if found is None else int(found.group(1))


def label_pattern(label: str) -> str | None:
    """The label with its step replaced by `*` (`run7-step-1200` -> `run7-step-*`), or None."""
    found = _last_integer(label)
    if found is None:
        return None
    return label[: found.start()] + STEP_WILDCARD + label[found.end() :]


def sweeps_by_pattern(
    labels: Iterable[str], *, smallest: int = 2
) -> dict[str, tuple[SweepMember, ...]]:
    """Labels grouped by `label_pattern`, each group in step order; groups smaller than
    `smallest` are left out (a lone `gpt-3.5-turbo` is not a sweep of one checkpoint)."""
    groups: dict[str, list[SweepMember]] = defaultdict(list)
    for label in labels:
        pattern, step = label_pattern(label), parse_step(label)
        if pattern is None or step is None or _size_like(pattern):
            continue
        groups[pattern].append(SweepMember(label, step))
    return {
        pattern: in_step_order(members)
        for pattern, members in sorted(groups.items())
        if len(members) >= smallest
    }


def _size_like(pattern: str) -> bool:
    """`Llama-2-*b-chat`: a number followed by a letter is a model size (7b, 135M), not a step."""
    after = pattern[pattern.index(STEP_WILDCARD) + 1 :][:1]
    return after.isalpha()


def in_step_order(members: Iterable[SweepMember]) -> tuple[SweepMember, ...]:
    """By step; two checkpoints at one step (two runs' `step-100`) by label."""
    return tuple(sorted(members, key=lambda m: (m.step, m.label)))
