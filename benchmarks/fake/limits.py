"""Requests-per-minute and tokens-per-minute limits as real providers enforce them.

A sliding window of `rate_window` seconds admits `rpm * rate_window / 60` requests and
`tpm * rate_window / 60` tokens (prompt tokens + max_tokens). A request over either budget is not
admitted and learns how long until enough of the window has slid by — the exact value a provider
puts in `retry-after-ms`. Rejected requests use no budget. A request larger than the whole token
budget is charged the whole budget, so it gets through once the window is empty instead of never.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["RateDecision", "RateLimiter", "SlidingWindow"]


@dataclass(frozen=True)
class RateDecision:
    """Why a request was refused (`limit` is "requests" or "tokens") and when to come back."""

    limit: str
    retry_after: float


class SlidingWindow:
    """Admitted (time, tokens) pairs within the last `span` seconds, oldest first."""

    __slots__ = ("_entries", "_tokens")

    def __init__(self) -> None:
        self._entries: deque[tuple[float, float]] = deque()
        self._tokens = 0.0

    def _slide(self, start: float) -> None:
        entries = self._entries
        while entries and entries[0][0] <= start:
            self._tokens -= entries.popleft()[1]
        if not entries:
            self._tokens = 0.0  # no float residue may outlive the entries it came from

    def admit(
        self, now: float, tokens: float, span: float, max_requests: float, max_tokens: float
    ) -> RateDecision | None:
        """Record the request and return None if it fits, else say which budget it exceeds.

        A budget of 0 means unlimited.
        """
        self._slide(now - span)
        entries = self._entries
        if max_requests and len(entries) + 1 > max(max_requests, 1.0):
            return RateDecision("requests", entries[0][0] + span - now)
        if max_tokens:
            tokens = min(tokens, max_tokens)
            excess = self._tokens + tokens - max_tokens
            if excess > 0:
                return RateDecision("tokens", self._time_to_free(excess) + span - now)
        entries.append((now, tokens))
        self._tokens += tokens
        return None

    def _time_to_free(self, excess: float) -> float:
        """Arrival time of the entry whose expiry frees at least `excess` tokens."""
        freed = 0.0
        for arrived, tokens in self._entries:
            freed += tokens
            if freed >= excess:
                return arrived
        return self._entries[-1][0]


class RateLimiter:
    """One sliding window for the whole server, or one per key (model) when asked to."""

    def __init__(self) -> None:
        self._windows: dict[str, SlidingWindow] = {}

    def reset(self) -> None:
        """Forget every admitted request."""
        self._windows.clear()

    def admit(
        self, key: str, now: float, tokens: float, span: float, rpm: float, tpm: float
    ) -> RateDecision | None:
        """Admit a request of `tokens` under `key`'s window, or say why not."""
        if not rpm and not tpm:
            return None
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = SlidingWindow()
        return window.admit(now, tokens, span, rpm * span / 60, tpm * span / 60)
