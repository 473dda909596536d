"""The run loop: release jobs as their answers commit, look them up in the cache, send the misses.

Every ready job builds its request and joins a lookup batch (one `IN (...)` query per event-loop
tick). A hit completes the job on the spot; a miss goes to its endpoint's queue. A response is
written with its answer or judgment row in one transaction, and only after that commit does the
job count as done and release the jobs waiting on it. There is no barrier anywhere: judging of one
answer starts the moment it is committed, while other models are still generating.

In plan mode (`dry_run`) misses are counted instead of sent, and everything downstream of a miss is
counted as a request to send, since its prompt depends on text that does not exist yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.chat import ChatRequest, ChatResponse
from engine.config import EndpointConfig
from engine.errors import RequestError
from engine.jobs import AnswerSlot, Job, SlotState, response_row
from engine.store import CachedResponse, Store
from engine.writer import StoreWriter

if TYPE_CHECKING:
    from engine.endpoint import EndpointPool, OnDone, Outcome

__all__ = ["EndpointTally", "FailureRecord", "Pipeline", "RunTally"]

log = logging.getLogger(__name__)


INSERT_FAILURE = (
    "INSERT INTO failures (run_id, job, kind, model, question_id, turn, error_class, attempts, "
    "message, created) VALUES (?,?,?,?,?,?,?,?,?,?)"
)


@dataclass(slots=True)
class EndpointTally:
    """Per endpoint: jobs served from the cache, requests to send (plan) or sent, failures."""

    jobs: int = 0
    cached: int = 0
    to_send: int = 0
    done: int = 0
    failed: int = 0
    prompt_tokens: int = 0  # sent this run (plan: estimated for the requests to send)
    completion_tokens: int = 0
    cost: float | None = None  # dollars, when the endpoint has prices

    def add_usage(self, prompt: int, completion: int, cost: float | None) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost


@dataclass(frozen=True, slots=True)
class FailureRecord:
    job: str
    endpoint: str
    error_class: str
    attempts: int
    message: str


@dataclass(slots=True)
class RunTally:
    endpoints: dict[str, EndpointTally] = field(default_factory=dict)
    failures: list[FailureRecord] = field(default_factory=list)
    elapsed: float = 0.0

    def total(self, name: str) -> int:
        return sum(getattr(tally, name) for tally in self.endpoints.values())

    def total_cost(self) -> float | None:
        costs = [t.cost for t in self.endpoints.values() if t.cost is not None]
        return sum(costs) if costs else None

    def failure_classes(self) -> Counter[str]:
        return Counter(f.error_class for f in self.failures)


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
        completion_estimates: dict[str, float] | None = None,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.endpoints = endpoints
        self.writer = writer
        self.run_id = run_id
        self.dry_run = dry_run
        # plan: expected completion tokens per endpoint name (cached usage, else max_tokens)
        self.completion_estimates = completion_estimates or {}
        # plan: the expected tokens of each answer that would be generated, whose text is unknown
        self._estimated_tokens: dict[AnswerSlot, int] = {}
        self.tally = RunTally()
        self._remaining = len(jobs)
        self._finished = asyncio.Event()
        self._lookup_batch: list[tuple[Job, ChatRequest, str]] = []
        self._lookup_scheduled = False
        self._inflight: dict[str, list[tuple[Job, ChatRequest]]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._crash: BaseException | None = None
        self.stopped = False

    async def run(self) -> RunTally:
        started = time.monotonic()
        for job in self.jobs:
            self._tally(job).jobs += 1
        if self._remaining:
            for job in self.jobs:
                self._attach(job)
            await self._finished.wait()
        if self._crash is not None:
            raise self._crash
        self.tally.elapsed = time.monotonic() - started
        return self.tally

    def stop(self) -> None:
        """Release no more jobs; `run` returns now, results still arriving are committed."""
        self.stopped = True
        self._finished.set()

    def _tally(self, job: Job) -> EndpointTally:
        name = job.endpoint.label
        tally = self.tally.endpoints.get(name)
        if tally is None:
            tally = self.tally.endpoints[name] = EndpointTally()
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
        request = job.build_request()
        if any(slot.state == SlotState.UNKNOWN for slot in job.needs):
            self._would_send(job, request)
            return
        key = request.cache_key()
        waiting = self._inflight.get(key)
        if waiting is not None:
            waiting.append((job, request))
            return
        self._inflight[key] = []
        self._lookup_batch.append((job, request, key))
        if not self._lookup_scheduled:
            self._lookup_scheduled = True
            asyncio.get_running_loop().call_soon(self._start_lookup)

    def _start_lookup(self) -> None:
        self._lookup_scheduled = False
        batch, self._lookup_batch = self._lookup_batch, []
        self._spawn(self._lookup(batch))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._abort(task.exception())  # type: ignore[arg-type]

    def _abort(self, error: BaseException) -> None:
        if self._crash is None:
            self._crash = error
        self._finished.set()

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
        (a placeholder string of that length would take max_tokens * 4 bytes per answer)."""
        completion = round(
            self.completion_estimates.get(job.endpoint.name, float(job.endpoint.max_tokens))
        )
        prompt = request.estimated_prompt_tokens() + sum(
            self._estimated_tokens.get(slot, 0) for slot in job.shown()
        )
        tally = self._tally(job)
        tally.to_send += 1
        tally.add_usage(prompt, completion, job.endpoint.cost(prompt, completion))
        produced = job.produces()
        if produced is not None:
            produced.fill("")
            produced.state = SlotState.UNKNOWN
            self._estimated_tokens[produced] = completion
            self._release(produced)
        self._job_finished(job)

    def _complete_cached(
        self, job: Job, request: ChatRequest, key: str, cached: CachedResponse
    ) -> None:
        self._tally(job).cached += 1
        if job.stored != key and not self.dry_run:
            assert self.writer is not None
            self.writer.put_many(job.result_rows(key, cached.text, self.run_id))
        self._job_done(job, cached.text)
        self._release_duplicates(key, cached.text)

    def _on_outcome(self, job: Job, request: ChatRequest, key: str, outcome: Outcome) -> None:
        if outcome.response is None:
            assert outcome.error is not None
            self._job_failed(job, outcome.error, outcome.attempts)
            for duplicate, _ in self._inflight.pop(key, []):
                self._job_failed(duplicate, outcome.error, 0)
            return
        response: ChatResponse = outcome.response
        cost = job.endpoint.cost(response.prompt_tokens, response.completion_tokens)
        self._tally(job).add_usage(
            response.prompt_tokens or 0, response.completion_tokens or 0, cost
        )
        rows = [
            response_row(key, request, response, cost),
            *job.result_rows(key, response.text, self.run_id),
        ]
        for duplicate, _ in self._inflight.get(key, []):
            rows.extend(duplicate.result_rows(key, response.text, self.run_id))
        assert self.writer is not None
        self.writer.put_many(
            rows, lambda: self._sent_committed(job, key, response.text, outcome.release)
        )

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
        self._tally(job).failed += 1
        self.tally.failures.append(
            FailureRecord(job.describe(), job.endpoint.label, error_class, attempts, message)
        )
        if self.writer is not None and self.run_id is not None:
            self.writer.put(
                INSERT_FAILURE,
                (
                    self.run_id,
                    job.describe(),
                    job.kind,
                    job.model,
                    job.question_id,
                    job.turn,
                    error_class,
                    attempts,
                    message,
                    time.time(),
                ),
            )

    def _job_finished(self, job: Job) -> None:
        tally = self._tally(job)
        if tally.cached + tally.done + tally.failed + tally.to_send == tally.jobs:
            pool = self.endpoints.get(job.endpoint)
            if pool is not None:
                pool.finished()  # e.g. stop its server: nothing will be sent there any more
        self._remaining -= 1
        if self._remaining == 0:
            self._finished.set()
