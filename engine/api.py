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
import functools
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from engine.config import (
    PYTHON_SOURCE,
    JudgeConfig,
    ModelConfig,
    RunConfig,
    judge_config,
    load_config,
    model_config,
    run_config,
)
from engine.config_judges import chosen_judges
from engine.config_panel import Aggregate
from engine.config_schema import JudgeMode
from engine.config_tables import shown
from engine.errors import ConfigError
from engine.report.show import Scoreboard, leaderboards
from engine.run.control import RunControl
from engine.run.progress import INTERVAL_RANGE, ProgressView
from engine.run.runner import RunResult, execute
from engine.run.scope import Command

__all__ = [
    "Judge",
    "Model",
    "evaluate",
    "evaluate_async",
    "scores",
    "scores_async",
]

T = TypeVar("T")
P = ParamSpec("P")
Models = str | Path | RunConfig | ModelConfig | Iterable[ModelConfig]


def Model(**keys: Any) -> ModelConfig:
    """A model under test, from the keys of a `[[model]]` table (`name`, `base_url`, ...)."""
    return model_config(**keys)


def Judge(**keys: Any) -> JudgeConfig:
    """A judge, from the keys of a `[judge]` table (`name`, `model`, `mode`, ...); give
    `evaluate` a list of them to judge with several."""
    return judge_config(**keys)


async def evaluate_async(
    config_or_models: Models,
    *,
    command: Command = "run",
    judge: JudgeConfig | Iterable[JudgeConfig] | str | None = None,
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

    `judge` is an `engine.Judge`, a list of them (several judges, each judging every answer with
    its own endpoint), or the name of one of the config file's judges (`--judge NAME`).
    `data` is the MT-Bench data dir, as `--data` gives it; `questions` a subset of question ids.
    Bad input raises an `InputError` before anything is sent or stored; a run whose store fails
    raises `StoreWriteError`; a run stopped through `control` raises `RunStopped`.
    """
    _check_watchers(progress, control)
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


async def scores_async(
    store: str | Path,
    *,
    judge: str | None = None,
    mode: JudgeMode | None = None,
    baseline: str | None = None,
    bench: str = "mt_bench",
    panel: str | Sequence[str] | None = None,
    aggregate: Aggregate | None = None,
) -> Scoreboard:
    """Every judge's leaderboard in the store (or `judge`'s), in `mode` against `baseline`, and
    the recorded judge panels' (or the panel of the judge labels `panel` names, pooled by
    `aggregate`); `Scoreboard.as_dict()` is exactly what `mtbench show --json` prints."""
    return await leaderboards(
        Path(store),
        bench,
        judge=judge,
        mode=mode,
        baseline=baseline,
        panel=panel,
        aggregate=aggregate,
    )


def _blocking(function: Callable[P, Coroutine[Any, Any, T]], name: str, doc: str) -> Callable[P, T]:
    """`function` with its signature, run to its end where it is called (see `_wait`)."""

    @functools.wraps(function)
    def blocking(*args: P.args, **kwargs: P.kwargs) -> T:
        return _wait(function(*args, **kwargs))

    blocking.__name__ = blocking.__qualname__ = name
    blocking.__doc__ = doc
    return blocking


evaluate = _blocking(
    evaluate_async,
    "evaluate",
    "Run `command` and wait for its result (see `evaluate_async` for the arguments).",
)
scores = _blocking(
    scores_async, "scores", "The leaderboards `mtbench show` prints (see `scores_async`)."
)


def _run_config(
    config_or_models: Models,
    *,
    judge: object,
    store: str | Path | None,
    bench: str | None,
    questions: Iterable[int] | None,
    server_slots: int | None,
) -> RunConfig:
    # An override given is checked as its TOML key would be, even when falsy (`server_slots=0`).
    loaded: RunConfig | None = None
    if isinstance(config_or_models, (str, Path, RunConfig)):
        loaded = (
            config_or_models
            if isinstance(config_or_models, RunConfig)
            else load_config(config_or_models)
        )
        models: tuple[ModelConfig, ...] = loaded.models
        judges = chosen_judges(loaded.source, judge, loaded.judges, JudgeConfig)
        store = loaded.store if store is None else store
        bench = loaded.bench if bench is None else bench
        questions = loaded.questions if questions is None else questions
        server_slots = loaded.server_slots if server_slots is None else server_slots
    else:
        models = _models(config_or_models)
        judges = _python_judges(judge)
    if store is None:
        raise ConfigError(f"{PYTHON_SOURCE}: no store; give store= the SQLite file to use")
    built = run_config(
        models,
        judges=judges,
        store=store,
        data=None if loaded is None else loaded.data,
        bench="mt_bench" if bench is None else bench,
        questions=questions,
        server_slots=server_slots,
    )
    # A file's config with the caller's overrides is still named by its file in messages, and
    # keeps its judge panel.
    return built if loaded is None else replace(built, path=loaded.path, panel=loaded.panel)


def _models(given: object) -> tuple[ModelConfig, ...]:
    """The models under test: one `engine.Model` or an iterable of them, nothing else."""
    if isinstance(given, ModelConfig):
        return (given,)
    if not isinstance(given, Iterable) or isinstance(given, (bytes, dict)):
        raise ConfigError(
            f"{PYTHON_SOURCE}: {shown(given)}: expected a config file's path, an engine.Model "
            "or a list of them"
        )
    models = tuple(given)
    for number, model in enumerate(models, 1):
        if not isinstance(model, ModelConfig):
            hint = " (a judge: give it as judge=)" if isinstance(model, JudgeConfig) else ""
            raise ConfigError(
                f"{PYTHON_SOURCE}: model #{number} = {shown(model)}: expected an engine.Model{hint}"
            )
    return models


def _python_judges(judge: object) -> tuple[JudgeConfig, ...]:
    """The judges given with models built in Python: a name has no config's judges to pick."""
    if isinstance(judge, str):
        raise ConfigError(
            f"{PYTHON_SOURCE}: judge = {shown(judge)}: expected an engine.Judge; scores() takes "
            "a judge's name, evaluate() an engine.Judge, a list of them, or the name of one of "
            "a config file's judges"
        )
    return chosen_judges(PYTHON_SOURCE, judge, (), JudgeConfig)


def _check_watchers(progress: object, control: object) -> None:
    """`progress` and `control` as the run will use them, before anything is touched."""
    if control is not None and not isinstance(control, RunControl):
        raise ConfigError(f"{PYTHON_SOURCE}: control = {shown(control)}: expected a RunControl")
    if progress is None:
        return
    interval: Any = getattr(progress, "interval", None)
    low, high = INTERVAL_RANGE
    number = isinstance(interval, (int, float)) and not isinstance(interval, bool)
    if not (number and low <= interval <= high):
        raise ConfigError(
            f"{PYTHON_SOURCE}: progress.interval = {shown(interval)}: expected seconds from "
            f"{low:g} to {high:g}"
        )
    for method in ("show", "close"):
        if not callable(getattr(progress, method, None)):
            raise ConfigError(
                f"{PYTHON_SOURCE}: progress = {shown(progress)}: has no {method}(snapshots) method"
            )


def _wait(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run to the end here; in a thread of its own when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    return _Aside(coroutine).wait()


class _Aside:
    """A coroutine run to its end in a thread and event loop of its own, for a caller whose own
    loop is busy (a notebook cell). A KeyboardInterrupt (a notebook's "interrupt") or any other
    exception raised in the caller while it waits cancels the run and waits for it to unwind, as
    `asyncio.run` does: a run left going in the background would go on sending and hold the
    store's lock, refusing the caller's next `evaluate` on that store."""

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._coroutine = coroutine
        self._outcome: list[Any] = []
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cancelled = False
        self._done = threading.Event()

    def wait(self) -> Any:
        # Waited for on an Event, not by join(): on Python 3.11 a join interrupted by Ctrl-C marks
        # the thread as ended while it still runs, and a second join returns at once.
        worker = threading.Thread(target=self._work, name="engine.evaluate")
        worker.start()
        try:
            self._done.wait()
        except BaseException:
            self._cancel()
            self._done.wait()
            raise
        worker.join()
        if isinstance(self._outcome[0], BaseException):
            raise self._outcome[0]
        return self._outcome[0]

    def _work(self) -> None:
        try:
            self._outcome.append(asyncio.run(self._main()))
        except BaseException as error:
            self._outcome.append(error)
        finally:
            self._done.set()

    async def _main(self) -> Any:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        if self._cancelled:  # the caller gave up before this thread started
            self._coroutine.close()
            raise asyncio.CancelledError
        return await self._coroutine

    def _cancel(self) -> None:
        """From the caller's thread: the flag covers a run not yet started, the task the rest."""
        self._cancelled = True
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with suppress(RuntimeError):  # the loop is closed: the run has ended already
                loop.call_soon_threadsafe(task.cancel)
