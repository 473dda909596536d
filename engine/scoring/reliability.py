"""How far a judge can be trusted: parse failures, position bias, consistency, verbosity bias.

MT-Bench's paper names the judge's known failure modes; these figures make them visible per judge
so a leaderboard is read with its judge's habits in mind. A judge that often gives no parsable
rating quietly shrinks the sample; one that favours the first answer shown (position A) or flips
its verdict when the answers are swapped is noisy on pairwise; one whose scores track answer length
rewards verbosity. Pure functions over frozen rows, as in `engine.scoring.summaries`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from engine.scoring.floats import float_sum
from engine.scoring.summaries import MISSING_SCORE, PairMatch

__all__ = [
    "PARSE_STATUSES",
    "Consistency",
    "JudgeReliability",
    "LengthCorrelation",
    "ParseRates",
    "PositionBias",
    "consistency",
    "length_correlation",
    "parse_rates",
    "pearson",
    "position_bias",
]

# The statuses the engine writes, in the order a reader wants them: good first. An out_of_range
# rating (not on the 1-10 scale) still counts, as in FastChat, so it is flagged, not a failure.
PARSE_STATUSES = ("ok", "fallback", "imported", "out_of_range", "missing", "invalid")
# A rating the judge did not give in the canonical form, or did not give at all.
FAILED_STATUSES = frozenset({"missing", "invalid"})


@dataclass(frozen=True, slots=True)
class ParseRates:
    """How one kind ('single' or 'pair') of a judge's replies parsed, by parse status."""

    kind: str
    total: int
    counts: tuple[tuple[str, int], ...]  # (status, rows), every PARSE_STATUSES entry, then others

    def count(self, status: str) -> int:
        return dict(self.counts).get(status, 0)

    @property
    def failure_rate(self) -> float | None:
        """Share of replies with no usable rating or verdict (scored -1 / counted as error)."""
        if not self.total:
            return None
        return sum(self.count(status) for status in FAILED_STATUSES) / self.total


@dataclass(frozen=True, slots=True)
class PositionBias:
    """Pairwise games by the position of the answer the judge preferred (A is shown first)."""

    won_by_a: int
    won_by_b: int
    ties: int
    errors: int  # games with no verdict, left out of the shares

    @property
    def games(self) -> int:
        return self.won_by_a + self.won_by_b + self.ties

    def share(self, count: int) -> float | None:
        return count / self.games if self.games else None


@dataclass(frozen=True, slots=True)
class Consistency:
    """Matches whose two games (answers swapped) reached the same verdict."""

    consistent: int
    matches: int  # matches where both games have a verdict
    incomplete: int  # matches with a game that has no verdict, left out

    @property
    def rate(self) -> float | None:
        return self.consistent / self.matches if self.matches else None


@dataclass(frozen=True, slots=True)
class LengthCorrelation:
    """Pearson r between a single score and the length (characters) of the answer it grades."""

    pearson: float | None  # None when fewer than 3 points or a constant variable
    points: int


@dataclass(frozen=True, slots=True)
class JudgeReliability:
    parse: tuple[ParseRates, ...]
    position: PositionBias | None  # None without pairwise judgments
    consistency: Consistency | None
    length: LengthCorrelation | None  # None without single judgments


def parse_rates(rows: Iterable[tuple[str, str]]) -> tuple[ParseRates, ...]:
    """Tally (kind, parse_status) rows into one `ParseRates` per kind, 'single' before 'pair'."""
    tallies: dict[str, Counter[str]] = {}
    for kind, status in rows:
        tallies.setdefault(kind, Counter())[status] += 1
    ordered = sorted(tallies, key=lambda kind: (kind != "single", kind))
    return tuple(_rates(kind, tallies[kind]) for kind in ordered)


def _rates(kind: str, tally: Counter[str]) -> ParseRates:
    others = sorted(status for status in tally if status not in PARSE_STATUSES)
    counts = tuple((status, tally[status]) for status in (*PARSE_STATUSES, *others))
    return ParseRates(kind, sum(tally.values()), counts)


def position_bias(matches: Iterable[PairMatch]) -> PositionBias:
    """Count each game's winner by position: game 1 shows model_1 as A, game 2 swaps them."""
    won_by_a = won_by_b = ties = errors = 0
    for match in matches:
        for winner, model_at_a in ((match.g1_winner, "model_1"), (match.g2_winner, "model_2")):
            if winner == "error":
                errors += 1
            elif winner == "tie":
                ties += 1
            elif winner == model_at_a:
                won_by_a += 1
            else:
                won_by_b += 1
    return PositionBias(won_by_a, won_by_b, ties, errors)


def consistency(matches: Iterable[PairMatch]) -> Consistency:
    """A match is consistent when both games name the same winner (or both call a tie)."""
    consistent = complete = incomplete = 0
    for match in matches:
        if "error" in (match.g1_winner, match.g2_winner):
            incomplete += 1
            continue
        complete += 1
        consistent += match.g1_winner == match.g2_winner
    return Consistency(consistent, complete, incomplete)


def length_correlation(points: Iterable[tuple[float, int]]) -> LengthCorrelation:
    """Pearson r of (score, answer length) pairs; -1 ratings are no score and are left out."""
    kept = [(float(score), float(length)) for score, length in points if score != MISSING_SCORE]
    return LengthCorrelation(pearson(kept), len(kept))


def pearson(points: Iterable[tuple[float, float]]) -> float | None:
    """Pearson's r, or None when it is undefined (under 3 points, a variable is constant, or a
    value is infinite: a judge's 400-digit `[[999...]]` parses as inf)."""
    pairs = list(points)
    if len(pairs) < 3 or not all(math.isfinite(x) and math.isfinite(y) for x, y in pairs):
        return None
    mean_x = float_sum(x for x, _ in pairs) / len(pairs)
    mean_y = float_sum(y for _, y in pairs) / len(pairs)
    cov = float_sum((x - mean_x) * (y - mean_y) for x, y in pairs)
    var_x = float_sum((x - mean_x) * (x - mean_x) for x, _ in pairs)
    var_y = float_sum((y - mean_y) * (y - mean_y) for _, y in pairs)
    r = cov / math.sqrt(var_x * var_y) if var_x and var_y else math.nan
    return max(-1.0, min(1.0, r)) if math.isfinite(r) else None  # nan: overflowed, say 1e300
