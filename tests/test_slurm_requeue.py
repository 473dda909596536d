"""A Slurm job requeued (preempted, its node failed) while its server was starting fails its
checkpoint at once, as one requeued while serving does, instead of probing the port its first run
reported until `ready_timeout` (or, with Slurm's delay before a requeued job runs again, longer).
Against the real one-node cluster of tests/support/slurm_cluster.py; `scontrol requeue` stands in
for the preemption.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.engineproc import ended, start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import write_config
from tests.support.slurm_cluster import SlurmCluster
from tests.test_slurm import QUESTIONS, job_rows


def test_a_job_requeued_while_its_server_starts_fails_its_checkpoint_at_once(
    tmp_path: Path, fake: FakeServer, slurm: SlurmCluster
) -> None:
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
        servers = tmp_path / "servers"
        wait_until(lambda: list(servers.glob("*.address")), timeout=60, interval=0.1)
        time.sleep(1.5)  # three looks at the job: the engine has seen it run
        [(job_id, _, _)] = slurm.jobs()
        slurm.run("scontrol", "requeue", job_id)
        requeued = time.monotonic()
        out, err = ended(engine, timeout=60)
    finally:
        if engine.poll() is None:
            engine.kill()
    assert time.monotonic() - requeued < 30
    assert engine.returncode == 1, out + err
    assert f"Slurm job {job_id} was requeued" in out, out
    assert slurm.jobs() == [] and job_rows(tmp_path / "store.sqlite") == []
