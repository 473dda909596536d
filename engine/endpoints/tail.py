"""When a request in flight is worth a twin, and when it is dead: tail latency without cutting the
slow but healthy.

A fixed timeout is wrong twice over: long enough for the slowest honest answer (minutes, for a long
generation on a busy server), it lets a hung request hold its slot and everything queued behind it
for minutes; short, it cuts honest answers and pays for them again. What separates a hang from a
slow answer is *silence*: how long since the last byte arrived (a streamed answer sends bytes all
along; a hung one sends none). So each endpoint learns, from its own successful attempts, how long
its silences normally last, and judges every attempt in flight against that:

- **Hedge.** An attempt silent for longer than `hedge_after` (default: twice this endpoint's 95th
  percentile silence, at least HEDGE_FLOOR seconds) gets a twin: the same request sent again,
  first answer wins, the other is cancelled (if the twin goes silent too, the older one is dropped
  for a new twin, up to three). Requests are idempotent here (the answer is cached under the
  request's key), so a twin only costs its tokens; a budget keeps twins to a tenth of requests
  even when a whole server slows down.
- **Stall.** An attempt silent for longer than `stall_timeout` (default: ten times the 99th
  percentile silence, at least STALL_FLOOR seconds; STALL_COLD before the endpoint has answered
  enough to know; a reasoning endpoint, silent while it thinks, gets THINKING_FLOOR and
  THINKING_COLD) is cancelled and retried as a `stalled` attempt. Without streaming, a long but
  healthy answer is silent until it is whole, just as a hang is, and the silences learned are
  those of the answers that made it: so each time a request is cut, its next attempt may stay
  silent twice as long (`patience`), and a slow answer is eventually taken (`timeout` bounds it).

Both thresholds only apply to silence, so an answer that keeps streaming is never hedged or cut;
the endpoint's `timeout` still bounds any single attempt, so a server trickling bytes forever
cannot hold a run open either. Pure logic over numbers; the endpoint pool does the I/O.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = [
    "HEDGE_FLOOR",
    "HEDGE_SHARE",
    "MIN_SAMPLES",
    "STALL_COLD",
    "STALL_FLOOR",
    "THINKING_COLD",
    "THINKING_FLOOR",
    "HedgeBudget",
    "SilenceTracker",
    "TailPolicy",
    "check_interval",
]

MIN_SAMPLES = 20  # successful attempts before the endpoint's own distribution is trusted
WINDOW = 512  # recent successful attempts the quantiles are taken over
HEDGE_FACTOR = 2.0
HEDGE_FLOOR = 1.0
STALL_FACTOR = 10.0
STALL_FLOOR = 60.0
STALL_COLD = 180.0
# A reasoning model (OpenAI's reasoning models, Claude's extended thinking) sends no byte while it
# thinks, minutes at high effort: its stall thresholds start where most attempts' `timeout` is.
THINKING_COLD = 600.0
THINKING_FLOOR = 300.0
HEDGE_SHARE = 0.1  # twins earned per successful attempt
MAX_DOUBLINGS = 20  # of a request's stall threshold: past a day whatever it started at


class SilenceTracker:
    """The longest silence of each of the endpoint's recent successful attempts."""

    def __init__(self, window: int = WINDOW) -> None:
        self._silences: deque[float] = deque(maxlen=window)
        self._sorted: list[float] | None = None

    def record(self, silence: float) -> None:
        if math.isfinite(silence) and silence >= 0:
            self._silences.append(silence)
            self._sorted = None

    def __len__(self) -> int:
        return len(self._silences)

    def quantile(self, q: float) -> float | None:
        """The q-quantile (nearest rank) of the recent silences; None before MIN_SAMPLES."""
        if len(self._silences) < MIN_SAMPLES:
            return None
        if self._sorted is None:
            self._sorted = sorted(self._silences)
        rank = min(len(self._sorted) - 1, max(0, math.ceil(q * len(self._sorted)) - 1))
        return self._sorted[rank]


class HedgeBudget:
    """Twins are earned by successes (HEDGE_SHARE each) and spent one per twin, so a server that
    slows down as a whole is sent at most a tenth more requests, not twice its load. A quarter of
    the concurrency is there from the start (hangs cluster when a server hiccups)."""

    def __init__(self, concurrency: int) -> None:
        self.burst = max(2.0, concurrency / 4)
        self._tokens = self.burst

    def earn(self) -> None:
        self._tokens = min(2 * self.burst, self._tokens + HEDGE_SHARE)

    def spend(self) -> bool:
        if self._tokens < 1.0 - 1e-9:  # ten successes at 0.1 make one twin, rounding aside
            return False
        self._tokens -= 1.0
        return True


@dataclass(frozen=True, slots=True)
class TailPolicy:
    """The endpoint's settings: `hedge_after` None = learn it, 0 = never hedge; `stall_timeout`
    None = learn it."""

    hedge_after: float | None = None
    stall_timeout: float | None = None
    thinks: bool = False  # a reasoning endpoint: long silences are its nature, not a hang

    def hedge_threshold(self, tracker: SilenceTracker) -> float | None:
        """Seconds of silence after which an attempt gets a twin; None: no twins (yet)."""
        if self.hedge_after is not None:
            return self.hedge_after or None
        p95 = tracker.quantile(0.95)
        return None if p95 is None else max(HEDGE_FLOOR, HEDGE_FACTOR * p95)

    def stall_threshold(self, tracker: SilenceTracker) -> float:
        """Seconds of silence after which an attempt is given up as stalled."""
        if self.stall_timeout is not None:
            return self.stall_timeout
        p99 = tracker.quantile(0.99)
        cold, floor = (THINKING_COLD, THINKING_FLOOR) if self.thinks else (STALL_COLD, STALL_FLOOR)
        return cold if p99 is None else max(floor, STALL_FACTOR * p99)

    def patience(self, stall_after: float, stalls: int) -> float:
        """The stall threshold for a request already cut `stalls` times: twice as long each time.

        Without streaming, a long but healthy answer is silent until it is whole, as a hang is; a
        request cut for it is sent again with more patience, until `timeout` bounds it instead."""
        return stall_after * 2.0 ** min(stalls, MAX_DOUBLINGS)


def check_interval(hedge_after: float | None, stall_after: float) -> float:
    """How often attempts in flight are looked at: a fraction of the shortest threshold."""
    shortest = min(hedge_after or math.inf, stall_after)
    return min(1.0, max(0.05, shortest / 8))
