"""Model servers as Slurm jobs: a checkpoint sweep larger than one machine, scheduled by Slurm.

With `launcher = "slurm"` each server is one batch job (`sbatch`, options from `[slurm]`). The
engine, and the judge, stay where `mtbench` runs; only the servers go to the cluster. A job is
`queued` until Slurm runs it (it holds its server slot all that time), `starting` once it runs:
its script (`engine.serving.slurm_script`) picks a free port on its node and reports it through a
file in the store's `servers/` directory, and the engine probes `http://<NodeAddr>:<port>` (the
address Slurm has for the node, `scontrol show node`) until it answers; then it is `serving`.
`ready_timeout` counts from the moment the job runs, not while it waits in the queue.

A job that ends before it is ready, or while its model still has work (it failed, was preempted,
ran out of time or memory, was cancelled), fails that checkpoint with the tail of its output file
(`servers/<label>.slurm-<job>.log`), and the sweep goes on. The engine cancels (`scancel`) each job
when its checkpoint is done, on a failed start, and on Ctrl-C/SIGTERM. A job outlives an engine
that is SIGKILLed (no kernel signal reaches a cluster), so every job is recorded in the store's
`servers` table from before its submission until it is gone, and the next run on the store cancels
what a crash left (`reap_job`); a job whose id a crash kept from the record is found by the tag of
its store in its name (`reap_unrecorded`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import re
import secrets
import subprocess
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from engine.config import SlurmOptions
from engine.errors import ServerFailed
from engine.redact import redact
from engine.serving.processes import this_machine
from engine.serving.serve import LOG_TAIL_LINES, ServerRecords, ServerSpec, StartedServer
from engine.serving.slurm_jobs import (
    POLL,
    QUEUED_STATES,
    JobState,
    SlurmUnavailable,
    cancel_and_wait,
    final_state,
    job_name,
    job_state,
    last_line,
    node_address,
    requeued,
    run_command,
)
from engine.serving.slurm_script import address_file, job_script, output_file, sbatch_arguments

if TYPE_CHECKING:
    import aiohttp

__all__ = ["SlurmServer"]

log = logging.getLogger(__name__)

_PROBE_TIMEOUT = 5.0
_JOB_ID = re.compile(r"(?P<parsable>\d+)(?:;\S+)?|Submitted batch job (?P<said>\d+)")
# Why a pending job waits when it waits for nothing that will come: Slurm keeps it queued forever
# (its dependency failed, no node or partition can ever take it), and a sweep would never end.
# Never BeginTime: that passes (`--begin`, or Slurm's delay before a requeued job runs again).
NEVER_RUNS = frozenset(
    {"DependencyNeverSatisfied", "BadConstraints", "PartitionTimeLimit", "PartitionNodeLimit"}
    | {"InvalidAccount", "InvalidQOS"}
)
# Jobs submitted and not yet seen gone; cancelled at interpreter exit, whatever ended the run.
_LIVE_JOBS: set[str] = set()


class SlurmServer:
    """One server as one Slurm job: `start()` returns its base URL once it answers its probe."""

    def __init__(
        self,
        spec: ServerSpec,
        options: SlurmOptions | None,
        records: ServerRecords | None,
        directory: Path,
        tag: str,
    ) -> None:
        self.spec = spec
        self._options = options or SlurmOptions()
        self._records = records
        self._directory = directory
        self._tag = tag  # the store's, in the job's name (`store_tag`)
        self._nonce = secrets.token_hex(8)  # in its address file: this job's, not an earlier one's
        self._label = (spec.log_file.stem if spec.log_file is not None else None) or "server"
        self.job_id: str | None = None
        self.base_url: str | None = None
        self._output: Path | None = None
        self._record: StartedServer | None = None
        self._ended: str | None = None  # how the job ended, once seen
        self._stopping: asyncio.Future[None] | None = None
        self._phase = "submitting"  # then queued, starting, serving
        self._where = ""  # why it waits (Slurm's reason), or the node it runs on
        self._unanswered = False  # the last look at the job got no answer from Slurm
        self._seen_running = False  # a look found it RUNNING: pending again is a requeue
        self._requeued = False

    @property
    def status(self) -> str:
        """`queued: Slurm job 12 (Resources)`, `serving: Slurm job 12 on node7`, for progress."""
        job = "" if self.job_id is None else f": Slurm job {self.job_id}"
        return f"{self._phase}{job}{self._where}"

    async def start(self) -> str:
        """Submit the job and wait until its server answers; cancel it if that never happens."""
        try:
            await self._submit()
            return await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def _submit(self) -> None:
        script = self._directory / f"{self._label}.slurm.sh"
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            script.write_text(job_script(self.spec, self._directory, self._label, self._nonce))
        except OSError as exc:
            raise ServerFailed(
                f"{self.spec.name}: cannot write its job script {script}: {exc}"
            ) from None
        arguments = sbatch_arguments(
            self._options,
            job_name=job_name(self._tag, self._label),
            output=output_file(self._directory, self._label),
            gpus_per_server=self.spec.num_gpus,
        )
        await self._add_record(script)  # first: a crash between sbatch and the id's record
        submitted = asyncio.ensure_future(run_command("sbatch", *arguments, str(script)))
        try:
            code, out, err = await asyncio.shield(submitted)
        except asyncio.CancelledError:
            # The job may be in the queue already: learn its id, so that stop() cancels it,
            # however often the run's shutdown cancels this task meanwhile (sbatch is bounded).
            while not submitted.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({submitted})
            with contextlib.suppress(Exception):
                self._accept(script, arguments, *submitted.result())
            raise
        except SlurmUnavailable as exc:
            raise ServerFailed(f"{self.spec.name}: {exc}; is Slurm installed here?") from None
        try:
            self._accept(script, arguments, code, out, err)
        except ServerFailed:
            if code != 0 and self._records is not None and self._record is not None:
                await self._records.remove(self._record)  # refused: no job to look for
            raise
        await self._record_job_id()

    def _accept(self, script: Path, arguments: list[str], code: int, out: str, err: str) -> None:
        if code != 0:
            raise ServerFailed(
                f"{self.spec.name}: sbatch refused its job ({last_line(err)}); check [slurm] "
                f"(sbatch {' '.join(arguments)} {script})"
            )
        job_id = _submitted_job(out)
        if job_id is None:
            answer = last_line(out)[:200]
            raise ServerFailed(f"{self.spec.name}: sbatch answered {answer!r}, not a job id")
        self.job_id = job_id
        self._phase = "queued"
        _LIVE_JOBS.add(self.job_id)
        self._output = self._directory / f"{self._label}.slurm-{self.job_id}.log"
        log.info("%s: Slurm job %s queued", self.spec.name, self.job_id)

    async def _add_record(self, script: Path) -> None:
        if self._records is None:
            return
        command = f"sbatch {script}"
        self._record = StartedServer(
            None, self.spec.name, command, None, time.time(), "slurm", host=this_machine().host
        )
        await self._records.add(self._record)

    async def _record_job_id(self) -> None:
        if self._records is None or self._record is None or self.job_id is None:
            return
        self._record = replace(self._record, job_id=self.job_id, log_file=self._output)
        await self._records.add(self._record)

    async def _wait_ready(self) -> str:
        import aiohttp  # only here: importing it costs a quarter of a second

        assert self.job_id is not None
        running_since: float | None = None
        last: str | None = None
        timeout = aiohttp.ClientTimeout(total=_PROBE_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                job = await self._look()
                if job is not None and job.state != last:
                    last = job.state
                    self._log_state(job)
                if job is not None and await self._stopped(job):
                    how = "did not get ready" if self._requeued else "ended before it was ready"
                    raise self._failure(how)
                if job is not None and job.state == "RUNNING":
                    running_since = running_since or time.monotonic()
                    if await self._answers(session, job):
                        return self.base_url or ""
                    if time.monotonic() - running_since > self.spec.ready_timeout:
                        raise self._failure(f"was not ready within {self.spec.ready_timeout:g}s")
                elif job is not None and job.reason in NEVER_RUNS:
                    self._ended = f"Slurm job {self.job_id} pending, reason {job.reason}"
                    raise self._failure("can never start; check [slurm]")
                await asyncio.sleep(POLL)

    async def _stopped(self, job: JobState) -> bool:
        """Whether the job has stopped running its server, with how in `_ended`; False while it
        waits for its first run, or runs it. The one judge of a job's end, starting or serving,
        so that a requeue is a requeue whichever look catches it (COMPLETING, PENDING for the
        requeue delay with reason BeginTime, RUNNING again): never a job that 'ended PENDING'."""
        assert self.job_id is not None
        if not requeued(job, self._seen_running) and job.state not in QUEUED_STATES:
            if job.state == "RUNNING":
                self._seen_running = True
                return False
            job = await final_state(self.job_id, job)
        if requeued(job, self._seen_running):
            why = f", reason {job.reason}" if job.reason not in ("", "None") else ""
            self._ended = f"Slurm job {self.job_id} was requeued ({job.state}{why})"
            self._requeued = True
            return True
        if job.state in QUEUED_STATES:
            return False
        self._ended = job.describe(self.job_id)
        return True

    async def _look(self) -> JobState | None:
        """The job's state; None when Slurm did not answer this time (it may, next time)."""
        assert self.job_id is not None
        try:
            job = await job_state(self.job_id)
        except SlurmUnavailable as exc:
            if not self._unanswered:  # one line per outage, not two a second while it lasts
                log.warning("%s: %s; asking again until it answers", self.spec.name, exc)
            self._unanswered = True
            return None
        if self._unanswered:
            log.info("%s: Slurm answers again about job %s", self.spec.name, self.job_id)
        self._unanswered = False
        return job

    def _log_state(self, job: JobState) -> None:
        if job.state in QUEUED_STATES:
            why = f" ({job.reason})" if job.reason not in ("", "None") else ""
            self._phase, self._where = "queued", why
            log.info("%s: Slurm job %s queued%s", self.spec.name, self.job_id, why)
        elif job.state == "RUNNING":
            self._phase, self._where = "starting", f" on {job.host}"
            log.info("%s: Slurm job %s starting on %s", self.spec.name, self.job_id, job.host)

    async def _answers(self, session: aiohttp.ClientSession, job: JobState) -> bool:
        if self.base_url is None:
            port = self._reported_port()
            if port is None:
                return False
            try:
                address = await node_address(job.host)
            except SlurmUnavailable:
                return False
            host = f"[{address}]" if ":" in address else address
            self.base_url = f"http://{host}:{port}/v1"
        root = self.base_url.removesuffix("/v1")
        ready = await _answers_ok(session, root + self.spec.ready_path)
        if ready:
            self._phase = "serving"
            log.info("%s: Slurm job %s serving at %s", self.spec.name, self.job_id, root)
        return ready

    def _reported_port(self) -> int | None:
        assert self.job_id is not None
        try:
            words = address_file(self._directory, self._label, self.job_id).read_text().split()
        except OSError:
            return None  # not written yet
        if len(words) != 3 or words[2] != self._nonce:
            return None  # an earlier job's, of the same id (a cluster's ids begun afresh)
        if not words[1].isdigit() or not 0 < int(words[1]) < 65536:
            return None
        return int(words[1])

    def _failure(self, what: str) -> ServerFailed:
        tail = "\n".join(f"  | {line}" for line in self.log_tail()) or "  | (no output)"
        ended = f" ({self._ended})" if self._ended else ""
        return ServerFailed(
            f"{self.spec.name}: Slurm job {self.job_id}{ended} {what} (probe "
            f"{self.spec.ready_path}); the last lines of {self._output}:\n{tail}"
        )

    def log_tail(self) -> list[str]:
        """The last lines of the job's output file, as far as the shared filesystem shows it."""
        if self._output is None:
            return []
        try:
            with self._output.open(encoding="utf-8", errors="replace") as output:
                lines = deque(output, maxlen=LOG_TAIL_LINES)
        except OSError:
            return []
        return [redact(line.rstrip()) for line in lines]

    async def ended(self) -> str:
        """Wait until the job stops running (ended, cancelled, preempted, requeued); how."""
        assert self.job_id is not None
        while self._stopping is None:  # else the engine itself is stopping the job
            job = await self._look()
            if job is not None and await self._stopped(job):
                return f"stopped: {self._ended}"
            await asyncio.sleep(POLL)
        return "was stopped by the engine"

    def hurry(self) -> None:
        """An aborted run's stop: scancel is sent at once as ever, and Slurm ends the job."""

    async def stop(self) -> None:
        """Cancel the job and wait until it is gone; forget its record then.

        Every caller waits for the one stop, also one whose own task is being cancelled (a
        failed start's clean-up) while the run's shutdown stops the server again."""
        if self.job_id is None:
            return
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._cancel(self.job_id))
        await asyncio.shield(self._stopping)

    async def _cancel(self, job_id: str) -> None:
        try:
            gone = await cancel_and_wait(job_id, self.spec.stop_timeout)
        except SlurmUnavailable as exc:
            log.warning("%s: could not cancel Slurm job %s (%s)", self.spec.name, job_id, exc)
            gone = False
        if not gone:
            name = self.spec.name
            log.warning("%s: Slurm job %s still runs; the next run cancels it", name, job_id)
            return
        _LIVE_JOBS.discard(job_id)
        with contextlib.suppress(OSError):
            address_file(self._directory, self._label, job_id).unlink(missing_ok=True)
        if self._record is not None and self._records is not None:
            await self._records.remove(self._record)


def _submitted_job(out: str) -> str | None:
    """The job id in sbatch's answer: `--parsable`'s `4711` or `4711;cluster`, or the usual
    `Submitted batch job 4711` of an sbatch wrapped by a site, after any lines it adds."""
    for line in reversed(out.splitlines()):
        found = _JOB_ID.fullmatch(line.strip())
        if found:
            return found["parsable"] or found["said"]
    return None


async def _answers_ok(session: aiohttp.ClientSession, url: str) -> bool:
    import aiohttp

    try:
        async with session.get(url) as response:
            return response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return False


@atexit.register
def _cancel_leftover_jobs() -> None:
    if _LIVE_JOBS:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["scancel", *sorted(_LIVE_JOBS)], timeout=30, check=False)
