"""The job script of a server run as a Slurm job, run by bash here without Slurm.

It must pick a port no one listens on, report it through its address file, and run the serve
command with that port and the job's GPUs spliced in, every other word passed as it was written
(spaces, quotes, dollars and all).
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from engine.config import SlurmOptions
from engine.serving.serve import ServerSpec
from engine.serving.slurm_script import address_file, job_script, sbatch_arguments

AWKWARD_PATH = '/ckpt/it\'s a "step" $HOME `id` 100'


def run_script(tmp_path: Path, command: str) -> tuple[list[str], list[str]]:
    """Run the script for `command` as Slurm would (job 42, GPUs 0,1); (its lines, the address
    file's words)."""
    spec = ServerSpec(command, path=AWKWARD_PATH, name="step-100", num_gpus=2)
    script = tmp_path / "job.sh"
    script.write_text(job_script(spec, tmp_path, "step-100", "n0nce"))
    env = {**os.environ, "SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "0,1"}
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=30, check=True
    )
    address = address_file(tmp_path, "step-100", "42").read_text().split()
    return done.stdout.splitlines(), address


def test_the_job_runs_the_command_with_its_own_port_and_gpus_and_every_word_intact(
    tmp_path: Path,
) -> None:
    lines, (host, port, nonce) = run_script(
        tmp_path, "printf '%s\\n' {path} --port={port} x{gpus}y {num_gpus} '{name} two'"
    )
    assert host == socket.gethostname() and nonce == "n0nce"
    assert lines[0].startswith("mtbench: serving step-100 on ") and "GPUs: 0,1" in lines[0]
    assert lines[1:] == [AWKWARD_PATH, f"--port={port}", "x0,1y", "2", "step-100 two"]
    ephemeral_start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert 10000 <= int(port) < max(ephemeral_start, 11025)


def test_sbatch_asks_for_the_servers_gpus_unless_the_slurm_table_does() -> None:
    plain = sbatch_arguments(SlurmOptions(), job_name="mtbench-a", output="o", gpus_per_server=2)
    assert "--gres=gpu:2" in plain and "--parsable" in plain
    options = SlurmOptions(
        partition="gpu", gpus="a100:4", time="4:00:00", account="lab", extra_args=("--exclusive",)
    )
    chosen = sbatch_arguments(options, job_name="mtbench-a", output="o", gpus_per_server=2)
    assert "--gpus=a100:4" in chosen and not any(a.startswith("--gres") for a in chosen)
    assert {"--partition=gpu", "--time=4:00:00", "--account=lab"} <= set(chosen)
    assert chosen[-1] == "--exclusive"
    none = sbatch_arguments(SlurmOptions(), job_name="mtbench-a", output="o", gpus_per_server=0)
    assert not any("gpu" in a for a in none)


def test_a_model_name_with_quotes_backticks_or_newlines_is_echoed_as_text_not_run(
    tmp_path: Path,
) -> None:
    name = 'step "1 `echo INJECTED` $HOME\nsecond line'
    spec = ServerSpec("printf '%s\\n' {name}", path="/ckpt", name=name, num_gpus=0)
    script = tmp_path / "job.sh"
    script.write_text(job_script(spec, tmp_path, "step-1", "n0nce"))
    env = {**os.environ, "SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"mtbench: serving {name} on ")
    assert done.stdout.endswith(f"GPUs: none\n{name}\n")
