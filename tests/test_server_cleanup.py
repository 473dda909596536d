"""Model servers die with the engine, even when it is SIGKILLed.

The kernel sends each server SIGTERM when the engine dies (PR_SET_PDEATHSIG), and each running
server is in the store's `servers` table until its process group is gone, so the next run on the
store reaps what that signal could not reach. Real processes throughout: the CLI in a subprocess
(on uvloop, as users run it), a served fake model, shell wrappers that fork a worker, and
bystander processes that must survive.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shlex
import sqlite3
import subprocess
import time
import urllib.request
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from engine.serving.processes import Machine, ProcessIdentity, identify
from engine.serving.serve import StartedServer
from engine.serving.server_records import Outcome, StoreServerRecords, reap_leftover_servers
from engine.store.store import open_store
from tests.support.engineproc import start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.llamacpp import process_running
from tests.support.runconfig import mtbench, write_config
from tests.support.served_fake import COMMAND as SERVED_FAKE
from tests.support.server_wrappers import ServerPids, kill_quietly, server_wrapper, wait_gone

QUESTIONS = [81, 101]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sweep_with_wrapper(
    tmp_path: Path, fake: FakeServer, *, passes_sigterm_on: bool
) -> tuple[Path, ServerPids]:
    """A one-checkpoint sweep whose server forks a worker; SERVED_LATENCY slows its answers."""
    events = tmp_path / "events.jsonl"
    server = (
        f"{SERVED_FAKE} "
        f'{shlex.quote(str(events))} "$1" --port "$2" --latency-median "${{SERVED_LATENCY:-0.005}}"'
    )
    script = server_wrapper(tmp_path / "server", server, passes_sigterm_on=passes_sigterm_on)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step-100.bin").write_bytes(b"weights")
    model = {
        "serve": f"sh {shlex.quote(str(script))} {{path}} {{port}}",
        "checkpoints": "checkpoints/*.bin",
        "concurrency": 4,
    }
    judge = {"name": "judge-a", "base_url": fake.base_url, "concurrency": 2}
    config = write_config(tmp_path, models=[model], judge=judge, questions=QUESTIONS)
    return config, ServerPids(tmp_path / "server")


def server_rows(store: Path) -> list[tuple[int, str]]:
    """(pid, command) of every recorded server; none while the store is not yet migrated."""
    if not store.exists():
        return []
    with closing(sqlite3.connect(store)) as db:
        try:
            return db.execute("SELECT pid, command FROM servers").fetchall()
        except sqlite3.OperationalError:
            return []


def requests_received(port: int) -> int:
    try:
        with _OPENER.open(f"http://127.0.0.1:{port}/stats?arrivals=0", timeout=1) as reply:
            return int(json.loads(reply.read())["requests"])
    except OSError:
        return 0


def kill_engine_while_serving(config: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Start `mtbench run`, SIGKILL it once its server is answering requests; the server's pid."""
    store = config.parent / "store.sqlite"
    monkeypatch.setenv("SERVED_LATENCY", "60")  # nothing finishes before the kill
    engine = start_engine("run", "-c", str(config), "--quiet")
    try:
        (pid, command), *_ = wait_until(lambda: server_rows(store), timeout=60)
        found = re.search(r" (\d+)$", command)  # the wrapper takes {port} last
        assert found is not None, command
        wait_until(lambda: requests_received(int(found.group(1))) > 0, timeout=60)
    finally:
        engine.kill()
        engine.communicate()
        monkeypatch.delenv("SERVED_LATENCY")
    return int(pid)


def test_a_sigkilled_engine_takes_its_server_and_the_servers_worker_with_it(
    tmp_path: Path, fake: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, pids = sweep_with_wrapper(tmp_path, fake, passes_sigterm_on=True)
    leader = kill_engine_while_serving(config, monkeypatch)
    server, worker = pids.server(), pids.worker()
    try:
        assert server is not None and worker is not None
        assert wait_gone([leader, server, worker], timeout=10) == []
        assert pids.sigterms() >= 1  # SIGTERM: the wrapper stopped its worker itself
    finally:
        kill_quietly([leader, server, worker])


def test_the_next_run_reaps_a_worker_that_outlived_its_sigkilled_engine_and_completes(
    tmp_path: Path,
    fake: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config, pids = sweep_with_wrapper(tmp_path, fake, passes_sigterm_on=False)
    store = tmp_path / "store.sqlite"
    leader = kill_engine_while_serving(config, monkeypatch)
    worker = pids.worker()
    try:
        assert worker is not None
        assert wait_gone([leader], timeout=10) == []  # the kernel's SIGTERM reached the server,
        assert process_running(worker)  # but not the worker it forked
        assert [pid for pid, _ in server_rows(store)] == [leader]

        with caplog.at_level(logging.INFO, logger="engine.serving.server_records"):
            code, out, err = mtbench(capsys, "run", "-c", str(config))
        assert code == 0, out + err
        assert not process_running(worker)
        lines = [
            r.getMessage() for r in caplog.records if r.name == "engine.serving.server_records"
        ]
        assert len(lines) == 1
        assert f"server of step-100 (pid {leader}, group {leader}" in lines[0]
        assert "stopped it" in lines[0]
        assert server_rows(store) == []  # the reaped record, and this run's own server's
        with closing(sqlite3.connect(store)) as db:
            answers = db.execute("SELECT COUNT(*) FROM answers WHERE model = 'step-100'")
            assert answers.fetchone()[0] == 2 * len(QUESTIONS)
    finally:
        kill_quietly([leader, worker])


def add_record(store: Path, process: ProcessIdentity) -> None:
    async def scenario() -> None:
        opened = await open_store(store, write=True)
        try:
            server = StartedServer(process, "step-100", "sleep 60", None, time.time())
            await StoreServerRecords(opened).add(server)
        finally:
            await opened.close()

    asyncio.run(scenario())


def reap(store: Path, *, grace: float = 10.0) -> list[Outcome]:
    async def scenario() -> list[Outcome]:
        opened = await open_store(store, write=True)
        try:
            return await reap_leftover_servers(opened, grace=grace)
        finally:
            await opened.close()

    return asyncio.run(scenario())


def identity_of(process: subprocess.Popen[str]) -> ProcessIdentity:
    identity = identify(process.pid, group=process.pid)
    assert identity is not None and identity.start_time is not None
    return identity


def test_a_record_whose_pid_now_belongs_to_another_process_kills_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True, text=True)
    try:
        identity = identity_of(bystander)
        assert identity.start_time is not None
        # The recorded server had this pid and group, but started earlier: the pid was recycled.
        add_record(store, replace(identity, start_time=identity.start_time - 1))
        assert reap(store) == ["not-ours"]
        assert process_running(bystander.pid)
        assert server_rows(store) == []
    finally:
        bystander.kill()
        bystander.wait()


def test_a_recorded_group_that_ignores_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "store.sqlite"
    stubborn = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; sleep 60 & echo $!; wait"],
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stubborn.stdout is not None
    worker = int(stubborn.stdout.readline())
    try:
        add_record(store, identity_of(stubborn))
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="engine.serving.server_records"):
            assert reap(store, grace=0.5) == ["reaped"]
        assert 0.5 <= time.monotonic() - started < 5
        assert not process_running(stubborn.pid)
        assert not process_running(worker)
        assert server_rows(store) == []
        assert [r.getMessage().count(f"pid {stubborn.pid},") for r in caplog.records] == [1]
    finally:
        kill_quietly([stubborn.pid, worker])
        stubborn.wait()


def test_records_from_another_host_are_kept_and_from_an_earlier_boot_forgotten_killing_nothing(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store.sqlite"
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True, text=True)
    try:
        identity = identity_of(bystander)
        here = identity.machine
        add_record(store, replace(identity, machine=Machine("gpu-node-7", here.boot_id)))
        add_record(store, replace(identity, machine=Machine(here.host, "an-earlier-boot")))
        assert sorted(reap(store)) == ["elsewhere", "gone"]
        assert process_running(bystander.pid)
        with closing(sqlite3.connect(store)) as db:
            assert db.execute("SELECT host FROM servers").fetchall() == [("gpu-node-7",)]
    finally:
        bystander.kill()
        bystander.wait()
