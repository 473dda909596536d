"""Slurm's job commands as the engine uses them: submit-free queries, cancellation, reaping.

`engine.serving.slurm` runs model servers as Slurm jobs; this module is how it talks to Slurm about
a job once it exists: its state (`scontrol show job`), whether Slurm has requeued it (`requeued`),
its node's address (`scontrol show node`), cancelling it and waiting until no process of it is left
(`scancel`), and cancelling one a dead engine left behind: recorded (`reap_job`), or submitted and
killed before its id was recorded, found by its store's tag in its name (`reap_unrecorded`).
Every command runs with a time limit, and a command that cannot run or does not answer is
`SlurmUnavailable`, which callers treat as "ask again later", never as the job's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.redact import redact
from engine.serving.slurm_script import JOB_NAME_PREFIX

__all__ = [
    "GONE",
    "LIVE_STATES",
    "POLL",
    "QUEUED_STATES",
    "JobState",
    "SlurmUnavailable",
    "cancel_and_wait",
    "final_state",
    "job_name",
    "job_state",
    "last_line",
    "node_address",
    "reap_job",
    "reap_unrecorded",
    "requeued",
    "run_command",
    "store_tag",
]

POLL = 0.5  # seconds between looks at a job
COMMAND_TIMEOUT = 60.0  # a slurmctld under load answers slowly, but answers
# Every state in which a job may still hold processes (and GPUs) on a node.
LIVE_STATES = frozenset(
    {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED"}
    | {"REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT"}
)
QUEUED_STATES = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"})
REQUEUE_STATES = frozenset({"REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"})
GONE = "GONE"  # Slurm has forgotten the job (it ended more than MinJobAge ago)
_FIELD = re.compile(r"(\w[\w/:]*)=(\S*)")


class SlurmUnavailable(Exception):
    """Slurm's commands cannot be run here, or slurmctld does not answer."""


@dataclass(frozen=True, slots=True)
class JobState:
    state: str
    reason: str = ""
    host: str = ""  # the node running its batch script
    exit_code: str = ""
    name: str = ""
    restarts: int = 0  # how often Slurm has requeued it

    def describe(self, job_id: str) -> str:
        if self.state == GONE:
            return f"Slurm job {job_id} has ended"
        code = f", exit code {self.exit_code}" if self.exit_code not in ("", "0:0") else ""
        reason = f", reason {self.reason}" if self.reason not in ("", "None") else ""
        return f"Slurm job {job_id} ended {self.state}{code}{reason}"


async def run_command(*argv: str) -> tuple[int, str, str]:
    """Run one Slurm command; its exit code, stdout and stderr."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise SlurmUnavailable(f"cannot run {argv[0]} ({exc.strerror})") from None
    # Not asyncio.wait_for: before Python 3.12 it can swallow a cancellation that arrives as
    # the command ends, and a watcher told to stop would then poll its job until the job ends.
    talk = asyncio.ensure_future(process.communicate())
    try:
        done, _ = await asyncio.wait({talk}, timeout=COMMAND_TIMEOUT)
    finally:
        if not talk.done():  # cancelled, or no answer in time
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            talk.cancel()
    if not done:
        raise SlurmUnavailable(f"{argv[0]} did not answer in {COMMAND_TIMEOUT:g}s")
    out, err = talk.result()
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def job_state(job_id: str) -> JobState:
    """What Slurm says of the job now (`scontrol show job`); GONE once it has forgotten it."""
    code, out, err = await run_command("scontrol", "show", "job", "--oneliner", job_id)
    if code != 0:
        if "Invalid job id" in err:
            return JobState(GONE)
        raise SlurmUnavailable(f"scontrol show job {job_id}: {last_line(err)}")
    fields = dict(_FIELD.findall(out))
    if "JobState" not in fields:  # not an answer about the job: never take it for its end
        raise SlurmUnavailable(f"scontrol show job {job_id} answered {last_line(out)[:200]!r}")
    restarts = fields.get("Restarts", "")
    return JobState(
        fields["JobState"],
        fields.get("Reason", ""),
        fields.get("BatchHost", ""),
        fields.get("ExitCode", ""),
        fields.get("JobName", ""),
        int(restarts) if restarts.isdigit() else 0,
    )


def requeued(job: JobState, seen_running: bool) -> bool:
    """Whether Slurm has put the job back in its queue after it ran (preempted, its node failed,
    `scontrol requeue`), whichever look catches it: COMPLETING, then PENDING with reason BeginTime
    for Slurm's requeue delay, then RUNNING again, all with `Restarts` above 0; or pending again
    after the engine saw it run. Its next run is another server, on another port, and later."""
    if job.state == GONE:
        return False
    return (
        job.restarts > 0
        or job.state in REQUEUE_STATES
        or (seen_running and job.state in QUEUED_STATES)
    )


async def node_address(node: str) -> str:
    """The address Slurm has for `node` (`NodeAddr`), where its servers are reached."""
    code, out, err = await run_command("scontrol", "show", "node", "--oneliner", node)
    if code != 0:
        raise SlurmUnavailable(f"scontrol show node {node}: {last_line(err)}")
    return dict(_FIELD.findall(out)).get("NodeAddr") or node


async def cancel_and_wait(job_id: str, within: float) -> bool:
    """scancel the job, then wait until none of its processes is left; False if still live."""
    code, _, err = await run_command("scancel", job_id)
    if code != 0 and "Invalid job id" not in err:
        raise SlurmUnavailable(f"scancel {job_id}: {last_line(err)}")
    deadline = time.monotonic() + within
    while (await job_state(job_id)).state in LIVE_STATES:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL)
    return True


async def reap_job(job_id: str, within: float) -> Literal["reaped", "gone", "not-ours", "stuck"]:
    """Cancel a job a dead engine left behind.

    Only a live job named as this engine names its jobs is cancelled (a job id alone could, after
    the cluster's ids wrap, belong to someone else's job)."""
    job = await job_state(job_id)
    if job.state not in LIVE_STATES:
        return "gone"
    if not job.name.startswith(JOB_NAME_PREFIX):
        return "not-ours"
    return "reaped" if await cancel_and_wait(job_id, within) else "stuck"


async def reap_unrecorded(
    tag: str, owned: frozenset[str], within: float
) -> tuple[Literal["reaped", "gone", "stuck"], list[str]]:
    """Cancel this user's live jobs named with the store's `tag` that the store does not own: an
    engine killed between sbatch and recording the job's id left them; and their ids."""
    prefix = job_name(tag, "")
    user = f"--user={os.getuid()}"
    code, out, err = await run_command("squeue", "--noheader", user, "--format=%i|%j")
    if code != 0:
        raise SlurmUnavailable(f"squeue: {last_line(err)}")
    found = [line.strip().split("|", 1) for line in out.splitlines() if "|" in line]
    leftovers = [job for job, name in found if name.startswith(prefix) and job not in owned]
    gone = [await cancel_and_wait(job, within) for job in leftovers]
    return ("stuck" if not all(gone) else "reaped" if gone else "gone"), leftovers


def store_tag(store: Path, host: str) -> str:
    """The tag in the names of the jobs a store's runs submit from `host`: a store by its path,
    and by host, as /tmp/store.sqlite on two login nodes is two stores (`reap_unrecorded`)."""
    return hashlib.sha256(f"{host}\0{store.resolve()}".encode()).hexdigest()[:10]


def job_name(tag: str, label: str) -> str:
    return f"{JOB_NAME_PREFIX}{tag}-{label}"


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return redact(lines[-1]) if lines else "no message"


async def final_state(job_id: str, job: JobState, within: float = 10.0) -> JobState:
    """The job's state once it is no longer COMPLETING (its processes being killed), so that a
    message can say how it ended (CANCELLED, TIMEOUT, FAILED...); as it is after `within`."""
    deadline = time.monotonic() + within
    while job.state == "COMPLETING" and time.monotonic() < deadline:
        await asyncio.sleep(POLL)
        with contextlib.suppress(SlurmUnavailable):
            job = await job_state(job_id)
    return job
