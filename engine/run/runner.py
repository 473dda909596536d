"""The commands that send requests (plan, generate, run, judge), from validated config to summary.

Order matters for the guarantees: config and data are validated and the store is checked before
anything is created, locked or sent, so bad input exits 2 with the store untouched (a store this
command created is removed again if building the run fails). Then one run row, one writer, one
pool per endpoint, the pipeline, and a run row that records how it ended. Every task the run
starts is supervised (see engine.run.scheduler); the progress display is the exception, because it
must never stop a run: if it fails, that is said once and the run goes on without it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import orjson

from engine import __version__
from engine.bench.data import BenchData, load_bench, resolve_data_dir
from engine.cli.signals import Interrupted, StopSignals
from engine.config import EndpointConfig, JudgeConfig, ModelConfig, RunConfig
from engine.endpoints.pool import EndpointPool
from engine.errors import ConfigError, MtbenchError, StoreError
from engine.run.graph import RunGraph, build_graph, check_baseline
from engine.run.preflight import preflight
from engine.run.progress import ProgressSampler, View, make_view, report_progress
from engine.run.scheduler import Pipeline, RunTally
from engine.serving.server_records import StoreServerRecords, reap_leftover_servers
from engine.serving.sweep import ServerLifecycle, SlotPool, server_log_dir
from engine.store.store import Store, open_store, stored_models
from engine.store.writer import StoreWriter

__all__ = ["COMMANDS", "ProgressOptions", "RunResult", "execute"]

log = logging.getLogger(__name__)
T = TypeVar("T")

COMMANDS = ("plan", "generate", "run", "judge")
GC_THRESHOLD = 10_000  # first-generation threshold during a run (Python's default is 700)


@dataclass(frozen=True, slots=True)
class RunResult:
    command: str
    tally: RunTally
    store: Path
    run_id: int | None
    notes: tuple[str, ...] = ()  # what the user should know about the run (engine.run.preflight)

    @property
    def ok(self) -> bool:
        return not self.tally.failures


@dataclass(frozen=True, slots=True)
class _Scope:
    """What a command does: which models it generates, whether and what it judges."""

    generate: tuple[ModelConfig, ...]
    judge: JudgeConfig | None
    judged_from_config: tuple[str, ...]
    keep_thinking: frozenset[str]  # models whose answers are shown with their inline thinking


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
    kept = frozenset(m.name for m in models if m.keep_thinking)
    return _Scope(generate, judge, tuple(m.name for m in models), kept)


@dataclass(frozen=True, slots=True)
class ProgressOptions:
    mode: str = "quiet"  # see engine.run.progress.PROGRESS_MODES
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
    data_dir = resolve_data_dir(data_flag, config.data)
    loaded = await _off_loop(
        lambda: load_bench(data_dir, config.bench, need_judging=scope.judge is not None)
    )
    bench = _selected(config, loaded)
    judged = _judged_models(config, scope, command)
    notes = preflight(config, bench, generate=scope.generate, judge=scope.judge, judged=judged)
    if command == "plan":
        return replace(await _plan(config, scope, bench, judged), notes=notes)
    store = await open_store(config.store, write=True)
    try:
        graph = await _graph(store, bench, scope, judged)
    except BaseException:
        await store.close(discard=True)  # nothing ran: a store this call created goes again
        raise
    try:
        await reap_leftover_servers(store)
        result = await _run(config, command, scope, bench, graph, store, progress)
        return replace(result, notes=notes)
    finally:
        await store.close()


async def _graph(store: Store, bench: BenchData, scope: _Scope, judged: list[str]) -> RunGraph:
    return await build_graph(
        store,
        bench,
        generate=scope.generate,
        judge=scope.judge,
        judged_models=judged,
        keep_thinking=scope.keep_thinking,
    )


async def _off_loop(read: Callable[[], T]) -> T:
    """Blocking file reads, off the event loop in a daemon thread: a read that hangs (a stuck
    network mount) must not stop a signal from ending the command, nor the exit from happening."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        with suppress(RuntimeError):  # the loop is gone: the command ended without this read
            loop.call_soon_threadsafe(lambda: None if result.done() else outcome())

    def work() -> None:
        try:
            value = read()
        except Exception as exc:
            error = exc  # `exc` is unbound once the except clause ends
            settle(lambda: result.set_exception(error))
        else:
            settle(lambda: result.set_result(value))

    threading.Thread(target=work, name="read data", daemon=True).start()
    return await result


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


def _judged_models(config: RunConfig, scope: _Scope, command: str) -> list[str]:
    """Models to judge: the config's, else (for `judge`) everything answered in the store."""
    if scope.judge is None:
        return []
    stored = stored_models(config.store, config.bench)
    if command == "judge" and not stored:
        raise StoreError(
            f"{config.store}: no stored answers in {config.store} for {config.bench}; check "
            f"`store` in {config.path}, or generate or import answers first"
        )
    judged = list(scope.judged_from_config) or stored
    check_baseline(scope.judge, [*stored, *(m.name for m in scope.generate)], config.store)
    if scope.judge.mode == "pairwise-baseline" and scope.judge.baseline not in judged:
        judged.append(scope.judge.baseline)
    return judged


async def _plan(config: RunConfig, scope: _Scope, bench: BenchData, judged: list[str]) -> RunResult:
    store = await (
        open_store(config.store, write=False) if config.store.exists() else _empty_store()
    )
    try:
        graph = await _graph(store, bench, scope, judged)
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
    graph: RunGraph,
    store: Store,
    progress: ProgressOptions,
) -> RunResult:
    """The run between its two run-row updates; a signal from here on stops it gracefully."""
    signals = StopSignals()
    failure: MtbenchError | None = None
    tally: RunTally | None = None
    with signals:
        await store.record_questions(bench)
        run_id = await store.begin_run(command, _snapshot(config))
        try:
            with _long_lived():
                pools = _endpoints(scope, config, StoreServerRecords(store))
                tally = await _drive(store, graph, run_id, pools, signals, progress)
        except MtbenchError as error:
            failure = error
        except BaseException:
            await _record_end(store, run_id, "failed", tally, quiet=True)
            raise
        status = _status(tally, signals, failure)
        await _record_end(store, run_id, status, tally, quiet=bool(failure or signals.received))
    if signals.received is not None:
        but = f"; but: {failure}" if failure is not None else ""
        raise Interrupted(
            signals.received,
            f"{signals.name}: stopped after committing every answer received; resume with: "
            f"mtbench {command} -c {config.path}{but}",
        )
    if failure is not None:
        raise failure
    assert tally is not None
    return RunResult(command, tally, config.store, run_id)


async def _drive(
    store: Store,
    graph: RunGraph,
    run_id: int,
    endpoints: dict[EndpointConfig, EndpointPool],
    signals: StopSignals,
    progress: ProgressOptions,
) -> RunTally:
    """The pipeline with its writer and endpoint pools, all supervised, and a progress view."""
    writer = StoreWriter(store.path)
    pipeline = Pipeline(store, graph.jobs, endpoints, writer=writer, run_id=run_id)
    signals.on_stop = lambda: _stop(pipeline, endpoints.values())
    signals.on_abort = lambda: _abort(endpoints.values())
    pipeline.supervise(writer.start())
    for pool in endpoints.values():
        pool.start(pipeline.supervise)
    if signals.received is not None:  # a signal came while the run was being set up
        signals.on_stop()
    finished = asyncio.Event()
    reporter = start_progress(progress, ProgressSampler(pipeline.tally, endpoints), finished)
    try:
        tally = await pipeline.run()
        await pipeline.finish(asyncio.gather(*(pool.drain() for pool in endpoints.values())))
    finally:
        finished.set()
        if reporter is not None:
            await reporter
        for pool in endpoints.values():
            await pool.close()
        await writer.close()
    pipeline.check()  # a commit callback that failed while the writer drained its queue
    return tally


def start_progress(
    progress: ProgressOptions, sampler: ProgressSampler, finished: asyncio.Event
) -> asyncio.Task[None] | None:
    """The progress reporter, as a task that never fails: a broken display is noted once."""
    try:
        view = make_view(progress.mode, interval=progress.interval)
    except Exception as exc:
        _progress_failed(exc)
        return None
    if view is None:
        return None
    return asyncio.create_task(_report(sampler, view, finished), name="progress")


async def _report(sampler: ProgressSampler, view: View, finished: asyncio.Event) -> None:
    try:
        await report_progress(sampler, view, finished)
    except Exception as exc:
        _progress_failed(exc)


def _progress_failed(error: Exception) -> None:
    log.debug("progress display failed", exc_info=error)
    with suppress(OSError, ValueError):  # stderr itself may be what broke
        print(
            f"mtbench: progress display failed ({type(error).__name__}: {error}); "
            "the run goes on without it",
            file=sys.stderr,
            flush=True,
        )


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


def _status(tally: RunTally | None, signals: StopSignals, failure: MtbenchError | None) -> str:
    if signals.received is not None:
        return "interrupted"
    return "ok" if failure is None and tally is not None and not tally.failures else "failed"


def _endpoints(
    scope: _Scope, config: RunConfig, records: StoreServerRecords
) -> dict[EndpointConfig, EndpointPool]:
    """One pool per endpoint; models with `serve` get a server lifecycle sharing the slots."""
    pools: dict[EndpointConfig, EndpointPool] = {}
    slots = SlotPool(config.server_slots)
    logs = server_log_dir(config.store)
    for model in scope.generate:
        lifecycle = ServerLifecycle(model, slots, logs, records) if model.serve else None
        pools[model] = EndpointPool(model, lifecycle=lifecycle)
    if scope.judge is not None:
        pools[scope.judge] = EndpointPool(scope.judge)
    return pools


def _snapshot(config: RunConfig) -> str:
    return orjson.dumps({"engine": __version__, **config.snapshot()}).decode()


async def _record_end(
    store: Store, run_id: int, status: str, tally: RunTally | None, *, quiet: bool
) -> None:
    """The run row's end; `quiet` when the run already failed or was stopped: the store may be
    what failed, and recording the end must not hide why."""
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
    try:
        await store.finish_run(run_id, status, counts)
    except MtbenchError as error:
        if not quiet:
            raise
        log.warning("could not record the end of run %d: %s", run_id, error)
