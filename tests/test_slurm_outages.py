"""When Slurm's client commands are missing or slurmctld stops answering for a while.

A missing scontrol or scancel is refused before anything starts (a job would otherwise be
submitted and then never seen running, nor cancelled). A slurmctld that does not answer for a while
is asked again until it does, with one warning line for the outage, not two lines a second. The
outage is a wrapper `scontrol` on PATH that fails as Slurm's does while a flag file exists, in
front of the real one-node cluster of tests/support/slurm_cluster.py. An scontrol that answers
without a job state (a broken site wrapper) is no answer either: never the job's end, which would
make the reaper forget a running job. An sbatch that a site wraps, adding lines and answering
`Submitted batch job N` despite --parsable, still gives the job's id (else the job ran unwatched).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

from engine.serving.slurm_jobs import SlurmUnavailable, reap_job
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import mtbench
from tests.support.slurm_cluster import SlurmCluster
from tests.test_slurm import counts, slurm_sweep

OUTAGE = 3.0  # seconds: six looks at the job


def only_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, names: list[str]) -> Path:
    """A PATH holding only `names` of Slurm's commands (and everything else of this machine's)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        for entry in Path(directory or ".").glob("*") if Path(directory or ".").is_dir() else []:
            target = bin_dir / entry.name
            if entry.name in ("sbatch", "scontrol", "scancel") and entry.name not in names:
                continue
            if not target.exists() and not target.is_symlink():
                target.symlink_to(entry)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_slurm_launcher_without_scontrol_or_scancel_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config, events = slurm_sweep(tmp_path, None, ["step-1"], server_slots=1)
    only_on_path(tmp_path, monkeypatch, ["sbatch"])
    code, _, err = mtbench(capsys, "generate", "-c", str(config))
    assert code == 2, err
    line = err.strip()
    assert "\n" not in line and "scontrol and scancel not on PATH" in line, line
    assert not events.exists() and not (tmp_path / "store.sqlite").exists()


def test_a_slurm_that_stops_answering_for_a_while_is_one_warning_and_the_sweep_goes_on(
    tmp_path: Path,
    fake: FakeServer,
    slurm: SlurmCluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config, _ = slurm_sweep(tmp_path, fake, ["step-1"], server_slots=1)
    bin_dir = only_on_path(tmp_path, monkeypatch, ["sbatch", "scancel"])
    flag = tmp_path / "outage"
    real = shutil.which("scontrol", path="/usr/bin:/usr/local/bin:/bin") or "scontrol"
    # Fails while the flag exists, and ends the outage itself after OUTAGE seconds.
    (bin_dir / "scontrol").write_text(
        "#!/bin/bash\n"
        f"if [ -e {flag} ]; then\n"
        f"  [ $(( $(date +%s) - $(stat -c %Y {flag}) )) -ge {OUTAGE:g} ] && rm -f {flag}\n"
        '  echo "slurm_load_jobs error: Unable to contact slurm controller (connect failure)" >&2\n'
        "  exit 1\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    (bin_dir / "scontrol").chmod(0o755)
    flag.touch()
    started = time.monotonic()
    code, out, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out + err
    assert time.monotonic() - started >= OUTAGE
    assert counts(tmp_path / "store.sqlite", "answers") == {"step-1": 4}
    warnings = [r.getMessage() for r in caplog.records if "Unable to contact" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert slurm.jobs() == []


def test_an_scontrol_answer_without_a_job_state_is_no_answer_and_never_the_jobs_end(
    tmp_path: Path, slurm: SlurmCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\nsleep 120\n")
    output = f"--output={tmp_path}/job.out"  # not slurm-N.out where the tests run
    submitted = slurm.run("sbatch", "--parsable", "--job-name=mtbench-step-1", output, str(script))
    job_id = submitted.strip().split(";")[0]
    bin_dir = only_on_path(tmp_path, monkeypatch, ["sbatch", "scancel"])
    (bin_dir / "scontrol").write_text("#!/bin/bash\necho 'No output: the site wrapper is down'\n")
    (bin_dir / "scontrol").chmod(0o755)
    with pytest.raises(SlurmUnavailable, match="the site wrapper is down"):
        asyncio.run(reap_job(job_id, 5.0))  # the reaper keeps its record: "no-slurm"
    assert [job for job, _, _ in slurm.jobs()] == [job_id]  # neither forgotten nor cancelled


def test_an_sbatch_whose_site_wrapper_adds_lines_and_drops_parsable_still_gives_the_job_id(
    tmp_path: Path,
    fake: FakeServer,
    slurm: SlurmCluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, _ = slurm_sweep(tmp_path, fake, ["step-1"], server_slots=1)
    real = shutil.which("sbatch")
    bin_dir = only_on_path(tmp_path, monkeypatch, ["scontrol", "scancel"])
    (bin_dir / "sbatch").write_text(
        "#!/bin/bash\n"
        'echo "Welcome to the cluster: remember your quota"\n'
        'args=(); for a in "$@"; do [ "$a" = --parsable ] || args+=("$a"); done\n'
        f'exec {real} "${{args[@]}}"\n'
    )
    (bin_dir / "sbatch").chmod(0o755)
    code, out, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out + err
    assert counts(tmp_path / "store.sqlite", "answers") == {"step-1": 4}
    assert slurm.jobs() == []
