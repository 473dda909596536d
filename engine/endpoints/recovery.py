"""What an endpoint makes of an attempt that failed: the error it records, and how long to wait.

`engine.endpoints.retry` classifies what the server said; this module adds what only the endpoint
knows: that a 400 naming a parameter reasoning models refuse dooms every request it will send
(so the endpoint is done, and the message names the key to set), that an endpoint which has never
answered and keeps stalling or refusing is stuck rather than slow, that a server's Retry-After is
honoured only up to `max_retry_after`, and how long a retry waits.
"""

from __future__ import annotations

import logging
import random

from engine.config import EndpointConfig
from engine.endpoints.retry import backoff_delay
from engine.errors import FatalRequestError, RequestError, RetryableError
from engine.reasoning import unsupported_parameter_hint

__all__ = [
    "STALLS_BEFORE_DEAD",
    "RetryWait",
    "build_failed",
    "explained",
    "never_answered",
    "stalled_error",
]

log = logging.getLogger(__name__)

# Rounds of one request cut as stalled, with no answer from the endpoint ever, before it is failed:
# the second round already waited twice as long, so a slow server is told from a stuck one.
STALLS_BEFORE_DEAD = 2


def explained(error: FatalRequestError, config: EndpointConfig) -> FatalRequestError:
    """A 400 about a parameter reasoning models refuse says which key to set. Every request to
    the endpoint carries the same parameters, so none can succeed: the endpoint is done."""
    hint = unsupported_parameter_hint(str(error), config) if error.status == 400 else None
    if hint is None:
        return error
    message = f"{error}; {hint}"
    return FatalRequestError(error.error_class, message, status=400, endpoint_fatal=True)


def never_answered(error: RequestError, hint: str) -> FatalRequestError:
    """The endpoint has not answered once and keeps failing this way: fail it, with a hint."""
    return FatalRequestError("unreachable", f"{error}; {hint}", endpoint_fatal=True)


def stalled_error(where: str, silence: float) -> RetryableError:
    return RetryableError(
        "stalled",
        f"{where}: no bytes for {silence:.0f}s, far longer than this endpoint's answers take "
        "(stall_timeout)",
    )


def build_failed(name: str, exc: Exception) -> FatalRequestError:
    """An adapter could not build a request: a bug, failing that request only."""
    return FatalRequestError(
        "internal",
        f"{name}: cannot build the request ({type(exc).__name__}: {exc})",
        endpoint_fatal=False,
    )


class RetryWait:
    """How long a retry waits: the server's word when it gave one (capped at `max_retry_after`,
    with a warning the first time), else exponential backoff with full jitter."""

    def __init__(self, config: EndpointConfig, rng: random.Random) -> None:
        self._name = config.name
        self._cap = config.max_retry_after
        self._rng = rng
        self._warned = False

    def pause(self, error: RequestError, attempts: int) -> float:
        """A 429 pauses the whole endpoint this long."""
        wait = self._capped(error.retry_after)
        return wait if wait is not None else backoff_delay(attempts, rng=self._rng)

    def backoff(self, error: RequestError, attempts: int) -> float:
        """Any other retryable error sends its request again after this long."""
        delay = backoff_delay(attempts, rng=self._rng)
        wait = self._capped(error.retry_after)
        return delay if wait is None else max(delay, wait)

    def _capped(self, retry_after: float | None) -> float | None:
        if retry_after is None or retry_after <= self._cap:
            return retry_after
        if not self._warned:
            self._warned = True
            log.warning(
                "%s asked to wait %.0fs before retrying; waiting %gs instead (max_retry_after)",
                self._name,
                min(retry_after, 1e12),
                self._cap,
            )
        return self._cap
