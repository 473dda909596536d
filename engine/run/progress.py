"""Live progress of a run: what is done, how fast, what it costs, and when it will end.

A sampler turns the pipeline's tally and the endpoint pools' counters into one snapshot per
endpoint and per phase (generation, judging), with rates over the last few seconds. Three views
show it: a rich live table when stdout is a terminal, a plain log line every few seconds when it
is not, and JSON lines for machines. The views only read; the run never waits on them.

Endpoints are told apart by role as well as name (a model may be called "judge gpt-4" next to the
judge "gpt-4"): each endpoint row sits under its phase, and JSON snapshots carry the role. Names
are escaped for the terminal, and never read as rich markup.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

import orjson

from engine.config import EndpointConfig, JudgeConfig
from engine.display import terminal_text
from engine.report.tables import endpoint_role, format_dollars
from engine.run.scheduler import RunTally

if TYPE_CHECKING:
    from engine.endpoints.pool import EndpointPool

__all__ = ["PROGRESS_MODES", "ProgressSampler", "Snapshot", "report_progress"]

PROGRESS_MODES = ("auto", "rich", "plain", "json", "quiet")
PHASES = ("generation", "judging")
RATE_WINDOW = 10.0  # seconds of history behind requests/s, tokens/s and the ETA


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
            role=endpoint_role(config),
            phase="judging" if isinstance(config, JudgeConfig) else "generation",
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


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def plain_line(snapshot: Snapshot) -> str:
    line = (
        f"{terminal_text(snapshot.name, name=True)}: {snapshot.finished}/{snapshot.jobs} done "
        f"({snapshot.cached} cached, {snapshot.failed} failed), "
        f"{snapshot.requests_per_s:.1f} req/s, {snapshot.tokens_per_s:.0f} tok/s, "
        f"{snapshot.retries} retries, {snapshot.rate_limited} 429s, "
        f"ETA {_clock(snapshot.eta)}, cost {format_dollars(snapshot.cost)}"
    )
    if snapshot.hedged or snapshot.stalled:
        line += f", {snapshot.hedged} hedged, {snapshot.stalled} stalled"
    return line


def pause_line(snapshot: Snapshot) -> str | None:
    """`judge: paused until 23:14:05 (rate limited: ...)`, while a 429 pause is on."""
    if snapshot.paused_until is None:
        return None
    until = time.strftime("%H:%M:%S", time.localtime(snapshot.paused_until))
    name = terminal_text(snapshot.name, name=True)
    return f"{name}: paused until {until} (rate limited: the server asked to wait)"


class View(Protocol):
    interval: float

    def show(self, snapshots: list[Snapshot]) -> None: ...

    def close(self, snapshots: list[Snapshot]) -> None: ...


class PlainView:
    """A log line per phase every `interval` seconds, for logs and pipes."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    def show(self, snapshots: list[Snapshot]) -> None:
        for snapshot in snapshots:
            if snapshot.role == "phase":
                print(f"progress {plain_line(snapshot)}", file=sys.stderr, flush=True)
            elif (paused := pause_line(snapshot)) is not None:
                print(f"progress {paused}", file=sys.stderr, flush=True)

    def close(self, snapshots: list[Snapshot]) -> None:
        self.show(snapshots)


class JsonView:
    """One JSON object per tick on stderr: {"progress": [snapshot, ...]}."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    def show(self, snapshots: list[Snapshot]) -> None:
        line = orjson.dumps({"progress": [asdict(s) for s in snapshots]}).decode()
        print(line, file=sys.stderr, flush=True)

    def close(self, snapshots: list[Snapshot]) -> None:
        self.show(snapshots)


class RichView:
    """A live table with one bar per phase and per endpoint, redrawn in place."""

    def __init__(self, interval: float) -> None:
        from rich.console import Console
        from rich.live import Live

        self.interval = interval
        self._live = Live(console=Console(), auto_refresh=False, transient=False)
        self._live.start()

    def _table(self, snapshots: list[Snapshot]) -> object:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False)
        for header in ("", "", "done", "cached", "req/s", "tok/s", "retries", "429s", "failed"):
            table.add_column(header, justify="right" if header else "left")
        table.add_column("ETA", justify="right")
        table.add_column("cost", justify="right")
        table.add_column("")
        for s in snapshots:
            # Text, not a markup string: a name like "[red]x" is shown as it is.
            name = terminal_text(s.name, name=True)
            table.add_row(
                Text(name, style="bold") if s.role == "phase" else Text(f"  {name}"),
                ProgressBar(total=max(1, s.jobs), completed=s.finished, width=24),
                f"{s.finished}/{s.jobs}",
                str(s.cached),
                f"{s.requests_per_s:.1f}",
                f"{s.tokens_per_s:.0f}",
                str(s.retries),
                str(s.rate_limited),
                str(s.failed),
                _clock(s.eta),
                format_dollars(s.cost),
                _status(s),
            )
        return table

    def show(self, snapshots: list[Snapshot]) -> None:
        self._live.update(self._table(snapshots), refresh=True)  # type: ignore[arg-type]

    def close(self, snapshots: list[Snapshot]) -> None:
        self.show(snapshots)
        self._live.stop()


def _status(snapshot: Snapshot) -> str:
    """What the numbers do not say: a 429 pause, twins sent for silent attempts, stalls cut."""
    notes = []
    if snapshot.paused_until is not None:
        notes.append(
            f"paused until {time.strftime('%H:%M:%S', time.localtime(snapshot.paused_until))}"
        )
    if snapshot.hedged:
        notes.append(f"{snapshot.hedged} hedged")
    if snapshot.stalled:
        notes.append(f"{snapshot.stalled} stalled")
    return ", ".join(notes)


def make_view(mode: str, *, interval: float | None = None) -> View | None:
    """The view for a mode; 'auto' is rich on a terminal, plain lines otherwise."""
    if mode == "auto":
        mode = "rich" if sys.stdout.isatty() else "plain"
    if mode == "quiet":
        return None
    if mode == "rich":
        return RichView(interval or 0.5)
    if mode == "json":
        return JsonView(interval or 5.0)
    return PlainView(interval or 5.0)


async def report_progress(sampler: ProgressSampler, view: View, done: asyncio.Event) -> None:
    """Show snapshots every `view.interval` seconds until `done`, then a final one."""
    while not done.is_set():
        try:
            await asyncio.wait_for(done.wait(), view.interval)
        except asyncio.TimeoutError:
            view.show(sampler.sample())
    view.close(sampler.sample())
