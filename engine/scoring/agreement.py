"""How much two judges (or a judge and human raters) agree, each figure with the items behind it.

Users pick or retire a judge on these numbers, so every figure says how many items it rests on and
is None where it is undefined (too few items, or no variation to agree about) rather than a
misleading 0 or 1. For ratings: Krippendorff's alpha with the interval metric (any number of
judges, items some judges left out), Spearman's rank correlation of two judges' ratings of the same
items, and Kendall's tau-b between two leaderboards. For pairwise verdicts: Cohen's kappa, and the
agreement ratio with and without ties exactly as FastChat's `compute_agreement.py` counts it (every
verdict of one judge against every verdict of the other on the same item; any verdict containing
"tie" is a tie; "without ties" leaves out every pair where either side is a tie). Pure functions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, product
from typing import TypeVar

from engine.scoring.floats import float_sum
from engine.scoring.reliability import pearson

__all__ = [
    "Agreement",
    "VerdictAgreement",
    "average_ranks",
    "cohen_kappa",
    "kendall_tau_b",
    "krippendorff_alpha_interval",
    "oriented_verdict",
    "spearman",
    "verdict_agreement",
    "verdict_kappa",
    "verdict_pairs",
]

Key = TypeVar("Key")
TIE = "tie"


@dataclass(frozen=True, slots=True)
class Agreement:
    """One agreement figure and the number of items it rests on (None: undefined)."""

    value: float | None
    items: int


@dataclass(frozen=True, slots=True)
class VerdictAgreement:
    """FastChat's agreement ratio: `agreed` of `total` verdict pairs were the same verdict."""

    agreed: int
    total: int

    @property
    def value(self) -> float | None:
        return self.agreed / self.total if self.total else None


def krippendorff_alpha_interval(units: Iterable[Sequence[float | None]]) -> Agreement:
    """Krippendorff's alpha, interval metric: 1 - observed / expected disagreement.

    `units` holds one sequence per item, one value per judge, None where that judge gave none.
    Only items with at least two values can be compared ("pairable"); `items` counts those. The
    squared differences are summed in closed form: sum over ordered pairs i != j of (v_i - v_j)^2
    = 2n * sum (v - mean)^2 (`_pair_spread`).
    """
    pairable = [values for values in (_present(unit) for unit in units) if len(values) >= 2]
    n = sum(len(values) for values in pairable)
    if n < 2 or not all(math.isfinite(v) for values in pairable for v in values):
        return Agreement(None, len(pairable))  # an infinite rating has no interval distance
    observed = float_sum(_pair_spread(values) / (len(values) - 1) for values in pairable) / n
    expected = _pair_spread([v for values in pairable for v in values]) / (n * (n - 1))
    if expected == 0:  # every value the same: nothing to agree or disagree about
        return Agreement(None, len(pairable))
    alpha = 1.0 - observed / expected
    return Agreement(alpha if math.isfinite(alpha) else None, len(pairable))  # nan: overflowed


def _present(unit: Sequence[float | None]) -> list[float]:
    return [float(v) for v in unit if v is not None and not math.isnan(v)]


def _pair_spread(values: Sequence[float]) -> float:
    """Sum of (a - b)^2 over ordered pairs of distinct positions, as 2n * sum (v - mean)^2.

    Summed about the mean, and exactly 0 for equal values: the expanded n * sum v^2 - (sum v)^2
    cancels catastrophically for ratings such as 7.7 or 6.3, which made a pair of judges who gave
    one rating throughout agree "perfectly" (alpha 1) and three such judges agree beyond 1.
    """
    if all(v == values[0] for v in values):
        return 0.0
    mean = float_sum(values) / len(values)
    return 2.0 * len(values) * float_sum((v - mean) * (v - mean) for v in values)


def average_ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties sharing the mean of the ranks they span (as scipy's `rankdata`)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        shared = (start + end) / 2.0 + 1.0
        for position in range(start, end + 1):
            ranks[order[position]] = shared
        start = end + 1
    return ranks


def spearman(pairs: Iterable[tuple[float | None, float | None]]) -> Agreement:
    """Spearman's rho: Pearson's r of the average ranks, over the items both judges rated.

    None under three items or when either judge gave every item the same value.
    """
    both = [(float(x), float(y)) for x, y in pairs if x is not None and y is not None]
    ranks_x = average_ranks([x for x, _ in both])
    ranks_y = average_ranks([y for _, y in both])
    return Agreement(pearson(zip(ranks_x, ranks_y, strict=True)), len(both))


def kendall_tau_b(pairs: Iterable[tuple[float | None, float | None]]) -> Agreement:
    """Kendall's tau-b, which corrects for ties on either side: (C - D) / sqrt((P - Tx)(P - Ty)).

    Meant for leaderboards (a few dozen models): it compares every pair of items, O(n^2).
    """
    both = [(float(x), float(y)) for x, y in pairs if x is not None and y is not None]
    concordant = discordant = tied_x = tied_y = 0
    for (x1, y1), (x2, y2) in combinations(both, 2):
        dx, dy = _sign(x1, x2), _sign(y1, y2)  # compared, not subtracted: inf - inf is nan
        tied_x += dx == 0
        tied_y += dy == 0
        concordant += dx * dy > 0
        discordant += dx * dy < 0
    total = len(both) * (len(both) - 1) // 2
    denominator = math.sqrt((total - tied_x) * (total - tied_y))
    if denominator == 0:
        return Agreement(None, len(both))
    return Agreement((concordant - discordant) / denominator, len(both))


def _sign(a: float, b: float) -> int:
    return (a > b) - (a < b)


def cohen_kappa(pairs: Iterable[tuple[str, str]]) -> Agreement:
    """Cohen's kappa of two raters' labels for the same items: (p_o - p_e) / (1 - p_e), where
    p_e is the agreement their label frequencies would give by chance. None when p_e is 1 (both
    raters used one and the same label throughout) or there are no items."""
    labelled = list(pairs)
    if not labelled:
        return Agreement(None, 0)
    n = len(labelled)
    observed = sum(a == b for a, b in labelled) / n
    first = Counter(a for a, _ in labelled)
    second = Counter(b for _, b in labelled)
    chance = math.fsum(first[label] * second[label] for label in first) / (n * n)
    if chance == 1.0:
        return Agreement(None, n)
    return Agreement((observed - chance) / (1.0 - chance), n)


def oriented_verdict(model_a: str, model_b: str, winner: str) -> tuple[tuple[str, str], str]:
    """A verdict on (model_a, model_b) restated for the pair in name order, as FastChat keys
    votes: `model_a` wins "model_a" becomes "model_b" when the names are swapped."""
    if model_a <= model_b:
        return (model_a, model_b), winner
    swapped = {"model_a": "model_b", "model_b": "model_a"}
    return (model_b, model_a), swapped.get(winner, winner)


def verdict_pairs(
    first: Mapping[Key, Sequence[str]], second: Mapping[Key, Sequence[str]]
) -> list[tuple[str, str]]:
    """Every verdict of `first` against every verdict of `second` on the items both judged
    (FastChat compares a judge's one verdict with each human vote on the same item)."""
    return [
        (a, b) for key in first.keys() & second.keys() for a, b in product(first[key], second[key])
    ]


def _is_tie(verdict: str) -> bool:
    return TIE in verdict  # "tie", "tie (bothbad)", "tie (inconsistent)"


def verdict_agreement(pairs: Iterable[tuple[str, str]], *, ties: bool) -> VerdictAgreement:
    """FastChat's agreement: two ties agree whatever their kind; `ties=False` leaves out every
    pair in which either verdict is a tie."""
    agreed = total = 0
    for a, b in pairs:
        if not ties and (_is_tie(a) or _is_tie(b)):
            continue
        total += 1
        agreed += (_is_tie(a) and _is_tie(b)) or a == b
    return VerdictAgreement(agreed, total)


def verdict_kappa(pairs: Iterable[tuple[str, str]]) -> Agreement:
    """Cohen's kappa over pairwise verdicts, every kind of tie counted as one label "tie"."""
    return cohen_kappa((_label(a), _label(b)) for a, b in pairs)


def _label(verdict: str) -> str:
    return TIE if _is_tie(verdict) else verdict
