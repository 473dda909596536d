"""What to do about a failed attempt: the error class, whether to retry, and how long to wait.

Retry 408, 409, 429, 5xx, 529, timeouts, connection errors and truncated or malformed bodies.
Do not retry 400/422 (the request itself is wrong) nor 401/403/404 (the endpoint is unusable: fail
it fast instead of hammering it), nor a redirect: requests to model APIs never follow one, since
the key would go along to wherever it points (aiohttp drops `Authorization` on a cross-origin
redirect, but not Anthropic's `x-api-key`) and a 302/303 would turn the POST into a GET whose reply
would be taken for an answer. The message names the target, so the user can fix `base_url`.
Waits use exponential backoff with full jitter, unless the server said how long to wait
(`Retry-After`, `retry-after-ms`, OpenAI's `x-ratelimit-reset-*` durations, Anthropic's
`anthropic-ratelimit-*-reset` RFC 3339 timestamps).
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from engine.errors import FatalRequestError, RequestError, RetryableError
from engine.redact import redact

__all__ = ["backoff_delay", "error_for_status", "redirect_error", "retry_after_seconds"]

_ENDPOINT_FATAL = {401: "auth", 403: "forbidden", 404: "not_found"}
_REQUEST_FATAL = {400: "bad_request", 422: "bad_request"}
DETAIL_CHARS = 300  # of a server's error message, in a failure message
LOCATION_CHARS = 200
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Python 3.10's fromisoformat rejects `Z` and fractions that are not 3 or 6 digits; spell RFC 3339.
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?(?:([Zz])|([+-])(\d\d):(\d\d))"
)
_OPENAI_RESETS = ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
_ANTHROPIC_RESETS = tuple(
    f"anthropic-ratelimit-{bucket}-reset"
    for bucket in ("requests", "tokens", "input-tokens", "output-tokens")
)


def error_for_status(
    status: int, headers: Mapping[str, str], detail: str, where: str
) -> RequestError:
    """Classify a non-2xx answer. `where` names the endpoint for the message."""
    if 300 <= status < 400:
        return redirect_error(status, headers, where)
    # Masked before it is cut: a cut could leave too little of a key to recognise.
    message = f"{where} answered HTTP {status}: {redact(detail)[:DETAIL_CHARS]}".rstrip(": ")
    if status in _ENDPOINT_FATAL:
        hint = {
            401: "check api_key_env",
            403: "check the key's permissions",
            404: "check model and base_url",
        }
        return FatalRequestError(
            _ENDPOINT_FATAL[status],
            f"{message} ({hint[status]})",
            status=status,
            endpoint_fatal=True,
        )
    if status in _REQUEST_FATAL:
        return FatalRequestError(
            _REQUEST_FATAL[status], message, status=status, endpoint_fatal=False
        )
    error_class = (
        "rate_limit" if status == 429 else "overloaded" if status == 529 else "server_error"
    )
    if status not in (408, 409, 429, 529) and status < 500:
        return FatalRequestError("client_error", message, status=status, endpoint_fatal=False)
    return RetryableError(
        error_class, message, status=status, retry_after=retry_after_seconds(headers)
    )


def redirect_error(status: int, headers: Mapping[str, str], where: str) -> FatalRequestError:
    """A 3xx: not followed, not retried; the message says where it pointed.

    Not endpoint-fatal: a redirect may be one replica's or one path's, and each costs a request
    that is answered at once and never paid for.
    """
    location = headers.get("Location")
    target = "no Location header"
    if location:
        printable = "".join(c if c.isprintable() else "?" for c in redact(location))
        target = f"Location: {printable[:LOCATION_CHARS]}"
    return FatalRequestError(
        "redirect",
        f"{where} answered HTTP {status} ({target}); requests to model APIs do not follow "
        "redirects, which would carry the key elsewhere: set base_url to the final URL",
        status=status,
        endpoint_fatal=False,
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """How long the server asked us to wait, in seconds, from its most precise header.

    `retry-after-ms` beats `Retry-After` (whole seconds, rounded up). The `x-ratelimit-reset-*`
    and `anthropic-ratelimit-*-reset` headers say when a whole window refills, which overstates the
    wait, so they only count when neither Retry-After header is there (the longest one wins).
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds and (wait_ms := _seconds_or_date(milliseconds, date=False)):
        return wait_ms[0] / 1000
    after = headers.get("retry-after")
    if after and (seconds := _seconds_or_date(after)):
        return seconds[0]
    waits: list[float] = []
    for name in _OPENAI_RESETS:
        value = headers.get(name)
        if value:
            waits.extend(_duration(value))
    for name in _ANTHROPIC_RESETS:
        value = headers.get(name)
        if value:
            waits.extend(_until_timestamp(value))
    return max(waits) if waits else None


def _seconds_or_date(value: str, *, date: bool = True) -> list[float]:
    """A wait in seconds (`inf` stays inf, for the caller's cap; NaN means nothing) or an HTTP
    date's distance from now."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return [] if math.isnan(seconds) else [max(0.0, seconds)]
    if not date:
        return []
    try:
        return [max(0.0, parsedate_to_datetime(value).timestamp() - time.time())]
    except (TypeError, ValueError):
        return []


def _until_timestamp(value: str) -> list[float]:
    """Seconds until an RFC 3339 instant such as `2025-01-01T12:00:30Z` (0 if already past)."""
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        return []
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    fraction = float(match[7] or 0)
    try:
        zone = timezone.utc
        if match[9]:  # an offset of a day or more is refused by `timezone`, as a 32nd day is
            offset = timedelta(hours=int(match[10]), minutes=int(match[11]))
            zone = timezone(-offset if match[9] == "-" else offset)
        instant = datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:
        return []
    return [max(0.0, instant.timestamp() + fraction - time.time())]


def _duration(value: str) -> list[float]:
    """OpenAI's reset headers look like `1s`, `6m0s`, `20ms` or `1h2m3.5s`."""
    parts = _DURATION_PART.findall(value)
    if not parts:
        return _seconds_or_date(value)
    return [sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)]


def backoff_delay(
    attempt: int, *, base: float = 0.5, cap: float = 60.0, rng: random.Random | None = None
) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))] (AWS's recommended variant)."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(0.0, ceiling)
