"""What a command covers: the models it generates, the judges and what they judge, the questions.

`plan`, `generate`, `run` and `judge` read one config but do different parts of it; this module
turns (config, command) into that part, and refuses a command the config cannot serve (no models to
generate, no judge to judge with, no stored answers to judge, a question the bench does not have)
with one line naming the config, before anything is opened or sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, get_args

from engine.bench.data import BenchData
from engine.config import JudgeConfig, ModelConfig, RunConfig
from engine.errors import ConfigError, StoreError
from engine.run.graph import check_baseline
from engine.store.store import stored_models

__all__ = ["COMMANDS", "Command", "Scope", "command_scope", "judged_models", "selected_questions"]

Command = Literal["plan", "generate", "run", "judge"]
COMMANDS: tuple[Command, ...] = get_args(Command)


@dataclass(frozen=True, slots=True)
class Scope:
    """What a command does: which models it generates, which judges judge and what."""

    generate: tuple[ModelConfig, ...]
    judges: tuple[JudgeConfig, ...]
    judged_from_config: tuple[str, ...]
    keep_thinking: frozenset[str]  # models whose answers are shown with their inline thinking


def command_scope(config: RunConfig, command: Command) -> Scope:
    """`plan` covers what `run` would do, else `judge`, else `generate`, as the config allows."""
    models = config.models
    if command not in COMMANDS:
        raise ConfigError(f"no command {command!r}; use one of {', '.join(COMMANDS)}")
    if command in ("generate", "run") and not models:
        raise ConfigError(
            f"{config.source}: no [[model]] tables; `{command}` needs models to answer"
        )
    if command in ("run", "judge") and not config.judges:
        raise ConfigError(f"{config.source}: no [judge] table; `{command}` needs a judge")
    if command == "plan":
        command = "run" if config.judges and models else "judge" if config.judges else "generate"
    generate = models if command in ("generate", "run") else ()
    judges = config.judges if command in ("run", "judge") else ()
    kept = frozenset(m.name for m in models if m.keep_thinking)
    return Scope(generate, judges, tuple(m.name for m in models), kept)


def selected_questions(config: RunConfig, bench: BenchData) -> BenchData:
    """The config's `questions` subset of the bench, in the bench's order."""
    if config.questions is None:
        return bench
    unknown = sorted(set(config.questions) - set(bench.by_id))
    if unknown:
        raise ConfigError(
            f"{config.source}: top-level key 'questions': no question {unknown[0]} in "
            f"{config.bench} (ids run from {bench.questions[0].question_id})"
        )
    wanted = set(config.questions)
    questions = tuple(q for q in bench.questions if q.question_id in wanted)
    return replace(bench, questions=questions)


def judged_models(
    config: RunConfig, scope: Scope, command: Command, judge: JudgeConfig
) -> list[str]:
    """Models `judge` judges: the config's, else (for `judge`) everything answered in the store;
    its pairwise baseline too."""
    stored = stored_models(config.store, config.bench)
    if command == "judge" and not stored:
        raise StoreError(
            f"{config.store}: no stored answers in {config.store} for {config.bench}; check "
            f"`store` in {config.source}, or generate or import answers first"
        )
    judged = list(scope.judged_from_config) or stored
    check_baseline(judge, [*stored, *(m.name for m in scope.generate)], config.store)
    if judge.mode == "pairwise-baseline" and judge.baseline not in judged:
        judged.append(judge.baseline)
    return judged
