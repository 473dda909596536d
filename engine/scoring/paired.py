"""Is checkpoint A really better than checkpoint B, or is it judge noise? A paired bootstrap.

Two checkpoints of one sweep answer the same questions and are graded by the same judge, so their
scores are paired by question: a hard question pulls both down. Comparing their marginal 95%
intervals ignores that pairing and calls many real differences noise. Here the questions both
checkpoints have scores for are drawn with replacement, the *same* draw for both, and the
difference of their means (FastChat's mean over rows, -1s left out) is computed on each draw; the
difference is distinguishable from zero when its percentile interval excludes 0. Pure functions:
the draws come from a seeded `random.Random`, or are given, so tests can compute them by hand.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.scoring.floats import float_sum
from engine.scoring.summaries import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    MISSING_SCORE,
    ConfidenceInterval,
    SingleScore,
    bootstrap_ratio,
    ordered_groups,
    percentile,
    resample_indices,
)

__all__ = [
    "PairedDifference",
    "QuestionTotals",
    "mean_interval",
    "paired_difference",
    "question_totals",
]

# question id -> (sum of its ratings, how many ratings): a question's two turns are one unit.
QuestionTotals = Mapping[int, tuple[float, int]]


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """Mean of A minus mean of B over the questions both have, with its paired interval."""

    difference: float
    ci: ConfidenceInterval | None  # None when resamples = 0
    questions: int  # questions both were scored on

    @property
    def distinguishable(self) -> bool:
        """The interval excludes 0: the difference is more than resampling noise."""
        return self.ci is not None and (self.ci.low > 0.0 or self.ci.high < 0.0)


def question_totals(
    rows: Iterable[SingleScore], keep: Callable[[SingleScore], bool] | None = None
) -> dict[int, tuple[float, int]]:
    """Per question, the sum and count of the rows `keep` selects, -1 ratings left out."""
    totals: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in rows:
        if row.score == MISSING_SCORE or (keep is not None and not keep(row)):
            continue
        totals[row.question_id][0] += row.score
        totals[row.question_id][1] += 1
    return {qid: (total, int(count)) for qid, (total, count) in totals.items()}


def mean_interval(
    totals: QuestionTotals,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
) -> ConfidenceInterval | None:
    """The bootstrap interval of one mean, exactly as `show` computes a model's overall CI."""
    return bootstrap_ratio(ordered_groups(totals), resamples, seed, confidence)


def paired_difference(
    a: QuestionTotals,
    b: QuestionTotals,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
    draws: Sequence[Sequence[int]] | None = None,
) -> PairedDifference | None:
    """A minus B over their shared questions (in question-id order), or None if they share none.

    `draws` (indices into the shared questions) replaces the seeded resampling. One shared
    question has no interval: every draw repeats it, so its width would be 0 and any difference
    "distinguishable", though one question says nothing about the judge's noise.
    """
    shared = sorted(set(a) & set(b))
    if not shared:
        return None
    pairs = _Columns.of(a, b, shared)
    difference = pairs.difference(range(len(shared)))
    if len(shared) < 2:
        return PairedDifference(difference, None, len(shared))
    if draws is None:
        draws = resample_indices(len(shared), resamples, seed) if resamples > 0 else ()
    if not draws:
        return PairedDifference(difference, None, len(shared))
    statistics = sorted(pairs.difference(draw) for draw in draws)
    tail = (1.0 - confidence) / 2.0
    ci = ConfidenceInterval(
        low=percentile(statistics, tail),
        high=percentile(statistics, 1.0 - tail),
        level=confidence,
    )
    return PairedDifference(difference, ci, len(shared))


@dataclass(frozen=True, slots=True)
class _Columns:
    """The shared questions' sums and counts of A and B as four lists, for fast indexed sums."""

    sum_a: list[float]
    count_a: list[int]
    sum_b: list[float]
    count_b: list[int]

    @classmethod
    def of(cls, a: QuestionTotals, b: QuestionTotals, shared: Sequence[int]) -> _Columns:
        sum_a, sum_b = [a[qid][0] for qid in shared], [b[qid][0] for qid in shared]
        count_a, count_b = [a[qid][1] for qid in shared], [b[qid][1] for qid in shared]
        return cls(sum_a, count_a, sum_b, count_b)

    def difference(self, draw: Iterable[int]) -> float:
        """Mean of A minus mean of B over the questions `draw` picks (repeats count again)."""
        chosen = tuple(draw)
        mean_a = float_sum(map(self.sum_a.__getitem__, chosen)) / sum(
            map(self.count_a.__getitem__, chosen)
        )
        mean_b = float_sum(map(self.sum_b.__getitem__, chosen)) / sum(
            map(self.count_b.__getitem__, chosen)
        )
        return mean_a - mean_b
