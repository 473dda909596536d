"""The commands that send requests (plan, generate, run, judge), from validated config to result.

Order matters for the guarantees: config and data are validated (what the command covers is
engine.run.scope's) and the store is checked before anything is created, locked or sent, so bad
input exits 2 with the store untouched (a store this command created is removed again if building
the run fails). Then one run row, one writer, one pool per endpoint, the pipeline, and a run row
that records how it ended. Every task the run starts is supervised (engine.run.supervision); the
progress display is the exception, because it must never stop a run: if it fails, that is logged
once and the run goes on without it. Nothing here prints, takes signals or tunes the interpreter:
a run is stopped through its `RunControl`, and the CLI (or any other caller) decides what a signal
or a display is.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import orjson

from engine import __version__
from engine.bench.data import BenchData, resolve_data_dir
from engine.config import EndpointConfig, RunConfig
from engine.endpoints.pool import EndpointPool
from engine.errors import MtbenchError, StoreBusy
from engine.run.checkpoint_contents import check_contents
from engine.run.control import RunControl, RunStopped, settled, to_the_end
from engine.run.graph import RunGraph, build_graph
from engine.run.judge_setups import JudgeSetup, judge_setups, load_benches, preflight_judges
from engine.run.progress import ProgressSampler, ProgressView, report_progress
from engine.run.scheduler import Pipeline
from engine.run.scope import Command, Scope, command_scope
from engine.run.tally import EndpointCounts, FailureRecord, RunSummary, RunTally
from engine.serving.server_records import StoreServerRecords, reap_leftover_servers
from engine.serving.sweep import ServerFleet
from engine.store.panels import record_panel
from engine.store.store import Store, check_store, open_store
from engine.store.writer import StoreWriter

__all__ = ["RunResult", "check", "execute", "reap_leftovers"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a command did: per endpoint counts, tokens and cost, and every failed job."""

    command: Command
    store: Path
    run_id: int | None  # the store's `runs` row; None for `plan`, which stores nothing
    summary: RunSummary
    notes: tuple[str, ...] = ()  # what the user should know about the run (engine.run.preflight)

    @property
    def ok(self) -> bool:
        return not self.summary.failures

    @property
    def endpoints(self) -> tuple[EndpointCounts, ...]:
        return self.summary.endpoints

    @property
    def failures(self) -> tuple[FailureRecord, ...]:
        return self.summary.failures

    @property
    def cost(self) -> float | None:
        """Dollars for what was sent (plan: what would be), when the endpoints have prices."""
        return self.summary.total_cost()


@dataclass(frozen=True, slots=True)
class _Options:
    """How the caller watches and steers the run."""

    progress: ProgressView | None
    control: RunControl
    started: float  # time.monotonic() when the command started: elapsed covers all of it


async def execute(
    config: RunConfig,
    command: Command,
    *,
    data_flag: str | None = None,
    progress: ProgressView | None = None,
    control: RunControl | None = None,
) -> RunResult:
    """Run a command: `progress` is shown the run's snapshots every `progress.interval` seconds,
    `control` can stop it; the result's elapsed time covers everything from reading the data on."""
    options = _Options(progress, control or RunControl(), time.monotonic())
    return await _execute(config, command, data_flag=data_flag, options=options)


async def check(config: RunConfig, command: Command, *, data_flag: str | None = None) -> None:
    """Every refusal `execute` makes before it opens the store (config, data, the run as a whole,
    the store's path and schema), with nothing created, locked or sent: for a caller that runs
    the config later, as the watcher does when its first checkpoint lands, maybe hours on."""
    await _prepare(config, command, data_flag)
    if command != "plan":
        check_store(config.store, write=True)


async def reap_leftovers(config: RunConfig) -> None:
    """Stop the servers (and Slurm jobs) a dead engine left running on the store, as every run
    does before it starts: a restarted watcher may have nothing to run for hours, while they hold
    GPUs. A store another command is writing was reaped by that command when it began."""
    if not config.store.exists():
        return
    try:
        store = await open_store(config.store, write=True)
    except StoreBusy:
        return
    try:
        await reap_leftover_servers(store)
    finally:
        await store.close()


@dataclass(frozen=True, slots=True)
class _Prepared:
    scope: Scope
    bench: BenchData
    judges: tuple[JudgeSetup, ...]
    notes: tuple[str, ...]


async def _prepare(config: RunConfig, command: Command, data_flag: str | None) -> _Prepared:
    """The command's scope, its questions, what it judges and its notes, all checked."""
    scope = command_scope(config, command)
    data_dir = resolve_data_dir(data_flag, config.data)
    bench, benches = await _off_loop(lambda: load_benches(data_dir, config, scope.judges))
    judges = judge_setups(config, scope, command, benches)
    notes = preflight_judges(config, bench, scope, judges)
    return _Prepared(scope, bench, judges, notes)


async def _execute(
    config: RunConfig, command: Command, *, data_flag: str | None, options: _Options
) -> RunResult:
    prepared = await _prepare(config, command, data_flag)
    scope, bench, judges, notes = prepared.scope, prepared.bench, prepared.judges, prepared.notes
    if command == "plan":
        return replace(await _plan(config, scope, bench, judges, options.started), notes=notes)
    store = await open_store(config.store, write=True)
    try:
        graph = await _graph(store, bench, scope, judges)
    except BaseException:
        await store.close(discard=True)  # nothing ran: a store this call created goes again
        raise
    try:
        await reap_leftover_servers(store)
        result = await _run(config, command, scope, bench, graph, store, options)
        return replace(result, notes=notes)
    finally:
        await store.close()


async def _graph(
    store: Store, bench: BenchData, scope: Scope, judges: Sequence[JudgeSetup]
) -> RunGraph:
    return await build_graph(
        store, bench, generate=scope.generate, judges=judges, keep_thinking=scope.keep_thinking
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


async def _plan(
    config: RunConfig, scope: Scope, bench: BenchData, judges: Sequence[JudgeSetup], started: float
) -> RunResult:
    store = await (
        open_store(config.store, write=False) if config.store.exists() else _empty_store()
    )
    try:
        graph = await _graph(store, bench, scope, judges)
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
    return RunResult("plan", config.store, None, tally.summary(time.monotonic() - started))


async def _empty_store() -> Store:
    return await open_store(Path(":memory:"), write=True, lock=False)


async def _run(
    config: RunConfig,
    command: Command,
    scope: Scope,
    bench: BenchData,
    graph: RunGraph,
    store: Store,
    options: _Options,
) -> RunResult:
    """The run between its two run-row updates; a stop asked for from here on is graceful."""
    control = options.control
    failure: MtbenchError | None = None
    tally: RunTally | None = None
    with control.running():
        await store.record_questions(bench)
        run_id = await store.begin_run(command, _snapshot(config))
        try:
            if config.panel is not None and scope.judges:
                await record_panel(store, bench.bench, config.panel, run_id)
            await check_contents(store, scope.generate, run_id)  # a checkpoint rewritten since
            pools = _endpoints(scope, config, StoreServerRecords(store))
            tally = await _drive(store, graph, run_id, pools, options)
        except MtbenchError as error:
            failure = error
        except BaseException as error:  # cancelled: a Ctrl-C in a script or notebook, a timeout
            ended = "interrupted" if isinstance(error, asyncio.CancelledError) else "failed"
            await _record_end(store, run_id, ended, None, quiet=True)
            raise
        summary = None if tally is None else tally.summary(time.monotonic() - options.started)
        status = _status(summary, control, failure)
        await _record_end(store, run_id, status, summary, quiet=bool(failure or control.stopped))
    if control.stopped:
        raise RunStopped("stopped after committing every answer received", failure)
    if failure is not None:
        raise failure
    assert summary is not None
    return RunResult(command, config.store, run_id, summary)


async def _drive(
    store: Store,
    graph: RunGraph,
    run_id: int,
    endpoints: dict[EndpointConfig, EndpointPool],
    options: _Options,
) -> RunTally:
    """The pipeline with its writer and endpoint pools, all supervised, and a progress view."""
    writer = StoreWriter(store.path)
    pipeline = Pipeline(store, graph.jobs, endpoints, writer=writer, run_id=run_id)
    supervisor = pipeline.supervisor
    supervisor.watch(writer.start())
    for pool in endpoints.values():
        pool.start(supervisor.watch)
    detach = options.control.attach(
        lambda: _stop(pipeline, endpoints.values()), lambda: _abort(endpoints.values())
    )
    finished = asyncio.Event()
    reporter = start_progress(
        options.progress, ProgressSampler(pipeline.tally, endpoints), finished
    )
    try:
        tally = await pipeline.run()
        await supervisor.finish(asyncio.gather(*(pool.drain() for pool in endpoints.values())))
    finally:
        detach()
        finished.set()
        waited = [] if reporter is None else [lambda: settled(reporter)]
        # Closing stops the servers: an abort meanwhile (the stop grace over) hurries them.
        detach = options.control.attach(_nothing, lambda: _hurry(endpoints.values()))
        try:
            await to_the_end(*waited, *(p.close for p in endpoints.values()), writer.close)
        finally:
            detach()
    supervisor.check()  # a commit callback that failed while the writer drained its queue
    return tally


def start_progress(
    view: ProgressView | None, sampler: ProgressSampler, finished: asyncio.Event
) -> asyncio.Task[None] | None:
    """The progress reporter, as a task that never fails: a broken display is logged once."""
    if view is None:
        return None
    return asyncio.create_task(_report(sampler, view, finished), name="progress")


async def _report(sampler: ProgressSampler, view: ProgressView, finished: asyncio.Event) -> None:
    try:
        await report_progress(sampler, view, finished)
    except Exception as exc:
        log.warning(
            "progress display failed (%s: %s); the run goes on without it",
            type(exc).__name__,
            exc,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )


def _stop(pipeline: Pipeline, endpoints: Iterable[EndpointPool]) -> None:
    pipeline.stop()
    for pool in endpoints:
        pool.stop_dispatching()


def _abort(endpoints: Iterable[EndpointPool]) -> None:
    for pool in endpoints:
        pool.abort()
    _hurry(endpoints)


def _hurry(endpoints: Iterable[EndpointPool]) -> None:
    for pool in endpoints:
        pool.hurry_server()


def _nothing() -> None:
    pass


def _status(summary: RunSummary | None, control: RunControl, failure: MtbenchError | None) -> str:
    if control.stopped:
        return "interrupted"
    return "ok" if failure is None and summary is not None and not summary.failures else "failed"


def _endpoints(
    scope: Scope, config: RunConfig, records: StoreServerRecords
) -> dict[EndpointConfig, EndpointPool]:
    """One pool per endpoint; models with `serve` get a server lifecycle sharing the slots."""
    pools: dict[EndpointConfig, EndpointPool] = {}
    servers = ServerFleet(config, scope.generate, records)
    for model in scope.generate:
        lifecycle = servers.lifecycle(model) if model.serve else None
        pools[model] = EndpointPool(model, lifecycle=lifecycle)
    for judge in scope.judges:  # each judge its own limits, 429 pauses, prices and tally
        pools[judge] = EndpointPool(judge)
    return pools


def _snapshot(config: RunConfig) -> str:
    return orjson.dumps({"engine": __version__, **config.snapshot()}).decode()


async def _record_end(
    store: Store, run_id: int, status: str, summary: RunSummary | None, *, quiet: bool
) -> None:
    """The run row's end; `quiet` when the run already failed or was stopped: the store may be
    what failed, and recording the end must not hide why."""
    counts = None
    if summary is not None:
        counts = orjson.dumps(
            {
                "cached": summary.total("cached"),
                "sent": summary.total("done"),
                "failed": summary.total("failed"),
                "elapsed": round(summary.elapsed, 3),
            }
        ).decode()
    try:
        await store.finish_run(run_id, status, counts)
    except MtbenchError as error:
        if not quiet:
            raise
        # The run's own error line says what failed (often this very store): a second line on
        # stderr would only repeat it; -v shows it.
        log.info("could not record the end of run %d: %s", run_id, error)
