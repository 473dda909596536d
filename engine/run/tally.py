"""What a run did, per endpoint and in total: the counts the summary, progress and `--json` show.

Plain counters, filled in by the pipeline (`engine.run.scheduler`) as jobs finish; kept apart from
it so that the displays read them without depending on the run loop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from engine.config import EndpointConfig

__all__ = ["CompletionEstimate", "EndpointTally", "FailureRecord", "RunTally"]


@dataclass(frozen=True, slots=True)
class CompletionEstimate:
    """Plan: the mean completion tokens of a label's earlier answers (reasoning included) and of
    their reasoning tokens, when the server reported any."""

    completion: float
    reasoning: float | None = None


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
class FailureRecord:
    job: str
    endpoint: str
    error_class: str
    attempts: int
    message: str


@dataclass(slots=True)
class RunTally:
    # Keyed by the endpoint itself: a model named "judge x" and the judge "x" share a label.
    endpoints: dict[EndpointConfig, EndpointTally] = field(default_factory=dict)
    failures: list[FailureRecord] = field(default_factory=list)
    elapsed: float = 0.0

    def total(self, name: str) -> int:
        return sum(getattr(tally, name) for tally in self.endpoints.values())

    def total_cost(self) -> float | None:
        costs = [t.cost for t in self.endpoints.values() if t.cost is not None]
        return sum(costs) if costs else None

    def failure_classes(self) -> Counter[str]:
        return Counter(f.error_class for f in self.failures)
