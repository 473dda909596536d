"""Sums that survive ratings a float can hold but not add up.

Judges' replies are untrusted, and a rating off the scale is averaged as given (FastChat's rule):
a reply of `[[1000...0]]` with 309 digits parses as 1e308, a finite float, but two of them add up
beyond the largest float. FastChat's pandas mean says inf there; `math.fsum` raises OverflowError
(and ValueError for inf - inf), which took `show` and the report down for every judge of the store.
`float_sum` is `math.fsum` where the exact sum is a float, else what plain float addition gives
(inf, or nan), so the board shows inf as it shows any rating off the scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["float_sum"]


def float_sum(values: Iterable[float]) -> float:
    """`math.fsum(values)`, or inf / nan where that sum overflows, never an exception."""
    collected = list(values)
    try:
        return math.fsum(collected)
    except (OverflowError, ValueError):
        return sum(collected, 0.0)
