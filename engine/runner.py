"""The commands that send requests (plan, generate, run, judge), from validated config to summary.

Order matters for the guarantees: config and data are validated and the store is checked before
anything is created, locked or sent, so bad input exits 2 with the store untouched. Then one run
row, one writer, one pool per endpoint, the pipeline, and a run row that records how it ended.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from engine import __version__
from engine.config import EndpointConfig, JudgeConfig, ModelConfig, RunConfig
from engine.data import BenchData, load_bench, resolve_data_dir
from engine.endpoint import EndpointPool
from engine.errors import ConfigError
from engine.graph import RunGraph, build_graph, check_baseline
from engine.preflight import preflight
from engine.progress import ProgressSampler, make_view, report_progress
from engine.scheduler import Pipeline, RunTally
from engine.serve import SlotPool
from engine.signals import Interrupted, StopSignals
from engine.store import Store, open_store
from engine.sweep import ServerLifecycle
from engine.writer import StoreWriter

__all__ = ["COMMANDS", "ProgressOptions", "RunResult", "execute"]

COMMANDS = ("plan", "generate", "run", "judge")
GC_THRESHOLD = 10_000  # first-generation threshold during a run (Python's default is 700)


@dataclass(frozen=True, slots=True)
class RunResult:
    command: str
    tally: RunTally
    store: Path
    run_id: int | None
    notes: tuple[str, ...] = ()  # what the user should know about the run (engine.preflight)

    @property
    def ok(self) -> bool:
        return not self.tally.failures


@dataclass(frozen=True, slots=True)
class _Scope:
    """What a command does: which models it generates, whether and what it judges."""

    generate: tuple[ModelConfig, ...]
    judge: JudgeConfig | None
    judged_from_config: tuple[str, ...]


def _scope(config: RunConfig, command: str) -> _Scope:
    models = config.models
    if command in ("generate", "run") and not models:
        raise ConfigError(f"{config.path}: no [[model]] tables; `{command}` needs models to answer")
    if command in ("run", "judge") and config.judge is None:
        raise ConfigError(f"{config.path}: no [judge] table; `{command}` needs a judge")
    if command == "plan":
        command = (
            "run"
            if config.judge is not None and models
            else "judge"
            if config.judge
            else "generate"
        )
    generate = models if command in ("generate", "run") else ()
    judge = config.judge if command in ("run", "judge") else None
    return _Scope(generate, judge, tuple(m.name for m in models))


@dataclass(frozen=True, slots=True)
class ProgressOptions:
    mode: str = "quiet"  # see engine.progress.PROGRESS_MODES
    interval: float | None = None


async def execute(
    config: RunConfig,
    command: str,
    *,
    data_flag: str | None = None,
    progress: ProgressOptions = ProgressOptions(),
) -> RunResult:
    """Run a command; the result's elapsed time covers all of it, from reading the data on."""
    started = time.monotonic()
    result = await _execute(config, command, data_flag=data_flag, progress=progress)
    result.tally.elapsed = time.monotonic() - started
    return result


async def _execute(
    config: RunConfig, command: str, *, data_flag: str | None, progress: ProgressOptions
) -> RunResult:
    scope = _scope(config, command)
    bench = _selected(
        config,
        load_bench(
            resolve_data_dir(data_flag, config.data),
            config.bench,
            need_judging=scope.judge is not None,
        ),
    )
    judged = await _judged_models(config, scope)
    notes = preflight(config, bench, generate=scope.generate, judge=scope.judge, judged=judged)
    if command == "plan":
        return replace(await _plan(config, scope, bench, judged), notes=notes)
    store = await open_store(config.store, write=True)
    try:
        return replace(
            await _run(config, command, scope, bench, judged, store, progress), notes=notes
        )
    finally:
        await store.close()


def _selected(config: RunConfig, bench: BenchData) -> BenchData:
    """The config's `questions` subset of the bench, in the bench's order."""
    if config.questions is None:
        return bench
    unknown = sorted(set(config.questions) - set(bench.by_id))
    if unknown:
        raise ConfigError(
            f"{config.path}: top-level key 'questions': no question {unknown[0]} in "
            f"{config.bench} (ids run from {bench.questions[0].question_id})"
        )
    wanted = set(config.questions)
    questions = tuple(q for q in bench.questions if q.question_id in wanted)
    return replace(bench, questions=questions)


async def _judged_models(config: RunConfig, scope: _Scope) -> list[str]:
    """Models to judge: the config's, else (for `judge`) everything answered in the store."""
    if scope.judge is None:
        return []
    stored = await _stored_models(config.store, config.bench)
    judged = list(scope.judged_from_config) or stored
    check_baseline(scope.judge, [*stored, *(m.name for m in scope.generate)], config.store)
    if scope.judge.mode == "pairwise-baseline" and scope.judge.baseline not in judged:
        judged.append(scope.judge.baseline)
    return judged


async def _stored_models(path: Path, bench: str) -> list[str]:
    if not path.exists():
        return []
    store = await open_store(path, write=False)
    try:
        return await store.answered_models(bench)
    finally:
        await store.close()


async def _plan(config: RunConfig, scope: _Scope, bench: BenchData, judged: list[str]) -> RunResult:
    store = await (
        open_store(config.store, write=False) if config.store.exists() else _empty_store()
    )
    try:
        graph = await build_graph(
            store, bench, generate=scope.generate, judge=scope.judge, judged_models=judged
        )
        estimates = await store.completion_estimates()
        tally = await Pipeline(
            store,
            graph.jobs,
            {},
            writer=None,
            run_id=None,
            dry_run=True,
            completion_estimates=estimates,
        ).run()
    finally:
        await store.close()
    return RunResult("plan", tally, config.store, None)


async def _empty_store() -> Store:
    return await open_store(Path(":memory:"), write=True, lock=False)


async def _run(
    config: RunConfig,
    command: str,
    scope: _Scope,
    bench: BenchData,
    judged: Sequence[str],
    store: Store,
    progress: ProgressOptions,
) -> RunResult:
    graph = await build_graph(
        store, bench, generate=scope.generate, judge=scope.judge, judged_models=judged
    )
    await store.record_questions(bench)
    run_id = await _begin_run(store, command, config)
    signals = StopSignals()
    tally: RunTally | None = None
    try:
        with _long_lived():
            tally = await _drive(store, graph, run_id, _endpoints(scope, config), signals, progress)
    finally:
        await _finish_run(store, run_id, _status(tally, signals), tally)
    if signals.received is not None:
        raise Interrupted(
            signals.received,
            f"{signals.name}: stopped after committing every answer received; resume with: "
            f"mtbench {command} -c {config.path}",
        )
    return RunResult(command, tally, config.store, run_id)


async def _drive(
    store: Store,
    graph: RunGraph,
    run_id: int,
    endpoints: dict[EndpointConfig, EndpointPool],
    signals: StopSignals,
    progress: ProgressOptions,
) -> RunTally:
    """The pipeline with its writer, endpoint pools, signal handlers and progress view."""
    writer = StoreWriter(store.path)
    pipeline = Pipeline(store, graph.jobs, endpoints, writer=writer, run_id=run_id)
    signals.on_stop = lambda: _stop(pipeline, endpoints.values())
    signals.on_abort = lambda: _abort(endpoints.values())
    writer.start()
    for pool in endpoints.values():
        pool.start()
    view = make_view(progress.mode, interval=progress.interval)
    finished = asyncio.Event()
    reporter = None
    if view is not None:
        sampler = ProgressSampler(pipeline.tally, endpoints)
        reporter = asyncio.create_task(report_progress(sampler, view, finished))
    try:
        with signals:
            tally = await pipeline.run()
            await asyncio.gather(*(pool.drain() for pool in endpoints.values()))
    finally:
        finished.set()
        if reporter is not None:
            await reporter
        for pool in endpoints.values():
            await pool.close()
        await writer.close()
    return tally


@contextmanager
def _long_lived() -> Iterator[None]:
    """Keep Python's cycle collector off the run's job graph while the run goes.

    Tens of thousands of jobs and slots live for the whole run; every full collection would walk
    them all again for nothing (about a tenth of a zero-latency run's time). Freezing moves them
    out of the collector's sight, and a larger first-generation threshold spaces out collections
    of the short-lived garbage; both are undone afterwards.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _stop(pipeline: Pipeline, endpoints: Iterable[EndpointPool]) -> None:
    pipeline.stop()
    for pool in endpoints:
        pool.stop_dispatching()


def _abort(endpoints: Iterable[EndpointPool]) -> None:
    for pool in endpoints:
        pool.abort()


def _status(tally: RunTally | None, signals: StopSignals) -> str:
    if signals.received is not None:
        return "interrupted"
    return "ok" if tally is not None and not tally.failures else "failed"


def _endpoints(scope: _Scope, config: RunConfig) -> dict[EndpointConfig, EndpointPool]:
    """One pool per endpoint; models with `serve` get a server lifecycle sharing the slots."""
    pools: dict[EndpointConfig, EndpointPool] = {}
    slots = SlotPool(config.server_slots)
    logs = config.store.parent / "servers"
    for model in scope.generate:
        lifecycle = ServerLifecycle(model, slots, logs) if model.serve else None
        pools[model] = EndpointPool(model, lifecycle=lifecycle)
    if scope.judge is not None:
        pools[scope.judge] = EndpointPool(scope.judge)
    return pools


async def _begin_run(store: Store, command: str, config: RunConfig) -> int:
    snapshot = orjson.dumps({"engine": __version__, **config.snapshot()}).decode()
    cursor = await store.db.execute(
        "INSERT INTO runs (command, started, status, config) VALUES (?, ?, 'running', ?)",
        (command, time.time(), snapshot),
    )
    run_id = cursor.lastrowid
    assert run_id is not None
    return run_id


async def _finish_run(store: Store, run_id: int, status: str, tally: RunTally | None) -> None:
    counts = None
    if tally is not None:
        counts = orjson.dumps(
            {
                "cached": tally.total("cached"),
                "sent": tally.total("done"),
                "failed": tally.total("failed"),
                "elapsed": round(tally.elapsed, 3),
            }
        ).decode()
    await store.db.execute(
        "UPDATE runs SET finished = ?, status = ?, counts = ? WHERE id = ?",
        (time.time(), status, counts, run_id),
    )
