"""Live progress of a run: what is done, how fast, what it costs, and when it will end.

A sampler turns the pipeline's tally and the endpoint pools' counters into one snapshot per
endpoint and per phase (generation, judging), with rates over the last few seconds, and hands
them to a `ProgressView` every `view.interval` seconds (the CLI's views are in
`engine.cli.progress_views`). Views only read; the run never waits on them.

Endpoints are told apart by role as well as name (a model may be called "judge gpt-4" next to the
judge "gpt-4"): each endpoint row sits under its phase, and snapshots carry the role.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from engine.config import EndpointConfig
from engine.run.tally import RunTally

if TYPE_CHECKING:
    from engine.endpoints.pool import EndpointPool

__all__ = ["INTERVAL_RANGE", "ProgressSampler", "ProgressView", "Snapshot", "report_progress"]

PHASES = ("generation", "judging")
RATE_WINDOW = 10.0  # seconds of history behind requests/s, tokens/s and the ETA
# The seconds between a view's snapshots that a caller may ask for (the CLI asks 0.1 at least):
# at 0, or a nanosecond, a view would be shown without pause, taking a core from the run.
INTERVAL_RANGE = (0.01, 86_400.0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    name: str  # the model's or judge's name, or the phase's
    role: str  # 'model' | 'judge' | 'phase'
    phase: str  # 'generation' | 'judging'
    jobs: int
    finished: int
    cached: int
    failed: int
    requests_per_s: float
    tokens_per_s: float
    retries: int
    rate_limited: int
    cost: float | None
    eta: float | None  # seconds
    hedged: int = 0  # twins sent for attempts that went silent
    stalled: int = 0  # attempts given up as stalled
    paused_until: float | None = None  # time.time() a 429 pause ends, while one is on

    @property
    def fraction(self) -> float:
        return self.finished / self.jobs if self.jobs else 1.0


@dataclass(slots=True)
class _Counters:
    finished: int = 0
    ok: int = 0
    tokens: int = 0
    retries: int = 0
    rate_limited: int = 0


class ProgressSampler:
    def __init__(self, tally: RunTally, pools: Mapping[EndpointConfig, EndpointPool]) -> None:
        self.tally = tally
        self.pools = pools
        self._history: dict[EndpointConfig, deque[tuple[float, _Counters]]] = {}

    def sample(self) -> list[Snapshot]:
        """Per phase (generation, judging): the phase's sums, then each of its endpoints."""
        now = time.monotonic()
        endpoints = [
            snapshot
            for config, pool in self.pools.items()
            if (snapshot := self._endpoint(config, pool, now)) is not None
        ]
        snapshots = []
        for phase in PHASES:
            members = [s for s in endpoints if s.phase == phase]
            if members:
                snapshots += [_sum(phase, members), *members]
        return snapshots

    def _endpoint(self, config: EndpointConfig, pool: EndpointPool, now: float) -> Snapshot | None:
        tally = self.tally.endpoints.get(config)
        if tally is None:
            return None
        counters = _Counters(
            tally.cached + tally.done + tally.failed,
            pool.stats.ok,
            tally.completion_tokens,
            pool.stats.retries,
            pool.stats.rate_limited,
        )
        history = self._history.setdefault(config, deque())
        history.append((now, counters))
        while len(history) > 2 and now - history[1][0] >= RATE_WINDOW:
            history.popleft()
        then, old = history[0]
        span = now - then
        finish_rate = (counters.finished - old.finished) / span if span > 0 else 0.0
        remaining = tally.jobs - counters.finished
        return Snapshot(
            name=config.name,
            role=config.role,
            phase="judging" if config.role == "judge" else "generation",
            jobs=tally.jobs,
            finished=counters.finished,
            cached=tally.cached,
            failed=tally.failed,
            requests_per_s=(counters.ok - old.ok) / span if span > 0 else 0.0,
            tokens_per_s=(counters.tokens - old.tokens) / span if span > 0 else 0.0,
            retries=counters.retries,
            rate_limited=counters.rate_limited,
            cost=tally.cost,
            eta=remaining / finish_rate if finish_rate > 0 and remaining else None,
            hedged=pool.stats.hedged,
            stalled=pool.stats.stalled,
            paused_until=_wall_clock(pool.paused_until, now),
        )


def _wall_clock(monotonic: float | None, now: float) -> float | None:
    return None if monotonic is None else time.time() + (monotonic - now)


def _sum(phase: str, parts: list[Snapshot]) -> Snapshot:
    costs = [p.cost for p in parts if p.cost is not None]
    etas = [p.eta for p in parts if p.eta is not None]
    return Snapshot(
        name=phase,
        role="phase",
        phase=phase,
        jobs=sum(p.jobs for p in parts),
        finished=sum(p.finished for p in parts),
        cached=sum(p.cached for p in parts),
        failed=sum(p.failed for p in parts),
        requests_per_s=sum(p.requests_per_s for p in parts),
        tokens_per_s=sum(p.tokens_per_s for p in parts),
        retries=sum(p.retries for p in parts),
        rate_limited=sum(p.rate_limited for p in parts),
        cost=sum(costs) if costs else None,
        eta=max(etas) if etas else None,
        hedged=sum(p.hedged for p in parts),
        stalled=sum(p.stalled for p in parts),
    )


class ProgressView(Protocol):
    """What shows a run's progress: `show` every `interval` seconds, `close` once at the end."""

    interval: float

    def show(self, snapshots: list[Snapshot]) -> None: ...

    def close(self, snapshots: list[Snapshot]) -> None: ...


async def report_progress(
    sampler: ProgressSampler, view: ProgressView, done: asyncio.Event
) -> None:
    """Show snapshots every `view.interval` seconds until `done`, then a final one."""
    while not done.is_set():
        try:
            await asyncio.wait_for(done.wait(), view.interval)
        except asyncio.TimeoutError:
            view.show(sampler.sample())
    view.close(sampler.sample())
