"""A Slurm job that can never leave the queue fails its checkpoint instead of holding its slot
forever, against the real one-node cluster of tests/support/slurm_cluster.py.

Slurm keeps such a job pending with a reason that says so (DependencyNeverSatisfied here: it
depends on a job that failed); a sweep waiting on it would never end. A job pending for a reason
that passes (BeginTime: not before a given time) waits for it, and is served.
"""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import mtbench
from tests.support.slurm_cluster import SlurmCluster
from tests.test_slurm import counts, slurm_sweep


def failed_job(tmp_path: Path, slurm: SlurmCluster) -> str:
    script = tmp_path / "fails.sh"
    script.write_text("#!/bin/bash\nexit 1\n")
    job_id = slurm.run(
        "sbatch", "--parsable", "--job-name=other", f"--output={tmp_path}/fails.out", str(script)
    ).strip()
    deadline = time.monotonic() + 30
    while "JobState=FAILED" not in slurm.run("scontrol", "show", "job", job_id):
        assert time.monotonic() < deadline, slurm.run("scontrol", "show", "job", job_id)
        time.sleep(0.2)
    return job_id.split(";")[0]


def test_a_job_that_can_never_leave_the_queue_fails_its_checkpoint_and_the_sweep_goes_on(
    tmp_path: Path, fake: FakeServer, slurm: SlurmCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    depends = f"--dependency=afterok:{failed_job(tmp_path, slurm)}"
    config, _ = slurm_sweep(tmp_path, fake, ["step-1"], slurm={"extra_args": [depends]})
    code, out, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 1, out + err
    assert "reason DependencyNeverSatisfied" in out and "can never start" in out, out
    store = tmp_path / "store.sqlite"
    assert counts(store, "answers") == {}
    with closing(sqlite3.connect(store)) as db:
        assert {m for (m,) in db.execute("SELECT DISTINCT model FROM failures")} == {"step-1"}
    assert slurm.jobs() == []


def test_a_job_pending_until_its_begin_time_waits_for_it_and_is_served(
    tmp_path: Path, fake: FakeServer, slurm: SlurmCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    later = {"time": "2:00", "extra_args": ["--begin=now+3"]}  # reason BeginTime until then
    config, _ = slurm_sweep(tmp_path, fake, ["step-1"], slurm=later)
    progress = ("--progress", "plain", "--progress-interval", "0.1")
    code, out, err = mtbench(capsys, "run", "-c", str(config), *progress)
    assert code == 0, out + err
    assert re.search(r"server queued: Slurm job \d+ \(BeginTime\)", err), err
    assert counts(tmp_path / "store.sqlite", "answers") == {"step-1": 4}
    assert slurm.jobs() == []
