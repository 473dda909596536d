"""A signal that stops the engine while sbatch is still submitting a job must not leave the job
behind: the engine waits for sbatch's answer (bounded: sbatch runs with a time limit) to learn the
job's id, then cancels the job like every other, however often its shutdown cancels the start.

sbatch is slowed by a wrapper on PATH that submits with the real one, then takes its time to
answer (as a loaded slurmctld's sbatch does), in front of the real one-node cluster of
tests/support/slurm_cluster.py.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.support.engineproc import ended, start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.slurm_cluster import SlurmCluster
from tests.test_slurm import job_rows, slurm_sweep
from tests.test_slurm_outages import only_on_path


@pytest.mark.parametrize("signals", [1, 2], ids=["one-sigterm", "two-sigterms"])
def test_sigterm_while_sbatch_submits_cancels_the_job_it_submitted(
    tmp_path: Path,
    fake: FakeServer,
    slurm: SlurmCluster,
    monkeypatch: pytest.MonkeyPatch,
    signals: int,
) -> None:
    config, _ = slurm_sweep(tmp_path, fake, ["step-1"], server_slots=1)
    real = shutil.which("sbatch")
    bin_dir = only_on_path(tmp_path, monkeypatch, ["scontrol", "scancel"])
    submitted = tmp_path / "submitted"
    (bin_dir / "sbatch").write_text(
        f'#!/bin/bash\nout=$({real} "$@")\ntouch {submitted}\nsleep 2\necho "$out"\n'
    )
    (bin_dir / "sbatch").chmod(0o755)
    engine = start_engine("run", "-c", str(config), "--quiet")
    try:
        wait_until(submitted.exists, timeout=30, interval=0.05)
        assert len(slurm.jobs()) == 1
        for _ in range(signals):
            engine.send_signal(signal.SIGTERM)
            time.sleep(0.2)
        _, err = ended(engine, timeout=60)
    finally:
        if engine.poll() is None:
            engine.kill()
    assert engine.returncode in (1, 143), err
    assert slurm.jobs() == []
    assert job_rows(tmp_path / "store.sqlite") == []
