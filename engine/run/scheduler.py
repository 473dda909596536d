"""The run loop: release jobs as their answers commit, look them up in the cache, send the misses.

Every ready job builds its request and joins a lookup batch (one `IN (...)` query per event-loop
tick). A hit completes the job on the spot; a miss goes to its endpoint's queue. A response is
written with its answer or judgment row in one transaction, and only after that commit does the
job count as done and release the jobs waiting on it. There is no barrier anywhere: judging of one
answer starts the moment it is committed, while other models are still generating.

In plan mode (`dry_run`) misses are counted instead of sent, and everything downstream of a miss is
counted as a request to send, since its prompt depends on text that does not exist yet.

Nothing dies unobserved. An exception from one job's own code (building its request, its result
rows) fails that job, class `internal`; a result SQLite refuses fails its job, class `unstorable`,
and frees its concurrency slot. Every background task (the writer, cache lookups, the dispatchers)
is watched by the pipeline's `supervisor` (engine.run.supervision): if one fails, the run stops at
once and `run` raises the failure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from engine.chat import ChatRequest, ChatResponse
from engine.config import EndpointConfig
from engine.errors import RequestError
from engine.redact import redact, redact_fields
from engine.run.jobs import AnswerSlot, Job, SlotState, response_row
from engine.run.supervision import Supervisor
from engine.run.tally import EndpointTally, FailureRecord, RunTally
from engine.store.rows import CompletionEstimate, FailureRow, Write
from engine.store.store import CachedResponse, Store
from engine.store.writer import StoreWriter

if TYPE_CHECKING:
    from engine.endpoints.pool import EndpointPool, OnDone, Outcome

__all__ = ["Pipeline"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Pipeline:
    def __init__(
        self,
        store: Store,
        jobs: list[Job],
        endpoints: dict[EndpointConfig, EndpointPool],
        *,
        writer: StoreWriter | None,
        run_id: int | None,
        dry_run: bool = False,
        completion_estimates: dict[str, CompletionEstimate] | None = None,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.endpoints = endpoints
        self.writer = writer
        self.run_id = run_id
        self.dry_run = dry_run
        # plan: expected completion (and reasoning) tokens per endpoint name, from cached usage
        self.completion_estimates = completion_estimates or {}
        # plan: the expected tokens of each answer that would be generated, whose text is unknown
        self._estimated_tokens: dict[AnswerSlot, int] = {}
        self.tally = RunTally()
        self._remaining = len(jobs)
        self._finished = asyncio.Event()
        self._lookup_batch: list[tuple[Job, ChatRequest, str]] = []
        self._lookup_scheduled = False
        self._inflight: dict[str, list[tuple[Job, ChatRequest]]] = {}
        self.supervisor = Supervisor(on_failure=self.stop)
        self.stopped = False

    async def run(self) -> RunTally:
        """Run every job; raises what stopped the run if a supervised task failed."""
        for job in self.jobs:
            self._tally(job).jobs += 1
        if self._remaining:
            for job in self.jobs:
                self._attach(job)
            if self.supervisor.failure is None:
                await self._finished.wait()
        self.supervisor.check()
        return self.tally

    def stop(self) -> None:
        """Release no more jobs; `run` returns now, results still arriving are committed."""
        self.stopped = True
        self._finished.set()

    def _tally(self, job: Job) -> EndpointTally:
        tally = self.tally.endpoints.get(job.endpoint)
        if tally is None:
            tally = self.tally.endpoints[job.endpoint] = EndpointTally()
        return tally

    def _attach(self, job: Job) -> None:
        """Count the job's unfilled slots; a job with none is ready now."""
        for slot in job.needs:
            if slot.state == SlotState.FAILED:
                self._fail_dependency(job, slot)
                return
            if slot.state == SlotState.PENDING:
                job.missing += 1
                slot.waiters.append(job)
        if job.missing == 0:
            self._ready(job)

    def _ready(self, job: Job) -> None:
        if self.stopped:
            return
        request = self._job_step(job, job.build_request)
        if request is None:
            return
        if any(slot.state == SlotState.UNKNOWN for slot in job.needs):
            self._would_send(job, request)
            return
        key = self._job_step(job, request.cache_key)
        if key is None:
            return
        waiting = self._inflight.get(key)
        if waiting is not None:
            waiting.append((job, request))
            return
        self._inflight[key] = []
        self._lookup_batch.append((job, request, key))
        if not self._lookup_scheduled:
            self._lookup_scheduled = True
            asyncio.get_running_loop().call_soon(self._start_lookup)

    def _job_step(self, job: Job, step: Callable[[], T]) -> T | None:
        """One of the job's own steps; if it raises, the job fails (class `internal`), alone."""
        try:
            return step()
        except Exception as exc:
            log.debug("internal error in %s", job.describe(), exc_info=True)
            self._record_failure(job, "internal", 0, f"{type(exc).__name__}: {exc}")
            self._fail_produced(job)
            return None

    def _start_lookup(self) -> None:
        self._lookup_scheduled = False
        batch, self._lookup_batch = self._lookup_batch, []
        self.supervisor.spawn(self._lookup(batch), "cache lookup")

    async def _lookup(self, batch: list[tuple[Job, ChatRequest, str]]) -> None:
        found = await self.store.lookup([key for _, _, key in batch])
        if self.stopped:
            return
        for job, request, key in batch:
            cached = found.get(key)
            if cached is not None:
                self._complete_cached(job, request, key, cached)
            elif self.dry_run:
                self._would_send(job, request)
                self._release_duplicates(key, None)
            else:
                self.endpoints[job.endpoint].submit(
                    request, self._outcome_handler(job, request, key)
                )

    def _outcome_handler(self, job: Job, request: ChatRequest, key: str) -> OnDone:
        return lambda outcome: self._on_outcome(job, request, key, outcome)

    def _would_send(self, job: Job, request: ChatRequest) -> None:
        """Plan: count the request and its estimated tokens. What it would produce is unknown:
        an empty text stands in, and its expected tokens count in every prompt that shows it
        (a placeholder text of that length would take max_tokens * CHARS_PER_TOKEN bytes each).
        Without earlier answers, a request is assumed to use its whole max_tokens."""
        estimate = self.completion_estimates.get(job.endpoint.name)
        completion = round(estimate.completion) if estimate else job.endpoint.max_tokens
        reasoning = round(estimate.reasoning or 0) if estimate else 0
        prompt = request.estimated_prompt_tokens() + sum(
            self._estimated_tokens.get(slot, 0) for slot in job.shown()
        )
        tally = self._tally(job)
        tally.to_send += 1
        tally.reasoning_mean = estimate.reasoning if estimate else None
        tally.add_usage(prompt, completion, job.endpoint.cost(prompt, completion), reasoning)
        produced = job.produces()
        if produced is not None:
            produced.fill("")
            produced.state = SlotState.UNKNOWN
            self._estimated_tokens[produced] = max(completion - reasoning, 0)  # thoughts unshown
            self._release(produced)
        self._job_finished(job)

    def _complete_cached(
        self, job: Job, request: ChatRequest, key: str, cached: CachedResponse
    ) -> None:
        if not self.dry_run:
            rows = self._job_step(job, lambda: self._cached_rows(job, key, cached.text))
            if rows is None:
                self._fail_duplicates(key, "internal", "its twin request failed")
                return
            if rows:
                assert self.writer is not None
                self.writer.put_many(rows, on_error=lambda why: self._cached_refused(job, why))
        self._tally(job).cached += 1
        self._job_done(job, cached.text)
        self._release_duplicates(key, cached.text)

    def _cached_rows(self, job: Job, key: str, text: str) -> list[Write]:
        """Rows linking the job and its twins (same request) to a cached response, if new."""
        twins = (job, *(twin for twin, _ in self._inflight.get(key, [])))
        return [
            row
            for twin in twins
            if twin.stored != key
            for row in twin.result_rows(key, text, self.run_id)
        ]

    def _cached_refused(self, job: Job, reason: str) -> None:
        """The cached answer served its waiters, but its row is not stored: the job failed."""
        self._tally(job).cached -= 1
        self._record_failure(job, "unstorable", 0, reason)

    def _on_outcome(self, job: Job, request: ChatRequest, key: str, outcome: Outcome) -> None:
        """Called by the endpoint with the slot still held; never raises (that would leak it)."""
        if outcome.response is None:
            assert outcome.error is not None
            self._job_failed(job, outcome.error, outcome.attempts)
            for duplicate, _ in self._inflight.pop(key, []):
                self._job_failed(duplicate, outcome.error, 0)
            return
        # A server may echo the key: mask it before the text is stored or goes into a prompt.
        response: ChatResponse = redact_fields(
            outcome.response, "text", "finish_reason", "reasoning"
        )
        paid = self._job_step(job, lambda: self._paid_row(job, request, key, response))
        if paid is None:
            outcome.release()
            self._fail_duplicates(key, "internal", "its twin request failed")
            return
        results = self._job_step(job, lambda: self._result_rows(job, key, response.text))
        assert self.writer is not None
        if results is None:  # the job failed, but its answer is paid for: keep it in the cache
            self.writer.put_many([paid], outcome.release, lambda _: outcome.release())
            self._fail_duplicates(key, "internal", "its twin request failed")
            return
        self.writer.put_many(
            [paid, *results],
            lambda: self._sent_committed(job, key, response.text, outcome.release),
            lambda reason: self._sent_refused(job, key, reason, outcome.release),
        )

    def _paid_row(self, job: Job, request: ChatRequest, key: str, response: ChatResponse) -> Write:
        """The response for the cache, its usage and cost counted (implausible counts as 0)."""
        prompt, completion = _count(response.prompt_tokens), _count(response.completion_tokens)
        cost = job.endpoint.cost(prompt, completion)  # reasoning is billed in completion tokens
        self._tally(job).add_usage(prompt, completion, cost, _count(response.reasoning_tokens))
        return response_row(key, request, response, cost)

    def _result_rows(self, job: Job, key: str, text: str) -> list[Write]:
        """The job's answer or judgment row and its twins' (same request), pointing at `key`."""
        rows = job.result_rows(key, text, self.run_id)
        for duplicate, _ in self._inflight.get(key, []):
            rows.extend(duplicate.result_rows(key, text, self.run_id))
        return rows

    def _sent_refused(self, job: Job, key: str, reason: str, release: Callable[[], None]) -> None:
        release()
        message = f"{job.endpoint.label} answered with a value the store cannot hold: {reason}"
        self._record_failure(job, "unstorable", 1, message)
        self._fail_produced(job)
        self._fail_duplicates(key, "unstorable", message)

    def _fail_duplicates(self, key: str, error_class: str, message: str) -> None:
        for duplicate, _ in self._inflight.pop(key, []):
            self._record_failure(duplicate, error_class, 0, message)
            self._fail_produced(duplicate)

    def _sent_committed(self, job: Job, key: str, text: str, release: Callable[[], None]) -> None:
        release()
        self._tally(job).done += 1
        self._job_done(job, text)
        self._release_duplicates(key, text)

    def _release_duplicates(self, key: str, text: str | None) -> None:
        for duplicate, request in self._inflight.pop(key, []):
            if text is None:
                self._would_send(duplicate, request)
            else:
                self._tally(duplicate).cached += 1
                self._job_done(duplicate, text)

    def _job_done(self, job: Job, text: str) -> None:
        produced = job.produces()
        if produced is not None:
            produced.fill(text)
            self._release(produced)
        self._job_finished(job)

    def _release(self, slot: AnswerSlot) -> None:
        waiters, slot.waiters = slot.waiters, []
        for waiter in waiters:
            if slot.state == SlotState.FAILED:
                self._fail_dependency(waiter, slot)
                continue
            waiter.missing -= 1
            if waiter.missing == 0:
                self._ready(waiter)

    def _job_failed(self, job: Job, error: RequestError, attempts: int) -> None:
        self._record_failure(job, error.error_class, attempts, str(error))
        self._fail_produced(job)

    def _fail_dependency(self, job: Job, slot: AnswerSlot) -> None:
        if job.missing < 0:
            return  # already failed through another slot
        job.missing = -1
        message = f"needs {slot.model} q{slot.question_id} t{slot.turn}, which has no answer"
        self._record_failure(job, "dependency", 0, message)
        self._fail_produced(job)

    def _fail_produced(self, job: Job) -> None:
        produced = job.produces()
        if produced is not None:
            produced.state = SlotState.FAILED
            self._release(produced)
        self._job_finished(job)

    def _record_failure(self, job: Job, error_class: str, attempts: int, message: str) -> None:
        """Count the failure and store it (a failure row cannot itself be refused: all ours)."""
        message = redact(message)
        self._tally(job).failed += 1
        self.tally.failures.append(
            FailureRecord(
                job.describe(), job.endpoint.label, error_class, attempts, message, job.model
            )
        )
        if self.writer is not None and self.run_id is not None:
            failure = FailureRow(
                self.run_id, job.describe(), job.kind, job.model, job.question_id, job.turn,
                error_class, attempts, message, time.time(),
            )  # fmt: skip
            self.writer.put_many([failure.write()])

    def _job_finished(self, job: Job) -> None:
        tally = self._tally(job)
        if tally.cached + tally.done + tally.failed + tally.to_send == tally.jobs:
            pool = self.endpoints.get(job.endpoint)
            if pool is not None:
                pool.finished()  # e.g. stop its server: nothing will be sent there any more
        self._remaining -= 1
        if self._remaining == 0:
            self._finished.set()


def _count(tokens: object) -> int:
    """A token count for the tally: what the server said, if it is a plausible count."""
    return tokens if isinstance(tokens, int) and 0 <= tokens < 2**62 else 0
