"""Two windows in which a crash or a cluster's reset could cost a Slurm sweep something lasting.

An engine SIGKILLed after sbatch queued its job but before the store recorded the job's id: the
store recorded the submission before sbatch ran, and the job's name carries the store's tag, so the
next run on the store finds the job (squeue) and cancels it; a job of another store is left alone.
The window is held open by an sbatch wrapper on PATH that submits with the real sbatch and then
never answers.

An address file an earlier job left under the same job id (slurmctld restarted with a fresh state
gives ids again): the engine must not probe the port it names. The stale file points at a decoy
server; an sbatch wrapper makes the job's script start late (as a slow prolog or filesystem does),
so the engine finds the stale file while the job runs and before its own is written.

Against the real one-node cluster of tests/support/slurm_cluster.py.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
from pathlib import Path

import pytest

from engine.serving.slurm_jobs import job_name, store_tag
from engine.serving.sweep import server_log_stem
from tests.support.engineproc import start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import mtbench
from tests.support.slurm_cluster import SlurmCluster
from tests.test_slurm import QUESTIONS, counts, job_rows, read_events, slurm_sweep
from tests.test_slurm_outages import only_on_path


def sbatch_wrapper(bin_dir: Path, body: str) -> None:
    (bin_dir / "sbatch").write_text(f"#!/bin/bash\n{body}")
    (bin_dir / "sbatch").chmod(0o755)


def sleeping_job(slurm: SlurmCluster, tmp_path: Path, name: str) -> str:
    script = tmp_path / f"{name}.sh"
    script.write_text("#!/bin/bash\nsleep 300\n")
    out = slurm.run(
        "sbatch", "--parsable", f"--job-name={name}", f"--output={script}.out", str(script)
    )
    return out.strip().split(";")[0]


def test_an_engine_killed_between_sbatch_and_recording_the_job_id_leaves_no_job_behind(
    tmp_path: Path,
    fake: FakeServer,
    slurm: SlurmCluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config, _ = slurm_sweep(tmp_path, fake, ["step-1"], server_slots=1)
    store = tmp_path / "store.sqlite"
    path, real = os.environ["PATH"], shutil.which("sbatch")
    bin_dir = only_on_path(tmp_path, monkeypatch, ["scontrol", "scancel"])
    submitted = tmp_path / "submitted"
    sbatch_wrapper(bin_dir, f'{real} "$@" > /dev/null\necho $$ > {submitted}\nexec sleep 300\n')
    engine = start_engine("run", "-c", str(config), "--quiet")
    try:
        wait_until(lambda: submitted.exists() and submitted.read_text(), timeout=60)
        [(job_id, name, _)] = slurm.jobs()
        assert job_rows(store) == [("slurm", None)]  # the submission, recorded before sbatch ran
    finally:
        engine.kill()
        engine.communicate()
        os.kill(int(submitted.read_text()), signal.SIGKILL)  # the wrapper that never answers
    monkeypatch.setenv("PATH", path)
    host = socket.gethostname()
    assert name == job_name(store_tag(store, host), server_log_stem("step-1"))
    others = [
        sleeping_job(slurm, tmp_path, job_name(store_tag(tmp_path / "other.sqlite", host), "s")),
        sleeping_job(slurm, tmp_path, "mtbench-step-1"),
    ]

    with caplog.at_level(logging.INFO, logger="engine.serving.server_records"):
        code, out, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out + err
    [line] = [r.getMessage() for r in caplog.records if r.name == "engine.serving.server_records"]
    assert "killed before it recorded their ids" in line and f"cancelled {job_id} " in line, line
    assert "CANCELLED" in slurm.run("scontrol", "show", "job", job_id)
    assert sorted(job for job, _, _ in slurm.jobs()) == sorted(others)  # not this store's
    assert job_rows(store) == []
    assert counts(store, "answers") == {"step-1": 2 * len(QUESTIONS)}


def test_an_address_file_an_earlier_job_of_the_same_id_left_is_not_trusted(
    tmp_path: Path,
    fake: FakeServer,
    slurm: SlurmCluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, events = slurm_sweep(tmp_path, fake, ["step-1"], server_slots=1)
    probe = sleeping_job(slurm, tmp_path, "probe")
    slurm.run("scancel", probe)
    servers = tmp_path / "servers"
    servers.mkdir()
    real = shutil.which("sbatch")
    bin_dir = only_on_path(tmp_path, monkeypatch, ["scontrol", "scancel"])
    # The script (sbatch's last argument) starts 3 s late: sleep inserted after its first line.
    sbatch_wrapper(
        bin_dir,
        'script="${@: -1}"; late="$script.late"\n'
        '{ head -n 1 "$script"; echo "sleep 3"; tail -n +2 "$script"; } > "$late"\n'
        f'exec {real} "${{@:1:$#-1}}" "$late"\n',
    )
    with FakeServer() as decoy:
        for job in range(int(probe) + 1, int(probe) + 4):  # the ids the cluster gives next
            stale = f"{socket.gethostname()} {decoy.port} 0123456789abcdef\n"
            (servers / f"{server_log_stem('step-1')}.slurm-{job}.address").write_text(stale)
        code, out, err = mtbench(capsys, "run", "-c", str(config))
        assert code == 0, out + err
        assert decoy.stats()["by_kind"]["generation"] == 0
    assert counts(tmp_path / "store.sqlite", "answers") == {"step-1": 2 * len(QUESTIONS)}
    [stop] = [event for event in read_events(events) if event["event"] == "stop"]
    assert stop["requests"] == 2 * len(QUESTIONS)  # the job's own server answered them all
    assert slurm.jobs() == []
