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

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

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
)

__all__ = [
    "PairedDifference",
    "QuestionTotals",
    "mean_interval",
    "paired_difference",
    "question_totals",
    "resample_draws",
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


def resample_draws(size: int, resamples: int, seed: int) -> tuple[tuple[int, ...], ...]:
    """`resamples` draws of `size` indices from range(size), with replacement."""
    rng = random.Random(seed)
    population = range(size)
    return tuple(tuple(rng.choices(population, k=size)) for _ in range(resamples))


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
    pairs = [(a[qid], b[qid]) for qid in shared]
    difference = _difference(pairs, range(len(pairs)))
    if len(shared) < 2:
        return PairedDifference(difference, None, len(shared))
    if draws is None:
        draws = resample_draws(len(pairs), resamples, seed) if resamples > 0 else ()
    if not draws:
        return PairedDifference(difference, None, len(shared))
    statistics = sorted(_difference(pairs, draw) for draw in draws)
    tail = (1.0 - confidence) / 2.0
    ci = ConfidenceInterval(
        low=percentile(statistics, tail),
        high=percentile(statistics, 1.0 - tail),
        level=confidence,
    )
    return PairedDifference(difference, ci, len(shared))


def _difference(
    pairs: Sequence[tuple[tuple[float, int], tuple[float, int]]], draw: Iterable[int]
) -> float:
    chosen = [pairs[index] for index in draw]
    mean_a = math.fsum(a[0] for a, _ in chosen) / sum(a[1] for a, _ in chosen)
    mean_b = math.fsum(b[0] for _, b in chosen) / sum(b[1] for _, b in chosen)
    return mean_a - mean_b
