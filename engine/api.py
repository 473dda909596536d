"""The public API: score models from Python as `mtbench` does from the shell.

    import engine

    model = engine.Model(name="my-checkpoint", base_url="http://gpu-node:8000/v1")
    judge = engine.Judge(name="gpt-4", api_key_env="OPENAI_API_KEY")
    result = engine.evaluate([model], judge=judge, store="runs/mine.sqlite")
    board = engine.scores("runs/mine.sqlite")

`evaluate` takes a TOML config's path or `Model`s (with a `Judge`), built through the same checks
as the config's tables, so a bad value is refused with the same words. It runs a command
(`run`, `generate`, `judge` or `plan`) and returns a frozen `RunResult`: per endpoint counts,
tokens and cost, every failed job, the notes `plan` and `run` print. `evaluate` works in a plain
script and from any thread (in a thread of its own when the caller's already runs an event loop);
`evaluate_async` runs in the caller's event loop. Nothing here prints, takes signals, tunes the
garbage collector or picks an event loop: those are the CLI's (`engine.cli`), a client of this
module like any other. `progress` is shown snapshots as the run goes; `control` stops it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from engine.config import (
    JudgeConfig,
    ModelConfig,
    RunConfig,
    judge_config,
    load_config,
    model_config,
    run_config,
)
from engine.errors import ConfigError
from engine.report.show import Scoreboard, leaderboards
from engine.run.control import RunControl
from engine.run.progress import ProgressView
from engine.run.runner import Command, RunResult, execute

__all__ = [
    "Judge",
    "Model",
    "evaluate",
    "evaluate_async",
    "scores",
    "scores_async",
]

T = TypeVar("T")
Models = str | Path | RunConfig | ModelConfig | Iterable[ModelConfig]


def Model(**keys: Any) -> ModelConfig:
    """A model under test, from the keys of a `[[model]]` table (`name`, `base_url`, ...)."""
    return model_config(**keys)


def Judge(**keys: Any) -> JudgeConfig:
    """The judge, from the keys of a `[judge]` table (`name`, `model`, `mode`, ...)."""
    return judge_config(**keys)


def evaluate(
    config_or_models: Models,
    *,
    command: Command = "run",
    judge: JudgeConfig | None = None,
    store: str | Path | None = None,
    data: str | Path | None = None,
    bench: str | None = None,
    questions: Iterable[int] | None = None,
    server_slots: int | None = None,
    progress: ProgressView | None = None,
    control: RunControl | None = None,
) -> RunResult:
    """Run `command` and wait for its result (see `evaluate_async` for the arguments)."""
    return _wait(
        evaluate_async(
            config_or_models,
            command=command,
            judge=judge,
            store=store,
            data=data,
            bench=bench,
            questions=questions,
            server_slots=server_slots,
            progress=progress,
            control=control,
        )
    )


async def evaluate_async(
    config_or_models: Models,
    *,
    command: Command = "run",
    judge: JudgeConfig | None = None,
    store: str | Path | None = None,
    data: str | Path | None = None,
    bench: str | None = None,
    questions: Iterable[int] | None = None,
    server_slots: int | None = None,
    progress: ProgressView | None = None,
    control: RunControl | None = None,
) -> RunResult:
    """Run `command` on a config file's path (the other arguments override its values) or on
    models (then `store` is needed, and `judge` for `run` and `judge`).

    `data` is the MT-Bench data dir, as `--data` gives it; `questions` a subset of question ids.
    Bad input raises an `InputError` before anything is sent or stored; a run whose store fails
    raises `StoreWriteError`; a run stopped through `control` raises `RunStopped`.
    """
    config = _run_config(
        config_or_models,
        judge=judge,
        store=store,
        bench=bench,
        questions=questions,
        server_slots=server_slots,
    )
    data_flag = None if data is None else str(data)
    return await execute(config, command, data_flag=data_flag, progress=progress, control=control)


def scores(
    store: str | Path,
    *,
    judge: str | None = None,
    mode: str | None = None,
    baseline: str | None = None,
    bench: str = "mt_bench",
) -> Scoreboard:
    """The leaderboards `mtbench show` prints (see `scores_async`)."""
    return _wait(scores_async(store, judge=judge, mode=mode, baseline=baseline, bench=bench))


async def scores_async(
    store: str | Path,
    *,
    judge: str | None = None,
    mode: str | None = None,
    baseline: str | None = None,
    bench: str = "mt_bench",
) -> Scoreboard:
    """Every judge's leaderboard in the store (or `judge`'s), in `mode` against `baseline`;
    `Scoreboard.as_dict()` is exactly what `mtbench show --json` prints."""
    return await leaderboards(Path(store), bench, judge=judge, mode=mode, baseline=baseline)


def _run_config(
    config_or_models: Models,
    *,
    judge: JudgeConfig | None,
    store: str | Path | None,
    bench: str | None,
    questions: Iterable[int] | None,
    server_slots: int | None,
) -> RunConfig:
    if isinstance(config_or_models, (str, Path, RunConfig)):
        loaded = (
            config_or_models
            if isinstance(config_or_models, RunConfig)
            else load_config(config_or_models)
        )
        models: Iterable[ModelConfig] = loaded.models
        judge = judge or loaded.judge
        store = store or loaded.store
        bench = bench or loaded.bench
        questions = questions if questions is not None else loaded.questions
        server_slots = server_slots or loaded.server_slots
    else:
        models = (
            [config_or_models] if isinstance(config_or_models, ModelConfig) else config_or_models
        )
        loaded = None
    if store is None:
        raise ConfigError("engine.evaluate: no store; give store= the SQLite file to use")
    built = run_config(
        models,
        judge=judge,
        store=store,
        data=None if loaded is None else loaded.data,
        bench=bench or "mt_bench",
        questions=questions,
        server_slots=server_slots,
    )
    # A file's config with the caller's overrides is still named by its file in messages.
    return built if loaded is None else replace(built, path=loaded.path)


def _wait(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run to the end here; in a thread of its own when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(asyncio.run(coroutine))
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=work, name="engine.evaluate")
    worker.start()
    worker.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    result: T = outcome[0]
    return result
