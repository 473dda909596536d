"""Checkpoint sweeps whose servers run as Slurm jobs, against a real one-node Slurm cluster.

The cluster (tests/support/slurm_cluster.py) runs on this machine with NodeAddr=127.0.0.1 and four
fake GPUs; the servers are fake servers that record their node, GPUs and requests. Skipped, with
the reason, where the cluster cannot run (not root, Slurm or munge not installed).
"""

from __future__ import annotations

import logging
import re
import shlex
import signal
import socket
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.serving.slurm_jobs import job_name, store_tag
from engine.serving.sweep import server_log_stem
from tests.support.engineproc import ended, start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.gpu_server import COMMAND as GPU_SERVER
from tests.support.runconfig import mtbench, write_config
from tests.support.served_fake import checkpoint_folder
from tests.support.slurm_cluster import SlurmCluster

QUESTIONS = [81, 82]


def slurm_sweep(
    tmp_path: Path,
    fake: FakeServer | None,
    checkpoints: list[str],
    *,
    latency: float = 0.01,
    slurm: dict[str, Any] | None = None,
    **top: Any,
) -> tuple[Path, Path]:
    checkpoint_folder(tmp_path, checkpoints)
    events = tmp_path / "events.jsonl"
    serve = (
        f"{GPU_SERVER} {shlex.quote(str(events))} {{path}} --gpus {{gpus}} "
        f"--num-gpus {{num_gpus}} --port {{port}} --latency-median {latency}"
    )
    model = {
        "serve": serve,
        "checkpoints": "checkpoints/*.bin",
        "concurrency": 4,
        "launcher": "slurm",
        "gpus_per_server": 2,
        "ready_timeout": 60,
    }
    judge = None if fake is None else {"name": "judge-a", "base_url": fake.base_url}
    top.setdefault("server_slots", 2)
    config = write_config(
        tmp_path,
        models=[model],
        judge=judge,
        questions=QUESTIONS,
        slurm=slurm or {"time": "2:00"},
        **top,
    )
    return config, events


def read_events(events: Path) -> list[dict[str, Any]]:
    if not events.exists():
        return []
    return [orjson.loads(line) for line in events.read_bytes().splitlines()]


def counts(store: Path, table: str) -> dict[str, int]:
    with closing(sqlite3.connect(store)) as db:
        return dict(db.execute(f"SELECT model, COUNT(*) FROM {table} GROUP BY model"))


def job_rows(store: Path) -> list[tuple[str, str]]:
    if not store.exists():
        return []
    with closing(sqlite3.connect(store)) as db:
        try:
            return db.execute("SELECT launcher, job_id FROM servers").fetchall()
        except sqlite3.OperationalError:
            return []


def test_a_four_checkpoint_sweep_on_two_slurm_slots_is_stored_whole_and_leaves_no_job(
    tmp_path: Path, fake: FakeServer, slurm: SlurmCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    config, events = slurm_sweep(tmp_path, fake, ["step-1", "step-2", "step-3", "step-4"])
    progress = ("--progress", "plain", "--progress-interval", "0.1")
    code, out, err = mtbench(capsys, "run", "-c", str(config), *progress)
    assert code == 0, out + err
    assert re.search(r"progress step-\d: server (queued|starting): Slurm job \d+", err), err

    store = tmp_path / "store.sqlite"
    each = {f"step-{n}": 2 * len(QUESTIONS) for n in range(1, 5)}
    assert counts(store, "answers") == each
    assert counts(store, "judgments") == each
    assert slurm.jobs() == []  # every job cancelled and gone
    assert job_rows(store) == []
    starts = [e for e in read_events(events) if e["event"] == "start"]
    assert len(starts) == 4
    for start in starts:
        assert start["host"] == socket.gethostname()
        assert start["cuda"] in ("0,1", "2,3")  # Slurm's GPUs, as --gres=gpu:2 gave them
        assert start["gpus"] == start["cuda"] and start["num_gpus"] == "2"
    logs = sorted(p.name for p in (tmp_path / "servers").glob("*.slurm-*.log"))
    assert len(logs) == 4 and all(
        "mtbench: serving step-" in (tmp_path / "servers" / n).read_text() for n in logs
    )


def test_a_job_that_fails_to_start_fails_only_its_checkpoint_with_its_output_tail(
    tmp_path: Path, fake: FakeServer, slurm: SlurmCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    # Relative to the config file; a space and a `%j` in it that sbatch must not expand.
    shared = {"time": "2:00", "directory": "shared 100%j"}
    config, _ = slurm_sweep(tmp_path, fake, ["step-1", "step-2-broken", "step-3"], slurm=shared)
    code, out, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 1, out + err
    assert "bad magic number" in out  # the job's own last words, from its output file
    assert "ended before it was ready" in out and "Slurm job" in out
    store = tmp_path / "store.sqlite"
    assert counts(store, "answers") == {"step-1": 4, "step-3": 4}
    with closing(sqlite3.connect(store)) as db:
        failed = {model for (model,) in db.execute("SELECT DISTINCT model FROM failures")}
    assert failed == {"step-2-broken"}
    assert slurm.jobs() == []
    broken = list(
        (tmp_path / "shared 100%j").glob(f"{server_log_stem('step-2-broken')}.slurm-*.log")
    )
    assert len(broken) == 1 and str(broken[0]) in out
    assert not list((tmp_path / "servers").glob("*.slurm-*"))


def test_sigterm_to_the_engine_cancels_its_slurm_jobs(tmp_path: Path, slurm: SlurmCluster) -> None:
    config, events = slurm_sweep(tmp_path, None, ["step-1", "step-2", "step-3"], latency=2.0)
    engine = start_engine("generate", "-c", str(config), "--quiet")
    try:
        wait_until(lambda: len(read_events(events)) >= 2, timeout=60, interval=0.1)
        assert len(slurm.jobs()) >= 2
        engine.send_signal(signal.SIGTERM)
        _, err = ended(engine, timeout=60)
    finally:
        if engine.poll() is None:
            engine.kill()
    assert engine.returncode == 143, err
    assert slurm.jobs() == []
    assert job_rows(tmp_path / "store.sqlite") == []


def test_a_sigkilled_engine_leaves_its_jobs_and_the_next_run_cancels_them(
    tmp_path: Path,
    fake: FakeServer,
    slurm: SlurmCluster,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config, events = slurm_sweep(tmp_path, fake, ["step-1"], latency=60.0, server_slots=1)
    store = tmp_path / "store.sqlite"
    engine = start_engine("run", "-c", str(config), "--quiet")
    try:
        wait_until(lambda: read_events(events), timeout=60, interval=0.1)
    finally:
        engine.kill()
        engine.communicate()
    [(launcher, job_id)] = job_rows(store)
    assert launcher == "slurm"
    assert [job for job, _, _ in slurm.jobs()] == [job_id]  # Slurm keeps running it

    (tmp_path / "again").mkdir()
    fast, _ = slurm_sweep(tmp_path / "again", fake, ["step-1"], store=str(store))
    with caplog.at_level(logging.INFO, logger="engine.serving.server_records"):
        code, out, err = mtbench(capsys, "run", "-c", str(fast))
    assert code == 0, out + err
    lines = [r.getMessage() for r in caplog.records if r.name == "engine.serving.server_records"]
    assert len(lines) == 1 and f"slurm job {job_id}" in lines[0]
    assert "cancelled it (scancel)" in lines[0]
    assert "CANCELLED" in slurm.run("scontrol", "show", "job", job_id)
    assert slurm.jobs() == [] and job_rows(store) == []
    assert counts(store, "answers") == {"step-1": 4}


def test_a_job_that_ends_while_serving_fails_its_checkpoint_and_the_sweep_goes_on(
    tmp_path: Path, slurm: SlurmCluster
) -> None:
    # As preemption or a time limit would: Slurm ends the job under a serving checkpoint.
    config, _ = slurm_sweep(tmp_path, None, ["step-1", "step-2"], latency=1.0, server_slots=1)
    engine = start_engine("generate", "-c", str(config), "--quiet")
    try:
        store = tmp_path / "store.sqlite"
        wait_until(lambda: job_rows(store) and counts(store, "answers"), timeout=60, interval=0.1)
        [(job_id, name, _)] = slurm.jobs()  # serving: it has answered
        assert name == job_name(store_tag(store, socket.gethostname()), server_log_stem("step-1"))
        slurm.run("scancel", job_id)
        out, err = ended(engine, timeout=120)
    finally:
        if engine.poll() is None:
            engine.kill()
    assert engine.returncode == 1, out + err
    assert f"its server stopped: Slurm job {job_id} ended CANCELLED" in out, out
    assert "while the model still had work" in out
    assert "mtbench: serving step-1" in out  # the tail of its output file
    assert counts(store, "answers").get("step-2") == 2 * len(QUESTIONS)
    assert slurm.jobs() == [] and job_rows(store) == []


def test_a_job_sbatch_refuses_fails_its_checkpoint_with_sbatchs_message(
    tmp_path: Path, slurm: SlurmCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {"time": "2:00", "partition": "no-such-partition"}
    config, events = slurm_sweep(tmp_path, None, ["step-1"], slurm=bad)
    code, out, err = mtbench(capsys, "generate", "-c", str(config))
    assert code == 1, out + err
    assert "sbatch refused its job" in out and "invalid partition" in out.lower()
    assert "--partition=no-such-partition" in out
    assert not read_events(events) and slurm.jobs() == []
