"""A Slurm job requeued (preempted, its node failed) while its server was starting fails its
checkpoint at once, as one requeued while serving does, instead of probing the port its first run
reported until `ready_timeout` (or waiting out Slurm's delay before a requeued job runs again).

Slurm shows a requeue as COMPLETING, then PENDING with reason BeginTime for its delay, then RUNNING
again, every time with `Restarts` above 0. Whichever of those looks the engine catches, it is the
same outcome and the same message: once while the engine watches, and once with the engine stopped
(SIGSTOP) from before the job ran until after the requeue, so that its first look after it finds
the job requeued (COMPLETING, or PENDING with reason BeginTime), never having seen it run (a loaded
CI machine once failed this test with "ended PENDING, reason BeginTime"). There an sbatch wrapper
on PATH submits the job held (`--hold`), and the test releases it once the engine is stopped.
Against the real one-node cluster of tests/support/slurm_cluster.py; `scontrol requeue` stands in
for the preemption.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from engine.serving.slurm import NEVER_RUNS
from engine.serving.slurm_jobs import GONE, JobState, requeued
from tests.support.engineproc import ended, start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import write_config
from tests.support.slurm_cluster import SlurmCluster
from tests.test_slurm import QUESTIONS, job_rows
from tests.test_slurm_outages import only_on_path

# Well under Slurm's delay before a requeued job runs again (121 s): the engine did not wait it out.
WITHIN = 90.0


def requeued_run(tmp_path: Path, fake: FakeServer, slurm: SlurmCluster, *, paused: bool) -> str:
    """Run a sweep whose one job is requeued once it runs; the job's id. `paused`: the engine
    stopped from while its job is held in the queue until the requeue is done."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step-1.bin").write_bytes(b"weights")
    model = {  # never ready: it sleeps once its port is reported
        "serve": "bash -c 'sleep 300' {port} {path}",
        "checkpoints": "checkpoints/*.bin",
        "launcher": "slurm",
        "gpus_per_server": 0,
        "ready_timeout": 600,
    }
    judge = {"name": "judge-a", "base_url": fake.base_url}
    config = write_config(
        tmp_path, models=[model], judge=judge, questions=QUESTIONS, slurm={"time": "5:00"}
    )
    engine = start_engine("run", "-c", str(config), "--quiet")
    try:
        [(job_id, _, _)] = wait_until(slurm.jobs, timeout=60, interval=0.1)
        if paused:
            engine.send_signal(signal.SIGSTOP)
            slurm.run("scontrol", "release", job_id)
        servers = tmp_path / "servers"
        wait_until(lambda: list(servers.glob("*.address")), timeout=60, interval=0.1)  # it runs
        slurm.run("scontrol", "requeue", job_id)
        # Not PENDING: a watching engine may have cancelled the job before it shows that.
        wait_until(
            lambda: "Restarts=1" in slurm.run("scontrol", "show", "job", job_id), interval=0.1
        )
        engine.send_signal(signal.SIGCONT)
        out, err = ended(engine, timeout=WITHIN)
    finally:
        if engine.poll() is None:
            engine.kill()
    assert engine.returncode == 1, out + err
    assert f"Slurm job {job_id} was requeued" in out, out
    return job_id


@pytest.mark.parametrize("paused", [False, True], ids=["watched", "paused-through-the-requeue"])
def test_a_job_requeued_while_its_server_starts_fails_its_checkpoint_as_requeued(
    tmp_path: Path,
    fake: FakeServer,
    slurm: SlurmCluster,
    monkeypatch: pytest.MonkeyPatch,
    paused: bool,
) -> None:
    if paused:
        real = shutil.which("sbatch")
        sbatch = only_on_path(tmp_path, monkeypatch, ["scontrol", "scancel"]) / "sbatch"
        sbatch.write_text(f'#!/bin/bash\nexec {real} --hold "$@"\n')
        sbatch.chmod(0o755)
    job_id = requeued_run(tmp_path, fake, slurm, paused=paused)
    store = tmp_path / "store.sqlite"
    with closing(sqlite3.connect(store)) as db:
        failures = db.execute("SELECT model, error_class, message FROM failures").fetchall()
    assert {(model, error_class) for model, error_class, _ in failures} == {
        ("step-1", "server"),  # each question's first turn: the server failed
        ("step-1", "dependency"),  # what needed those answers
    }
    server = [message for _, error_class, message in failures if error_class == "server"]
    assert len(server) == len(QUESTIONS)
    for message in server:
        assert f"Slurm job {job_id} was requeued (" in message and "did not get ready" in message
        assert "ended PENDING" not in message and "can never start" not in message
    assert slurm.jobs() == [] and job_rows(store) == []


def test_a_requeue_is_known_by_restarts_or_pending_after_running_not_by_begin_time() -> None:
    assert requeued(JobState("COMPLETING", "None", restarts=1), seen_running=False)
    assert requeued(JobState("PENDING", "BeginTime", restarts=1), seen_running=False)
    assert requeued(JobState("RUNNING", "None", restarts=1), seen_running=False)
    assert requeued(JobState("REQUEUED", "None"), seen_running=False)
    assert requeued(JobState("PENDING", "None"), seen_running=True)
    assert not requeued(JobState("PENDING", "BeginTime"), seen_running=False)  # --begin
    assert not requeued(JobState("COMPLETING", "None"), seen_running=True)  # an ordinary end
    assert not requeued(JobState(GONE), seen_running=True)
    assert "BeginTime" not in NEVER_RUNS
