"""Exact counts of what the fake server saw, so tests and benchmarks can check the engine's traffic.

Everything runs on one event loop, so plain integers are exact without locks. Each request is an
`Exchange` opened at arrival and closed when its handler ends (normally, by an injected fault, or
by cancellation when the client gives up); the closing status is what `/stats` reports. The work per
request is a few dict increments and one list append, because benchmarks measure the engine against
this server and its bookkeeping must not show up in their numbers.
"""

from __future__ import annotations

import time
from collections import Counter

from .options import FAULT_NAMES

__all__ = ["Exchange", "ServerStats"]


class Exchange:
    """One request's record: who asked, and how it ended."""

    __slots__ = ("answered", "digest", "fault", "model", "row", "status")

    # Where `row` (an `arrivals` entry) keeps what only `/stats?arrivals=full` shows.
    LATENCY = 4
    DIGEST = 5

    def __init__(self, row: list[object], model: str, digest: bytes) -> None:
        self.row = row
        self.model = model
        self.digest = digest
        self.status: int | None = None
        self.answered = False
        self.fault: str | None = None

    def waited(self, seconds: float) -> None:
        """Record the latency the server applied to this request (its simulated think time)."""
        self.row[self.LATENCY] = seconds

    def end(self, status: int | None, *, answered: bool = False) -> None:
        """Record the final HTTP status (None: no response) and whether a good answer went out."""
        self.status = status
        self.answered = answered


class ServerStats:
    """Counters since start or the last reset; `snapshot()` is the `/stats` JSON object."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero every counter and forget which request bodies were answered."""
        self.since = time.time()
        self.requests = 0
        self.by_model: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter({"generation": 0, "judge": 0})
        self.status: Counter[str] = Counter()
        self.rate_limited = 0
        self.faults: Counter[str] = Counter(dict.fromkeys(FAULT_NAMES, 0))
        self.duplicates = 0
        self.ok = 0
        self.given_up: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.in_flight_by_model: Counter[str] = Counter()
        self.max_in_flight_by_model: Counter[str] = Counter()
        self.arrivals: list[list[object]] = []
        self._answered: set[bytes] = set()

    def open(self, model: str, kind: str, digest: bytes) -> Exchange:
        """Count a request at arrival; `digest` identifies its body for duplicate detection."""
        row: list[object] = [time.time(), model, kind, None, 0.0, digest]
        self.arrivals.append(row)
        self.requests += 1
        self.by_model[model] += 1
        self.by_kind[kind] += 1
        if digest in self._answered:
            self.duplicates += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        per_model = self.in_flight_by_model[model] + 1
        self.in_flight_by_model[model] = per_model
        if per_model > self.max_in_flight_by_model[model]:
            self.max_in_flight_by_model[model] = per_model
        return Exchange(row, model, digest)

    def close(self, exchange: Exchange) -> None:
        """Count how a request ended; call exactly once per `open`, in a `finally`."""
        self.in_flight -= 1
        self.in_flight_by_model[exchange.model] -= 1
        status = exchange.status
        exchange.row[3] = status
        if status is not None:
            self.status[str(status)] += 1
        if exchange.answered:
            self.ok += 1
            self._answered.add(exchange.digest)

    def count_given_up(self, exchange: Exchange) -> None:
        """The client hung up before the answer was complete (by fault name; "none": healthy)."""
        self.given_up[exchange.fault or "none"] += 1

    def count_fault(self, name: str) -> None:
        """Count an injected fault by its name in FAULT_NAMES."""
        self.faults[name] += 1

    def count_rate_limited(self) -> None:
        """Count a 429 given because a request went over rpm or tpm."""
        self.rate_limited += 1

    def models(self) -> list[str]:
        """Model names seen since the last reset, in order of first arrival."""
        return [model for model in self.by_model if model]

    def snapshot(self, *, with_arrivals: bool = True, full: bool = False) -> dict[str, object]:
        """The `/stats` object; `with_arrivals=False` leaves out the (long) arrivals list.

        since                   time.time() of the start or the last reset
        requests                every request received, valid or not (a bad body counts as model "")
        by_model, by_kind       request counts; kinds are "generation" and "judge"
        status                  {"200": n, "429": n, ...}: every response's HTTP status, including
                                the 200s of malformed and truncated answers
        rate_limited            429s from rpm/tpm (the spurious ones are faults["429"])
        faults                  injected faults by name, see FAULT_NAMES
        duplicates              requests whose body (less stream fields) was already answered OK
        ok                      complete, well-formed answers
        given_up                requests whose client hung up before the answer was complete,
                                by the fault drawn for them ("none": a healthy request)
        in_flight, max_in_flight, max_in_flight_by_model
        arrivals                [time.time(), model, kind, status or None] in arrival order;
                                with `full`, two more: the latency applied in seconds (0.0 when
                                none was, e.g. refused before the wait) and the hex digest of the
                                body (see `openai.body_digest`), so a benchmark can tell
                                which request waited how long
        """
        snapshot: dict[str, object] = {
            "since": self.since,
            "requests": self.requests,
            "by_model": dict(self.by_model),
            "by_kind": dict(self.by_kind),
            "status": dict(self.status),
            "rate_limited": self.rate_limited,
            "faults": dict(self.faults),
            "duplicates": self.duplicates,
            "ok": self.ok,
            "given_up": dict(self.given_up),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "max_in_flight_by_model": dict(self.max_in_flight_by_model),
        }
        if with_arrivals:
            snapshot["arrivals"] = [_arrival(row, full) for row in self.arrivals]
        return snapshot


def _arrival(row: list[object], full: bool) -> list[object]:
    if not full:
        return row[: Exchange.LATENCY]
    digest = row[Exchange.DIGEST]
    return [*row[: Exchange.DIGEST], digest.hex() if isinstance(digest, bytes) else digest]
