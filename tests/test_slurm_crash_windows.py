"""An address file an earlier job left under the same job id (slurmctld restarted with a fresh state
gives ids again): the engine must not probe the port it names. The stale file points at a decoy
server; an sbatch wrapper makes the job's script start late (as a slow prolog or filesystem does),
so the engine finds the stale file while the job runs and before its own is written.

Against the real one-node cluster of tests/support/slurm_cluster.py.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import mtbench
from tests.support.slurm_cluster import SlurmCluster
from tests.test_slurm import QUESTIONS, counts, read_events, slurm_sweep
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
            (servers / f"step-1.slurm-{job}.address").write_text(stale)
        code, out, err = mtbench(capsys, "run", "-c", str(config))
        assert code == 0, out + err
        assert decoy.stats()["by_kind"]["generation"] == 0
    assert counts(tmp_path / "store.sqlite", "answers") == {"step-1": 2 * len(QUESTIONS)}
    [stop] = [event for event in read_events(events) if event["event"] == "stop"]
    assert stop["requests"] == 2 * len(QUESTIONS)  # the job's own server answered them all
    assert slurm.jobs() == []
