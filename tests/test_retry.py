"""Which failures are retried, and how long the engine waits before the next attempt."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from engine.endpoints.retry import backoff_delay, error_for_status, retry_after_seconds
from engine.errors import FatalRequestError, RetryableError


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 529])
def test_transient_statuses_are_retried(status: int) -> None:
    assert isinstance(error_for_status(status, {}, "busy", "m"), RetryableError)


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_and_missing_model_fail_the_whole_endpoint(status: int) -> None:
    error = error_for_status(status, {}, "nope", "alpha at http://x/v1")
    assert isinstance(error, FatalRequestError) and error.endpoint_fatal
    assert "alpha at http://x/v1 answered HTTP" in str(error)


@pytest.mark.parametrize("status", [400, 422])
def test_bad_requests_fail_only_that_request(status: int) -> None:
    error = error_for_status(status, {}, "context too long", "m")
    assert isinstance(error, FatalRequestError) and not error.endpoint_fatal
    assert "context too long" in str(error)


def test_retry_after_headers_in_all_their_forms() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"x-ratelimit-reset-requests": "6m0s"}) == 360
    assert retry_after_seconds({"x-ratelimit-reset-tokens": "20ms"}) == pytest.approx(0.02)
    assert retry_after_seconds({"x-ratelimit-reset-tokens": "1h2m3.5s"}) == 3723.5
    # the most precise header wins; a window's full reset only counts without Retry-After
    assert retry_after_seconds({"retry-after": "1", "retry-after-ms": "200"}) == 0.2
    assert retry_after_seconds({"retry-after": "2", "x-ratelimit-reset-requests": "6m0s"}) == 2
    soon = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert 25 < (retry_after_seconds({"retry-after": format_datetime(soon)}) or 0) <= 30
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon-ish"}) is None


def test_a_429_carries_the_servers_wait() -> None:
    error = error_for_status(429, {"retry-after": "7"}, "slow down", "m")
    assert error.error_class == "rate_limit" and error.retry_after == 7


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(60.0, 0.5 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, rng=rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # jitter spans the whole range


def test_retry_after_values_no_sane_server_sends_are_kept_for_the_cap_or_ignored() -> None:
    assert retry_after_seconds({"retry-after": "inf"}) == float("inf")
    assert retry_after_seconds({"retry-after": "1e9"}) == 1e9
    assert retry_after_seconds({"retry-after": "nan"}) is None
    assert retry_after_seconds({"retry-after-ms": "nan", "retry-after": "2"}) == 2
    assert retry_after_seconds({"retry-after": "-5"}) == 0
    far = format_datetime(datetime(2099, 1, 1, tzinfo=timezone.utc))
    assert (retry_after_seconds({"retry-after": far}) or 0) > 60 * 365 * 24 * 3600


def test_a_reset_timestamp_with_an_impossible_offset_is_ignored_and_the_429_stays_a_429() -> None:
    # `timezone` refuses offsets of a day or more: that ValueError turned the 429 into a
    # "malformed" answer, retried without pausing the endpoint or halving its concurrency.
    headers = {"anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00+99:00"}
    assert retry_after_seconds(headers) is None
    error = error_for_status(429, headers, "rate_limit_error: slow down", "claude")
    assert error.error_class == "rate_limit"
