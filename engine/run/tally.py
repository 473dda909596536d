"""What a run did, per endpoint and in total: the counts the summary, progress and `--json` show.

Plain counters, filled in by the pipeline (`engine.run.scheduler`) as jobs finish and read by the
progress sampler while the run goes; kept apart from the pipeline so that readers do not depend
on the run loop. When the run ends they are frozen into a `RunSummary` (`RunTally.summary`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields

from engine.config import EndpointConfig
from engine.config_schema import EndpointRole
from engine.store.rows import CompletionEstimate

__all__ = [
    "CompletionEstimate",
    "EndpointCounts",
    "EndpointTally",
    "FailureRecord",
    "RunSummary",
    "RunTally",
]


@dataclass(slots=True)
class EndpointTally:
    """Per endpoint: jobs served from the cache, requests to send (plan) or sent, failures."""

    jobs: int = 0
    cached: int = 0
    to_send: int = 0
    done: int = 0  # requests sent and answered this run
    failed: int = 0
    prompt_tokens: int = 0  # sent this run (plan: estimated for the requests to send)
    completion_tokens: int = 0
    reasoning_tokens: int = 0  # the part of completion_tokens spent reasoning, where reported
    cost: float | None = None  # dollars, when the endpoint has prices
    reasoning_mean: float | None = None  # plan: mean reasoning tokens of earlier answers, if known

    def add_usage(
        self, prompt: int, completion: int, cost: float | None, reasoning: int = 0
    ) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.reasoning_tokens += reasoning
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost


@dataclass(frozen=True, slots=True)
class EndpointCounts:
    """One endpoint's `EndpointTally` as the run left it, with its name and role."""

    name: str
    role: EndpointRole
    jobs: int
    cached: int
    to_send: int
    done: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cost: float | None
    reasoning_mean: float | None

    def counts(self) -> dict[str, int | float | None]:
        """The counters alone, by name (as `--json` prints them)."""
        return {f.name: getattr(self, f.name) for f in fields(EndpointTally)}


@dataclass(frozen=True, slots=True)
class FailureRecord:
    job: str
    endpoint: str
    error_class: str
    attempts: int
    message: str
    model: str = ""  # the model whose answer or judgment failed (a pair's first model)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run's counts: models before the judge, each in name order; failures as they came."""

    endpoints: tuple[EndpointCounts, ...] = ()
    failures: tuple[FailureRecord, ...] = ()
    elapsed: float = 0.0

    def total(self, name: str) -> int:
        return sum(getattr(counts, name) for counts in self.endpoints)

    def total_cost(self) -> float | None:
        costs = [c.cost for c in self.endpoints if c.cost is not None]
        return sum(costs) if costs else None

    def failure_classes(self) -> Counter[str]:
        return Counter(f.error_class for f in self.failures)


@dataclass(slots=True)
class RunTally:
    # Keyed by the endpoint itself: a model named "judge x" and the judge "x" share a label.
    endpoints: dict[EndpointConfig, EndpointTally] = field(default_factory=dict)
    failures: list[FailureRecord] = field(default_factory=list)

    def summary(self, elapsed: float) -> RunSummary:
        counts = [_frozen(endpoint, tally) for endpoint, tally in self.endpoints.items()]
        counts.sort(key=lambda c: (c.role == "judge", c.name))
        return RunSummary(tuple(counts), tuple(self.failures), elapsed)


def _frozen(endpoint: EndpointConfig, t: EndpointTally) -> EndpointCounts:
    return EndpointCounts(
        endpoint.name,
        endpoint.role,
        t.jobs,
        t.cached,
        t.to_send,
        t.done,
        t.failed,
        t.prompt_tokens,
        t.completion_tokens,
        t.reasoning_tokens,
        t.cost,
        t.reasoning_mean,
    )
