"""A real one-node Slurm cluster on this machine, for the tests of servers run as Slurm jobs.

Debian's `slurm-wlm` and `munge` packages, run as root: `munged` (as the `munge` user), then
`slurmctld` (until `scontrol ping` says UP) and `slurmd`, all from one temporary directory with its
own slurm.conf, state, spool, logs, pid files and munge socket, on free ports, so nothing of the
machine's own Slurm (if any) is touched. `NodeAddr=127.0.0.1` keeps Slurm's traffic, and the
engine's probes of the servers, on the loopback interface. Four fake GPUs are declared through
gres.conf and character devices made with mknod, so `--gres=gpu:2` jobs get
`CUDA_VISIBLE_DEVICES` 0,1 and 2,3. Timers are short, so jobs start and end within a second.

Commands reach this cluster through `SLURM_CONF` (`SlurmCluster.env`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue", "scancel", "mknod")
MUNGE_KEY = Path("/etc/munge/munge.key")
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class SlurmCluster:
    directory: Path

    @property
    def conf(self) -> Path:
        return self.directory / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *argv: str) -> str:
        done = subprocess.run(
            argv, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=60
        )
        return done.stdout

    def jobs(self) -> list[tuple[str, str, str]]:
        """(job id, name, state) of every job Slurm still lists (pending, running, completing)."""
        out = self.run("squeue", "--noheader", "--format=%i|%j|%T")
        return [tuple(line.split("|")) for line in out.splitlines() if line.strip()]  # type: ignore[misc]

    def cancel_all(self) -> None:
        for job_id, _, _ in self.jobs():
            self.run("scancel", job_id)
        deadline = time.monotonic() + START_TIMEOUT
        while self.jobs() and time.monotonic() < deadline:
            time.sleep(0.2)


def unavailable() -> str | None:
    """Why this machine cannot run the test cluster, or None."""
    if os.geteuid() != 0:
        return "the Slurm tests start slurmctld, slurmd and munged, which needs root"
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install -y slurm-wlm munge)"
    if not MUNGE_KEY.exists():
        return f"{MUNGE_KEY} is missing (reinstall munge)"
    return None


def start_cluster() -> SlurmCluster:
    directory = Path(tempfile.mkdtemp(prefix="mtbench-slurm-"))
    directory.chmod(0o755)  # munged insists that everyone may reach its socket's directory
    cluster = SlurmCluster(directory)
    try:
        _prepare(directory)
        _start_munge(directory)
        _start_slurm(cluster)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: SlurmCluster) -> None:
    """Cancel every job, stop the three daemons (by their pid files) and remove the directory."""
    if (cluster.directory / "slurmctld.pid").exists():
        cluster.cancel_all()
    for pid_file in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
        _stop(cluster.directory / pid_file)
    shutil.rmtree(cluster.directory, ignore_errors=True)


def _prepare(directory: Path) -> None:
    for sub in ("state", "spool", "log", "dev"):
        (directory / sub).mkdir()
    munge = directory / "munge"
    munge.mkdir(mode=0o755)
    shutil.chown(munge, "munge", "munge")
    for index in range(4):
        subprocess.run(
            ["mknod", str(directory / "dev" / f"fakegpu{index}"), "c", "195", str(index)],
            check=True,
        )
    (directory / "gres.conf").write_text(f"Name=gpu File={directory}/dev/fakegpu[0-3]\n")
    (directory / "slurm.conf").write_text(_slurm_conf(directory))


def _slurm_conf(directory: Path) -> str:
    host = socket.gethostname()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2
    return f"""\
ClusterName=mtbenchtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={directory}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={directory}/state
SlurmdSpoolDir={directory}/spool
SlurmctldPidFile={directory}/slurmctld.pid
SlurmdPidFile={directory}/slurmd.pid
SlurmctldLogFile={directory}/log/slurmctld.log
SlurmdLogFile={directory}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
MessageTimeout=5
KillWait=2
MinJobAge=300
InactiveLimit=0
SlurmctldTimeout=10
SlurmdTimeout=30
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory={memory} Gres=gpu:4 \
State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""


def _start_munge(directory: Path) -> None:
    munge = directory / "munge"
    subprocess.run(
        [
            "runuser",
            "-u",
            "munge",
            "--",
            "munged",
            f"--socket={munge}/munge.socket",
            f"--pid-file={munge}/munged.pid",
            f"--log-file={munge}/munged.log",
            f"--seed-file={munge}/seed",
            f"--key-file={MUNGE_KEY}",
        ],
        check=True,
        timeout=START_TIMEOUT,
    )


def _start_slurm(cluster: SlurmCluster) -> None:
    env = {**os.environ, **cluster.env}
    subprocess.run(["slurmctld"], env=env, check=True, timeout=START_TIMEOUT)
    _wait_for(lambda: "is UP" in cluster.run("scontrol", "ping"), "slurmctld to answer")
    subprocess.run(["slurmd"], env=env, check=True, timeout=START_TIMEOUT)
    _wait_for(
        lambda: "idle" in cluster.run("sinfo", "--noheader", "--format=%T"), "the node to be idle"
    )


def _wait_for(condition: object, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + START_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test Slurm cluster: gave up waiting for {what}")
        time.sleep(0.2)


def _stop(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
