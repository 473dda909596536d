"""The store's `servers` table: model servers a run started and has not stopped yet.

An engine that is SIGKILLed or OOM-killed stops nothing. The kernel sends each server it started
SIGTERM (`engine.serving.processes.exit_with_parent`), but a server may ignore that, and the workers
it forked never get it. So every server is recorded when it starts and forgotten once its whole
process group is gone; the next write command on the store, which holds the store's writer lock (no
other engine can be using these servers), reaps what is left: SIGTERM to each recorded group, a
grace period, SIGKILL, and one log line per server.

A record is reaped by its launcher's reaper (`REAPERS`): 'local' process groups on this host; a
launcher whose servers are batch jobs adds one that cancels the record's `job_id`. A Slurm job is
recorded before sbatch runs, and its id once sbatch has said it: a record without an id is an
engine killed in between, whose job is found by the store's tag in its name and cancelled. Recording
and reaping never fail a run: a record is a safety net, so a store error here is a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.errors import StoreWriteError
from engine.serving.processes import (
    Machine,
    ProcessIdentity,
    live_group_members,
    signal_group,
    this_machine,
)
from engine.serving.serve import StartedServer
from engine.serving.slurm_jobs import (
    SlurmUnavailable,
    job_name,
    reap_job,
    reap_unrecorded,
    store_tag,
)
from engine.store import rows
from engine.store.rows import JobServerRow, ServerRow
from engine.store.store import Store

__all__ = ["REAPERS", "StoreServerRecords", "reap_leftover_servers"]

log = logging.getLogger(__name__)

REAP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
KILL_WAIT = 5.0  # seconds for SIGKILL to take effect before the record is kept for next time
_POLL = 0.05

Outcome = Literal[
    "reaped", "gone", "not-ours", "elsewhere", "stuck", "unknown-launcher", "no-slurm"
]
# Outcomes whose record is kept, because its server may still be running.
_KEPT: frozenset[Outcome] = frozenset({"elsewhere", "stuck", "unknown-launcher", "no-slurm"})


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """One row of `servers`: a server some run started and did not see stop."""

    id: int
    launcher: str
    job_id: str | None  # for launchers whose servers are jobs
    name: str
    host: str  # where it was started (a local server) or submitted (a batch job)
    process: ProcessIdentity | None  # the local launcher's process group
    command: str
    log_file: str | None
    started: float


class StoreServerRecords:
    """`ServerRecords` kept in the run's store, one autocommitted row per running server."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, server: StartedServer) -> None:
        process = server.process
        if process is None:
            await self._add_job(server)
            return
        row = ServerRow(
            name=server.name,
            host=process.machine.host,
            boot_id=process.machine.boot_id,
            pid=process.pid,
            pgid=process.group,
            start_time=process.start_time,
            command=server.command,
            log_file=None if server.log_file is None else str(server.log_file),
            started=server.started,
        )
        await self._write(rows.INSERT_SERVER, rows.params(row), f"record server pid {process.pid}")

    async def _add_job(self, server: StartedServer) -> None:
        """A job about to be submitted (no id yet): a new row; one submitted: its row's id."""
        row = JobServerRow(
            launcher=server.launcher,
            job_id=server.job_id,
            name=server.name,
            host=server.host,
            command=server.command,
            log_file=None if server.log_file is None else str(server.log_file),
            started=server.started,
        )
        if server.job_id is None:
            what = f"record the {server.launcher} job about to be submitted for {server.name}"
            await self._write(rows.INSERT_JOB_SERVER, rows.params(row), what)
            return
        what = f"record {server.launcher} job {server.job_id}"
        await self._write(rows.RECORD_JOB_ID, rows.params(row), what)

    async def remove(self, server: StartedServer) -> None:
        process = server.process
        if process is None:
            params: dict[str, object] = {
                "launcher": server.launcher,
                "command": server.command,
                "started": server.started,
            }
            what = f"forget ended {server.launcher} job {server.job_id or '(never submitted)'}"
            await self._write(rows.FORGET_JOB_SERVER, params, what)
            return
        machine = process.machine
        params = {
            "host": machine.host,
            "boot_id": machine.boot_id,
            "pid": process.pid,
            "start_time": process.start_time,
        }
        what = f"forget stopped server pid {process.pid}"
        await self._write(rows.FORGET_LOCAL_SERVER, params, what)

    async def _write(self, sql: str, params: dict[str, object], what: str) -> None:
        try:
            await self._store.execute(sql, params)
        except StoreWriteError as exc:
            log.warning("%s: could not %s in its servers table (%s)", self._store.path, what, exc)


Reaper = Callable[[ServerRecord, Machine, float], Awaitable[Outcome]]


async def reap_leftover_servers(store: Store, *, grace: float = REAP_GRACE) -> list[Outcome]:
    """Stop every recorded server a dead engine left running; one log line per record (per
    store tag for Slurm jobs recorded without an id).

    Call only while holding the store's writer lock. Returns each record's outcome.
    """
    try:
        records = [_record(row) for row in await store.read(rows.SERVER_RECORDS)]
    except StoreWriteError as exc:
        log.warning("%s: could not read its servers table (%s)", store.path, exc)
        return []
    unrecorded = [record for record in records if _unrecorded_job(record)]
    records = [record for record in records if not _unrecorded_job(record)]
    here = this_machine()
    reapers = [REAPERS.get(record.launcher, _unknown_launcher) for record in records]
    outcomes = await asyncio.gather(
        *(reap(record, here, grace) for reap, record in zip(reapers, records, strict=True))
    )
    for record, outcome in zip(records, outcomes, strict=True):
        _log_outcome(record, outcome, grace)
    owned = frozenset(record.job_id for record in records if record.job_id is not None)
    outcomes += await _reap_unrecorded_jobs(store.path, unrecorded, owned, grace)
    records += unrecorded
    done = [r.id for r, outcome in zip(records, outcomes, strict=True) if outcome not in _KEPT]
    if done:
        try:
            await store.execute(f"{rows.FORGET_SERVERS}({rows.in_list(len(done))})", done)
        except StoreWriteError as exc:
            log.warning("%s: could not clear its servers table (%s)", store.path, exc)
    return list(outcomes)


def _unrecorded_job(record: ServerRecord) -> bool:
    return record.launcher == "slurm" and record.job_id is None


async def _reap_unrecorded_jobs(
    store: Path, records: list[ServerRecord], owned: frozenset[str], grace: float
) -> list[Outcome]:
    """Cancel the jobs of engines killed between sbatch and recording their ids: every live job
    with this store's tag in its name that no record owns. One squeue, and log line, per tag."""
    outcomes: dict[str, Outcome] = {}
    for tag in dict.fromkeys(store_tag(store, record.host) for record in records):
        models = ", ".join(r.name for r in records if store_tag(store, r.host) == tag)
        jobs: list[str] = []
        outcome: Outcome = "no-slurm"
        with contextlib.suppress(SlurmUnavailable):
            outcome, jobs = await reap_unrecorded(tag, owned, grace)
        outcomes[tag] = outcome
        log.log(
            logging.INFO if outcome == "gone" else logging.WARNING,
            "Slurm job(s) of %s, submitted by a run killed before it recorded their ids: %s",
            models,
            _UNRECORDED_MESSAGES[outcome].format(jobs=" ".join(jobs), tag=job_name(tag, "")),
        )
    return [outcomes[store_tag(store, record.host)] for record in records]


async def _reap_local(record: ServerRecord, here: Machine, grace: float) -> Outcome:
    process = record.process
    if process is None:
        return "not-ours"
    if process.machine.host != here.host:
        return "elsewhere"
    if process.machine.boot_id != here.boot_id:
        return "gone"  # the host has rebooted since, and the server with it
    members = live_group_members(process)
    if members is None:
        return "not-ours"
    if not members:
        return "gone"
    signal_group(process.group, signal.SIGTERM)
    if await _group_ends(process, grace):
        return "reaped"
    signal_group(process.group, signal.SIGKILL)
    return "reaped" if await _group_ends(process, KILL_WAIT) else "stuck"


async def _unknown_launcher(record: ServerRecord, here: Machine, grace: float) -> Outcome:
    return "unknown-launcher"


async def _reap_slurm(record: ServerRecord, here: Machine, grace: float) -> Outcome:
    if record.job_id is None:
        return "gone"
    try:
        outcome = await reap_job(record.job_id, grace)
    except SlurmUnavailable:
        return "no-slurm"
    return outcome


REAPERS: dict[str, Reaper] = {"local": _reap_local, "slurm": _reap_slurm}


async def _group_ends(process: ProcessIdentity, within: float) -> bool:
    deadline = time.monotonic() + within
    while live_group_members(process):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


def _record(row: Mapping[str, Any]) -> ServerRecord:
    process = None
    if row["pid"] is not None and row["pgid"] is not None:
        machine = Machine(row["host"], row["boot_id"] or "")
        process = ProcessIdentity(row["pid"], row["pgid"], row["start_time"], machine)
    return ServerRecord(
        row["id"],
        row["launcher"],
        row["job_id"],
        row["name"],
        row["host"],
        process,
        row["command"],
        row["log_file"],
        row["started"],
    )


_MESSAGES: dict[Outcome, str] = {
    "reaped": "stopped it (SIGTERM, then SIGKILL after {grace:g}s if needed)",
    "gone": "it had already exited",
    "not-ours": "its pid now belongs to another process (or this system cannot tell): left alone",
    "elsewhere": "it ran on host {host}: stop it there, or run mtbench there to reap it",
    "stuck": "it still runs after SIGKILL; the next run on this store tries again",
    "unknown-launcher": "this engine does not know launcher {launcher!r}; use a newer engine",
    "no-slurm": "Slurm does not answer here: cancel job {job} yourself (scancel {job})",
}
# A batch job's outcomes, where they differ from a process group's.
_JOB_MESSAGES: dict[Outcome, str] = {
    "reaped": "cancelled it (scancel) and saw it gone",
    "gone": "it had already ended",
    "not-ours": "that job id now names a job this engine did not submit: left alone",
    "stuck": "it still runs after scancel; the next run on this store tries again",
}
_UNRECORDED_MESSAGES: dict[Outcome, str] = {
    "reaped": "cancelled {jobs} (scancel), named {tag}...",
    "gone": "no job named {tag}... was left",
    "stuck": "{jobs} named {tag}... still run after scancel; the next run on this store retries",
    "no-slurm": "Slurm does not answer here: cancel the jobs named {tag}... yourself",
}


def _log_outcome(record: ServerRecord, outcome: Outcome, grace: float) -> None:
    process = record.process
    where = f"pid {process.pid}, group {process.group}" if process is not None else "no pid"
    if record.job_id is not None:
        where = f"{record.launcher} job {record.job_id}"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started))
    messages = _JOB_MESSAGES if record.job_id is not None else {}
    result = messages.get(outcome, _MESSAGES[outcome]).format(
        grace=grace,
        host=process.machine.host if process is not None else "?",
        launcher=record.launcher,
        job=record.job_id,
    )
    log.log(
        logging.INFO if outcome in ("gone", "not-ours") else logging.WARNING,
        "server of %s (%s, started %s by a run that did not stop it: `%s`; log %s): %s",
        record.name,
        where,
        started,
        record.command,
        record.log_file or "none",
        result,
    )
