"""The judges of a run config: one `[judge]` table, or several `[[judge]]` tables.

One judge's grade is noisy and biased toward its own family; a run may therefore grade every
answer with several judges. Each `[[judge]]` table takes every key a `[judge]` table takes and
becomes a judge of its own: its own endpoint, limits, prices, mode, samples and reference set,
and its own label, under which its judgments are stored. The label is what tells judges apart in
the store, so with several judges each must give `name`, and no two the same. Writing both forms
in one file is a TOML error the parser words as "cannot overwrite a value": this module says
which two tables clash. Judges given from Python (`engine.evaluate(judge=...)`) go through the
same checks, and a judge's name picks one of a config's judges (`mtbench judge --judge NAME`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from engine.config_schema import KeySpec
from engine.config_tables import endpoint_from_table, shown
from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.config import JudgeConfig

__all__ = ["both_judge_forms", "chosen_judges", "judges_from_toml", "unique_judge_names"]

_ONE_TABLE = re.compile(r"^[ \t]*\[[ \t]*judge[ \t]*\][ \t]*(#.*)?$", re.MULTILINE)
_ARRAY_TABLE = re.compile(r"^[ \t]*\[\[[ \t]*judge[ \t]*\]\][ \t]*(#.*)?$", re.MULTILINE)


def both_judge_forms(source: str, text: str) -> str | None:
    """The line for a config holding both a `[judge]` table and `[[judge]]` tables, or None."""
    if _ONE_TABLE.search(text) is None or _ARRAY_TABLE.search(text) is None:
        return None
    return (
        f"{source}: both a [judge] table and [[judge]] tables; give one judge as [judge], or "
        "every judge as a [[judge]] table of its own"
    )


def judges_from_toml(
    source: str, value: Any, cls: type[JudgeConfig], keys: dict[str, KeySpec]
) -> tuple[JudgeConfig, ...]:
    """The judges of a config's `judge` key: none, one `[judge]` table or `[[judge]]` tables."""
    if value is None:
        return ()
    if isinstance(value, dict):
        return (endpoint_from_table(f"{source}: [judge]", value, cls, keys),)
    judges: list[JudgeConfig] = []
    for number, table in enumerate(value, 1):
        where = f"{source}: [[judge]] #{number}"
        if len(value) > 1 and isinstance(table, dict) and "name" not in table:
            raise ConfigError(
                f"{where} key 'name' is missing; with several judges each needs a name of its "
                "own, the label its judgments are stored under"
            )
        judge = endpoint_from_table(where, table, cls, keys)
        judges.append(replace(judge, table_name=f"[[judge]] {judge.name!r}"))
    unique_judge_names(source, judges, "[[judge]]")
    return tuple(judges)


def unique_judge_names(source: str, judges: Sequence[JudgeConfig], kind: str) -> None:
    """No two judges share a name: the name is the label their judgments are stored under."""
    first: dict[str, int] = {}
    for number, judge in enumerate(judges, 1):
        earlier = first.setdefault(judge.name, number)
        if earlier != number:
            raise ConfigError(
                f"{source}: {kind} #{number} key 'name' = {shown(judge.name)}: {kind} #{earlier} "
                "has that name already; give every judge a name of its own"
            )


def chosen_judges(
    source: str, given: object, configured: tuple[JudgeConfig, ...], cls: type[JudgeConfig]
) -> tuple[JudgeConfig, ...]:
    """The judges a command runs with: the config's (`given` None), the one of them named
    `given` (a str), or the `engine.Judge`s given (one, or an iterable of them)."""
    if given is None:
        return configured
    if isinstance(given, str):
        return (_named(source, given, configured),)
    if isinstance(given, cls):
        return (given,)
    if isinstance(given, Iterable) and not isinstance(given, (bytes, dict)):
        judges = tuple(given)
        for number, judge in enumerate(judges, 1):
            if not isinstance(judge, cls):
                raise ConfigError(
                    f"{source}: judge #{number} = {shown(judge)}: expected an engine.Judge"
                )
        unique_judge_names(source, judges, "judge")
        return judges
    raise ConfigError(
        f"{source}: judge = {shown(given)}: expected an engine.Judge, a list of them, or the "
        "name of one of the config's judges"
    )


def _named(source: str, name: str, configured: tuple[JudgeConfig, ...]) -> JudgeConfig:
    for judge in configured:
        if judge.name == name:
            return judge
    names = ", ".join(repr(judge.name) for judge in configured)
    has = f"the config's judges: {names}" if configured else "the config has no judge"
    raise ConfigError(f"{source}: no judge named {shown(name)}; {has}")
