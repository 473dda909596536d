"""MT-Bench leaderboards: FastChat's `show_result.py` numbers, plus what it leaves out.

The headline numbers must equal what `show_result --mode single|pairwise-*` prints for the same
judgments, so its rules are kept: -1 ratings and matches with an "error" game are dropped before
averaging, the overall single score is the mean over all remaining rows (not the mean of the two
turn means), a pairwise match whose games disagree or whose first game is a tie counts as a tie.
On top of that this module adds per-category means, parse-failure counts and seeded bootstrap
confidence intervals that resample questions, since a question's turns and matches are correlated.
Everything here is a pure function over frozen rows; turning results into text is the CLI's job.
"""

from __future__ import annotations

import functools
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.scoring.floats import float_sum

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "MISSING_SCORE",
    "CategoryScore",
    "ConfidenceInterval",
    "PairMatch",
    "PairModelSummary",
    "SampleSpread",
    "SingleModelSummary",
    "SingleScore",
    "bootstrap_ratio",
    "category_names",
    "majority_winner",
    "match_result",
    "median_score",
    "ordered_groups",
    "percentile",
    "rank_by_turn",
    "resample_indices",
    "sample_spread",
    "summarize_pairwise",
    "summarize_single",
]

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 20230609
DEFAULT_CONFIDENCE = 0.95
# FastChat's marker for a rating its parser could not find.
MISSING_SCORE = -1


@dataclass(frozen=True, slots=True)
class SingleScore:
    """One single-answer judgment: a model's rating on one turn of one question."""

    model: str
    question_id: int
    category: str
    turn: int
    score: float


@dataclass(frozen=True, slots=True)
class PairMatch:
    """One pairwise match: two games with the answers swapped. Winners are "model_1", "model_2",
    "tie" or "error" (the judge gave no verdict)."""

    model_1: str
    model_2: str
    question_id: int
    category: str
    turn: int
    g1_winner: str
    g2_winner: str


@dataclass(frozen=True, slots=True)
class ConfidenceInterval:
    low: float
    high: float
    level: float


@dataclass(frozen=True, slots=True)
class CategoryScore:
    category: str
    score: float
    rows: int


@dataclass(frozen=True, slots=True)
class SingleModelSummary:
    """A model's single-answer scores. Means are None when every rating in them was -1."""

    model: str
    score: float | None
    turn_1: float | None
    turn_2: float | None
    rows: int  # rows averaged, i.e. without the -1 ones
    missing: int  # rows the judge gave no parsable rating (-1)
    categories: tuple[CategoryScore, ...]
    ci: ConfidenceInterval | None

    def category_score(self, category: str) -> float | None:
        """The mean score in `category`; None when the model has no rating in it."""
        return next((c.score for c in self.categories if c.category == category), None)

    def unjudged(self, expected: int | None) -> int | None:
        """Of the `expected` judgments each model should have, those missing (failed requests, or
        answers that never came); None when the store cannot say how many are expected."""
        if expected is None:
            return None
        return max(0, expected - self.rows - self.missing)


@dataclass(frozen=True, slots=True)
class PairModelSummary:
    """A model's pairwise record. Rates are None when every match it played had an error game."""

    model: str
    win: int
    loss: int
    tie: int
    win_rate: float | None
    loss_rate: float | None
    win_rate_adjusted: float | None
    errors: int  # matches dropped because a game had no verdict
    ci: ConfidenceInterval | None  # of win_rate_adjusted


def summarize_single(
    rows: Iterable[SingleScore],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[SingleModelSummary, ...]:
    """Per-model summaries, best overall score first, as FastChat's "Average" table orders them.

    `resamples=0` skips the bootstrap. Each model is resampled with its own `Random(seed)`, so
    its interval does not depend on which other models are in the table.
    """
    by_model: dict[str, list[SingleScore]] = defaultdict(list)
    for row in rows:
        by_model[row.model].append(row)
    summaries = [
        _single_summary(model, model_rows, resamples, seed, confidence)
        for model, model_rows in by_model.items()
    ]
    return tuple(sorted(summaries, key=lambda s: _descending(s.model, s.score)))


def category_names(summaries: Iterable[SingleModelSummary]) -> list[str]:
    """Every category any model has a score in, sorted: a per-category table's columns."""
    return sorted({c.category for s in summaries for c in s.categories})


def rank_by_turn(
    summaries: Iterable[SingleModelSummary], turn: int
) -> tuple[SingleModelSummary, ...]:
    """FastChat's "First turn" / "Second turn" table order: that turn's mean, highest first."""
    if turn not in (1, 2):
        raise ValueError(f"MT-Bench has turn 1 or 2, not {turn}")
    scored = [(s, s.turn_1 if turn == 1 else s.turn_2) for s in summaries]
    ranked = sorted((pair for pair in scored if pair[1] is not None), key=_turn_key)
    return tuple(summary for summary, _ in ranked)


def match_result(match: PairMatch) -> str:
    """The match's winner as FastChat counts it: "model_1", "model_2", "tie" or "error"."""
    if match.g1_winner == "error" or match.g2_winner == "error":
        return "error"
    if match.g1_winner == "tie" or match.g1_winner != match.g2_winner:
        return "tie"
    return match.g1_winner


def summarize_pairwise(
    matches: Iterable[PairMatch],
    *,
    baseline: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[PairModelSummary, ...]:
    """Per-model records, best adjusted win rate first, as FastChat's pairwise table.

    With `baseline` (pairwise-baseline mode) only matches against the baseline count and the
    baseline's own row is left out; without it (pairwise-all) every match counts.
    """
    tallies: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    errors: dict[str, int] = defaultdict(int)
    for match in matches:
        if baseline is not None and baseline not in (match.model_1, match.model_2):
            continue
        _tally_match(match, tallies, errors)
    models = (set(tallies) | set(errors)) - {baseline}
    summaries = [
        _pair_summary(model, tallies.get(model, {}), errors[model], resamples, seed, confidence)
        for model in models
    ]
    return tuple(sorted(summaries, key=lambda s: _descending(s.model, s.win_rate_adjusted)))


def _single_summary(
    model: str, rows: Sequence[SingleScore], resamples: int, seed: int, confidence: float
) -> SingleModelSummary:
    scored = [row for row in rows if row.score != MISSING_SCORE]
    per_question: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in scored:
        per_question[row.question_id][0] += row.score
        per_question[row.question_id][1] += 1
    return SingleModelSummary(
        model=model,
        score=_mean(row.score for row in scored),
        turn_1=_mean(row.score for row in scored if row.turn == 1),
        turn_2=_mean(row.score for row in scored if row.turn == 2),
        rows=len(scored),
        missing=len(rows) - len(scored),
        categories=_category_scores(scored),
        ci=bootstrap_ratio(ordered_groups(per_question), resamples, seed, confidence),
    )


def _category_scores(rows: Sequence[SingleScore]) -> tuple[CategoryScore, ...]:
    by_category: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        by_category[row.category].append(row.score)
    return tuple(
        CategoryScore(category, float_sum(scores) / len(scores), len(scores))
        for category, scores in sorted(by_category.items())
    )


def _tally_match(
    match: PairMatch, tallies: dict[str, dict[int, list[int]]], errors: dict[str, int]
) -> None:
    """Add one match to both models' per-question [win, loss, tie] counts."""
    result = match_result(match)
    if result == "error":
        errors[match.model_1] += 1
        errors[match.model_2] += 1
        return
    if result == "tie":
        tallies[match.model_1][match.question_id][2] += 1
        tallies[match.model_2][match.question_id][2] += 1
        return
    winner, loser = (
        (match.model_1, match.model_2) if result == "model_1" else (match.model_2, match.model_1)
    )
    tallies[winner][match.question_id][0] += 1
    tallies[loser][match.question_id][1] += 1


def _pair_summary(
    model: str,
    per_question: dict[int, list[int]],
    errors: int,
    resamples: int,
    seed: int,
    confidence: float,
) -> PairModelSummary:
    win = sum(counts[0] for counts in per_question.values())
    loss = sum(counts[1] for counts in per_question.values())
    tie = sum(counts[2] for counts in per_question.values())
    total = win + loss + tie
    adjusted = {qid: (w + 0.5 * t, w + lost + t) for qid, (w, lost, t) in per_question.items()}
    return PairModelSummary(
        model=model,
        win=win,
        loss=loss,
        tie=tie,
        win_rate=win / total if total else None,
        loss_rate=loss / total if total else None,
        win_rate_adjusted=(win + 0.5 * tie) / total if total else None,
        errors=errors,
        ci=bootstrap_ratio(ordered_groups(adjusted), resamples, seed, confidence),
    )


def ordered_groups(per_question: Mapping[int, Sequence[float]]) -> list[tuple[float, float]]:
    # Sorting by question id makes the resamples independent of the input row order.
    return [(float(part), float(whole)) for _, (part, whole) in sorted(per_question.items())]


def bootstrap_ratio(
    groups: Sequence[tuple[float, float]], resamples: int, seed: int, confidence: float
) -> ConfidenceInterval | None:
    """Percentile interval of sum(part)/sum(whole) over questions drawn with replacement."""
    if resamples <= 0 or not groups:
        return None
    parts = [part for part, _ in groups]
    wholes = [whole for _, whole in groups]
    statistics = sorted(
        float_sum(map(parts.__getitem__, draw)) / float_sum(map(wholes.__getitem__, draw))
        for draw in resample_indices(len(groups), resamples, seed)
    )
    tail = (1.0 - confidence) / 2.0
    low, high = percentile(statistics, tail), percentile(statistics, 1.0 - tail)
    return ConfidenceInterval(low=low, high=high, level=confidence)


@functools.lru_cache(maxsize=16)
def resample_indices(size: int, resamples: int, seed: int) -> tuple[tuple[int, ...], ...]:
    """`resamples` draws of `size` indices with replacement, the ones `rng.choices` would make.

    Every interval of one `show` (a model's overall, per turn, per category; every checkpoint of
    a sweep) resamples the same number of questions with the same seed, so the draws are made
    once and shared: a 300-checkpoint sweep made 3.6 million `choices` calls. The indices equal
    `random.Random(seed).choices(range(size), k=size)` repeated, so intervals are unchanged.
    """
    rng = random.Random(seed)
    scale = float(size)
    return tuple(
        tuple(math.floor(rng.random() * scale) for _ in range(size)) for _ in range(resamples)
    )


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Linear interpolation between order statistics (numpy's default method). On an order
    statistic itself, or between equal ones, that value as it is: an infinite rating (a judge's
    400-digit `[[999...]]`) must not turn the interval's bound into inf * 0 = nan."""
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    weight = position - below
    if weight == 0 or ordered[above] == ordered[below]:
        return ordered[below]
    return ordered[below] + (ordered[above] - ordered[below]) * weight


def _mean(values: Iterable[float]) -> float | None:
    collected = list(values)
    return float_sum(collected) / len(collected) if collected else None


def _descending(model: str, value: float | None) -> tuple[bool, float, str]:
    # pandas' descending sort keeps ties in groupby (model name) order; missing values sort last.
    return (value is None, -(value or 0.0), model)


def _turn_key(pair: tuple[SingleModelSummary, float | None]) -> tuple[bool, float, str]:
    return _descending(pair[0].model, pair[1])


@dataclass(frozen=True, slots=True)
class SampleSpread:
    """How much a model's overall score moves between repeated judge samples."""

    model: str
    scores: tuple[float, ...]  # the overall score of each sample, in sample order
    std: float | None  # sample standard deviation; None with fewer than two samples


def median_score(scores: Sequence[float]) -> float:
    """An item judged k times scores the median of its parsable ratings; -1 if none parsed."""
    valid = sorted(s for s in scores if s != MISSING_SCORE)
    if not valid:
        return MISSING_SCORE
    middle = len(valid) // 2
    return valid[middle] if len(valid) % 2 else (valid[middle - 1] + valid[middle]) / 2


def majority_winner(winners: Sequence[str]) -> str:
    """A game judged k times: its most frequent verdict; a tie for first place is a 'tie'."""
    counts: dict[str, int] = defaultdict(int)
    for winner in winners:
        if winner != "error":
            counts[winner] += 1
    if not counts:
        return "error"
    top = max(counts.values())
    leaders = [w for w, c in counts.items() if c == top]
    return leaders[0] if len(leaders) == 1 else "tie"


def sample_spread(samples: Mapping[int, Sequence[SingleScore]]) -> tuple[SampleSpread, ...]:
    """Per model: the overall score (FastChat's mean without -1s) of each sample, and their std."""
    per_model: dict[str, list[float]] = defaultdict(list)
    for sample in sorted(samples):
        overall: dict[str, list[float]] = defaultdict(list)
        for row in samples[sample]:
            if row.score != MISSING_SCORE:
                overall[row.model].append(row.score)
        for model, scores in overall.items():
            per_model[model].append(sum(scores) / len(scores))
    return tuple(
        SampleSpread(model, tuple(scores), _stdev(scores)) for model, scores in per_model.items()
    )


def _stdev(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = float_sum(values) / len(values)
    return math.sqrt(float_sum((v - mean) * (v - mean) for v in values) / (len(values) - 1))
