"""The endpoint's watchdog: a few looks a second at its attempts in flight, applying
`engine.endpoints.tail` to them.

An attempt silent for too long for this endpoint gets a twin (the request queued again at the
front; first answer wins), and one silent for far too long is cancelled as stalled, to be retried.
What "too long" means is learned from the endpoint's own answers, which the pool reports here, and
how often to look follows from it. Streaming answers are never cut while bytes flow: only silence
counts.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.config import EndpointConfig
from engine.endpoints.attempts import Attempt, PendingRequest
from engine.endpoints.tail import HedgeBudget, SilenceTracker, TailPolicy, check_interval
from engine.endpoints.transport import Progress

__all__ = ["MAX_TWINS", "Watchdog"]

MAX_TWINS = 3  # twins per round of attempts: a request whose twins all go silent too is stalling


class Watchdog:
    """Decides, at each look, which attempts are stalled (it cancels them) and which requests
    get a twin (it returns them, for the pool to queue)."""

    def __init__(self, config: EndpointConfig) -> None:
        thinks = config.reasoning or config.thinking is not None
        self._policy = TailPolicy(config.hedge_after, config.stall_timeout, thinks=thinks)
        self._silences = SilenceTracker()
        self._hedges = HedgeBudget(config.concurrency)
        self.interval = 1.0  # seconds until the next look

    def answered(self, progress: Progress) -> None:
        """A successful attempt: its silences teach the thresholds, and it earns twins."""
        self._silences.record(max(progress.longest_silence, 0.0))
        self._hedges.earn()

    def look(self, now: float, attempts: Iterable[Attempt], *, twins: bool) -> list[PendingRequest]:
        """Cancel the stalled attempts; the requests that get a twin now (none unless `twins`)."""
        # once per look: the thresholds sort the recent silences
        hedge_after = self._policy.hedge_threshold(self._silences)
        stall_after = self._policy.stall_threshold(self._silences)
        self.interval = check_interval(hedge_after, stall_after)
        silent: dict[int, PendingRequest] = {}
        for attempt in list(attempts):
            pending = attempt.pending
            if attempt.cancelled_as is not None or pending.finished:
                continue
            silence = attempt.progress.silence(now)
            if silence >= self._policy.patience(stall_after, pending.stalls):
                attempt.cancel("stalled")
            elif hedge_after is not None and silence >= hedge_after:
                silent[id(pending)] = pending
        if not twins or hedge_after is None:
            return []
        chosen = [p for p in silent.values() if self._wants_twin(p, now, hedge_after)]
        for pending in chosen:
            for older in pending.live[:-1]:  # of its silent attempts, keep only the newest
                older.cancel("superseded")
            pending.twins += 1
        return chosen

    def _wants_twin(self, pending: PendingRequest, now: float, hedge_after: float) -> bool:
        """Every attempt of the request is silent past the threshold, and a twin is affordable."""
        return (
            not pending.queued
            and pending.twins < MAX_TWINS
            and all(a.progress.silence(now) >= hedge_after for a in pending.live)
            and self._hedges.spend()
        )
