"""Each judge of a command, set up: its reference answers, the models it judges, its checks.

A run may judge with several judges at once (`[[judge]]` tables), each with its own reference set,
mode and baseline, over one shared generation. This module reads each distinct reference set once,
works out per judge which models it judges (a pairwise-baseline judge adds its baseline), and runs
the preflight checks for every judge, so a problem with any one of them stops the command before
anything is sent. Out comes one `JudgeSetup` per judge: the graph gives each judge its own jobs
(each answered turn releases every judge's jobs on it), and the runner each its own endpoint pool.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from engine.bench.data import REFERENCE_MODEL, BenchData, load_bench, load_reference_set
from engine.config import JudgeConfig, RunConfig
from engine.errors import ConfigError
from engine.run.preflight import preflight
from engine.run.scope import Command, Scope, judged_models, selected_questions

__all__ = ["JudgeSetup", "judge_setups", "load_benches", "preflight_judges"]


@dataclass(frozen=True, slots=True)
class JudgeSetup:
    """One judge of a command: its config, the bench with its own reference answers (the
    command's questions), and the models it judges."""

    judge: JudgeConfig
    bench: BenchData
    judged: tuple[str, ...]


def load_benches(
    data_dir: Path, config: RunConfig, judges: Sequence[JudgeConfig]
) -> tuple[BenchData, tuple[BenchData, ...]]:
    """The command's bench (its questions; judge prompts when judging), and per judge the same
    bench holding that judge's reference set. Blocking file reads: run it off the event loop."""
    first = judges[0].reference if judges else REFERENCE_MODEL
    with _naming(config, judges[0] if judges else None):
        loaded = load_bench(data_dir, config.bench, need_judging=bool(judges), reference=first)
    bench = selected_questions(config, loaded)
    by_set = {first: bench}
    for judge in judges:
        if judge.reference not in by_set:
            with _naming(config, judge):
                references = load_reference_set(data_dir, config.bench, judge.reference)
            by_set[judge.reference] = replace(
                bench, references=references, reference_set=judge.reference
            )
    return bench, tuple(by_set[judge.reference] for judge in judges)


@contextmanager
def _naming(config: RunConfig, judge: JudgeConfig | None) -> Iterator[None]:
    """A missing reference set named with the config and the judge table that asked for it
    (with several judges, which one), as every other config error is."""
    try:
        yield
    except ConfigError as exc:
        if judge is None or not str(exc).startswith("key 'reference'"):
            raise
        raise ConfigError(f"{config.source}: {judge.table()} {exc}") from None


def judge_setups(
    config: RunConfig, scope: Scope, command: Command, benches: Sequence[BenchData]
) -> tuple[JudgeSetup, ...]:
    """Every judge of the command with its bench (`load_benches`) and the models it judges."""
    return tuple(
        JudgeSetup(judge, bench, tuple(judged_models(config, scope, command, judge)))
        for judge, bench in zip(scope.judges, benches, strict=True)
    )


def preflight_judges(
    config: RunConfig, bench: BenchData, scope: Scope, setups: Sequence[JudgeSetup]
) -> tuple[str, ...]:
    """The preflight checks of generation and of every judge; each note once."""
    notes = list(preflight(config, bench, generate=scope.generate, judge=None, judged=()))
    for setup in setups:
        judge, judged = setup.judge, setup.judged
        checked = preflight(config, setup.bench, generate=(), judge=judge, judged=judged)
        notes.extend(note for note in checked if note not in notes)
    return tuple(notes)
