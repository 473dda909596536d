"""Lower bound and serial baseline of the pipeline scenario, from the latencies actually served.

The fake server draws each request's latency at random, so "how fast could this run have been" is
only answerable after the fact, from those same draws. The engine's store says which request was
which job (model, question, turn, generation or judgment); the server's `/stats?arrivals=full` says
how long it made each request wait. They are joined on the server's body digest, recomputed from
the canonical request the engine stored.

Two schedules are then computed from the same latencies:

- the **ideal**: a lower bound on any schedule that respects the DAG (turn 2 after turn 1 of the
  same question; a turn-1 judgment after answer 1; a turn-2 judgment after answers 1 and 2) and
  the capacity (`concurrency` requests at once per endpoint): the longest dependency chain, or per
  endpoint the earliest its first job can start plus the sum of its latencies / concurrency;
- the **serial** baseline: model after model, all turn-1 answers, then all turn-2 answers, then
  every judgment of that model, each phase list-scheduled on `concurrency` workers, phases summed.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fake.openai import body_digest

__all__ = ["Bounds", "ServedJob", "bounds", "list_schedule", "served_jobs", "wire_digest"]

GENERATION = "generation"
JUDGE = "judge"

_ANSWERS = (
    "SELECT a.model, a.question_id, a.turn, r.request, r.latency FROM answers a "
    "JOIN responses r ON r.key = a.response_key WHERE a.source = 'generated'"
)
_JUDGMENTS = (
    "SELECT j.model, j.question_id, j.turn, r.request, r.latency FROM judgments j "
    "JOIN responses r ON r.key = j.response_key"
)


@dataclass(frozen=True)
class ServedJob:
    """One job of the run and the latency that applies to it (the server's, else the client's)."""

    model: str
    question_id: int
    turn: int
    kind: str  # GENERATION or JUDGE
    latency: float
    from_server: bool


@dataclass(frozen=True)
class Bounds:
    ideal: float
    longest_chain: float
    capacity: dict[str, float]  # endpoint -> earliest start + sum of latencies / concurrency
    serial: float


def wire_digest(canonical_request: bytes) -> str:
    """The fake server's digest of the OpenAI body the engine sent for this canonical request."""
    canonical = orjson.loads(canonical_request)
    params = canonical["params"]
    body = {
        "model": canonical["model"],
        "messages": canonical["messages"],
        "max_tokens": params["max_tokens"],
        "temperature": params["temperature"],
    }
    if "seed" in params:
        body["seed"] = params["seed"]
    body.update(params.get("extra_body") or {})
    return body_digest(body).hex()


def served_jobs(store: Path, arrivals: Iterable[Sequence[Any]]) -> list[ServedJob]:
    """Every generated answer and judgment in `store`, with the latency the server applied.

    `arrivals` are `/stats?arrivals=full` rows: [time, model, kind, status, latency, digest].
    A job whose request is not found there (it should not happen) keeps the engine's own
    client-side latency, and says so in `from_server`.
    """
    applied = {row[5]: float(row[4]) for row in arrivals if row[3] == 200}
    jobs = []
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        for kind, sql in ((GENERATION, _ANSWERS), (JUDGE, _JUDGMENTS)):
            for model, question_id, turn, request, client_latency in db.execute(sql):
                server_latency = applied.get(wire_digest(request))
                latency = client_latency if server_latency is None else server_latency
                jobs.append(
                    ServedJob(model, question_id, turn, kind, latency, server_latency is not None)
                )
    return jobs


def list_schedule(latencies: Iterable[float], workers: int) -> float:
    """Makespan of jobs taken in order by the first of `workers` free workers."""
    free = [0.0] * workers
    end = 0.0
    for latency in latencies:
        finish = heapq.heappop(free) + latency
        end = max(end, finish)
        heapq.heappush(free, finish)
    return end


def bounds(jobs: Sequence[ServedJob], concurrency: int) -> Bounds:
    """The ideal (a DAG- and capacity-respecting lower bound) and the serial baseline."""
    by_slot = {(j.model, j.question_id, j.turn, j.kind): j.latency for j in jobs}
    longest = 0.0
    for model, question_id, turn, kind in by_slot:
        if kind != GENERATION or turn != 1:
            continue
        first = by_slot[(model, question_id, 1, GENERATION)]
        chains = [first + by_slot.get((model, question_id, 1, JUDGE), 0.0)]
        second = by_slot.get((model, question_id, 2, GENERATION))
        if second is not None:
            chains.append(first + second + by_slot.get((model, question_id, 2, JUDGE), 0.0))
        longest = max(longest, *chains)
    capacity: dict[str, float] = defaultdict(float)
    for job in jobs:
        endpoint = "judge" if job.kind == JUDGE else job.model
        capacity[endpoint] += job.latency / concurrency
    if "judge" in capacity:
        capacity["judge"] += min(j.latency for j in jobs if j.kind == GENERATION and j.turn == 1)
    ideal = max(longest, *capacity.values())
    return Bounds(ideal, longest, dict(capacity), _serial(jobs, concurrency))


def _serial(jobs: Sequence[ServedJob], workers: int) -> float:
    ordered = sorted(jobs, key=lambda j: (j.model, j.kind != GENERATION, j.question_id, j.turn))
    total = 0.0
    for model in sorted({j.model for j in jobs}):
        mine = [j for j in ordered if j.model == model]
        phases = [
            [j.latency for j in mine if j.kind == GENERATION and j.turn == 1],
            [j.latency for j in mine if j.kind == GENERATION and j.turn == 2],
            [j.latency for j in mine if j.kind == JUDGE],
        ]
        total += sum(list_schedule(phase, workers) for phase in phases)
    return total
