"""Score against training step: every checkpoint of a sweep, its intervals, and the best.

For each checkpoint (in step order): the overall score, turn 1, turn 2 and each category's mean,
each with a question-resampling bootstrap interval (the overall one equals `show`'s), and how it
compares with the best checkpoint by a paired bootstrap over the questions both were scored on
(`engine.scoring.paired`). A checkpoint with fewer judgments than the sweep's most-judged one is
not `complete` (still being judged); the best is the highest overall score among the complete
ones, the earliest step on a tie. One with no judgment yet is listed with empty scores, so a
sweep still being scored shows what is missing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from engine.scoring.paired import (
    PairedDifference,
    mean_interval,
    paired_difference,
    question_totals,
)
from engine.scoring.steps import SweepMember
from engine.scoring.summaries import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    MISSING_SCORE,
    ConfidenceInterval,
    SingleScore,
)

__all__ = ["CheckpointSummary", "Estimate", "SweepSummary", "summarize_sweep"]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean of ratings and its bootstrap interval; score None when nothing was rated."""

    score: float | None
    ci: ConfidenceInterval | None
    rows: int


@dataclass(frozen=True, slots=True)
class CheckpointSummary:
    label: str
    step: int
    overall: Estimate
    turn_1: Estimate
    turn_2: Estimate
    categories: tuple[tuple[str, Estimate], ...]
    missing: int  # ratings the judge gave none for (-1)
    versus_best: PairedDifference | None  # None for the best itself and unscored checkpoints

    def category(self, name: str) -> Estimate | None:
        return dict(self.categories).get(name)

    @property
    def judged(self) -> int:
        """Judgments it has, unparsable ones (-1) included."""
        return self.overall.rows + self.missing


@dataclass(frozen=True, slots=True)
class SweepSummary:
    checkpoints: tuple[CheckpointSummary, ...]  # in step order
    best: str | None  # the label of the best checkpoint, None when none is scored
    categories: tuple[str, ...]  # every category any checkpoint was scored in, sorted
    confidence: float = DEFAULT_CONFIDENCE

    def best_checkpoint(self) -> CheckpointSummary | None:
        return next((c for c in self.checkpoints if c.label == self.best), None)

    def complete(self, checkpoint: CheckpointSummary) -> bool:
        """As many judgments as the sweep's most-judged checkpoint: not still being judged.

        The sweep's own checkpoints are the yardstick, so a run on a subset of the questions
        counts as complete too.
        """
        most = max((c.judged for c in self.checkpoints), default=0)
        return most > 0 and checkpoint.judged >= most


@dataclass(frozen=True, slots=True)
class _Settings:
    resamples: int
    seed: int
    confidence: float


def summarize_sweep(
    rows: Iterable[SingleScore],
    members: Sequence[SweepMember],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
) -> SweepSummary:
    """`rows` may hold other models' rows: only the members' are used."""
    settings = _Settings(resamples, seed, confidence)
    by_label: dict[str, list[SingleScore]] = defaultdict(list)
    wanted = {member.label for member in members}
    for row in rows:
        if row.model in wanted:
            by_label[row.model].append(row)
    categories = tuple(
        sorted({r.category for rs in by_label.values() for r in rs if r.score != MISSING_SCORE})
    )
    unpaired = [_checkpoint(m, by_label.get(m.label, []), categories, settings) for m in members]
    best = _best(unpaired)
    if best is None:
        return SweepSummary(tuple(unpaired), None, categories, confidence)
    best_totals = question_totals(by_label[best.label])
    checkpoints = tuple(
        _versus(checkpoint, by_label.get(checkpoint.label, []), best, best_totals, settings)
        for checkpoint in unpaired
    )
    return SweepSummary(checkpoints, best.label, categories, confidence)


def _checkpoint(
    member: SweepMember,
    rows: Sequence[SingleScore],
    categories: Sequence[str],
    settings: _Settings,
) -> CheckpointSummary:
    return CheckpointSummary(
        label=member.label,
        step=member.step,
        overall=_estimate(rows, None, settings),
        turn_1=_estimate(rows, lambda r: r.turn == 1, settings),
        turn_2=_estimate(rows, lambda r: r.turn == 2, settings),
        categories=tuple(
            (name, _estimate(rows, _in_category(name), settings)) for name in categories
        ),
        missing=sum(1 for row in rows if row.score == MISSING_SCORE),
        versus_best=None,
    )


def _in_category(name: str) -> Callable[[SingleScore], bool]:
    return lambda row: row.category == name


def _estimate(
    rows: Sequence[SingleScore], keep: Callable[[SingleScore], bool] | None, settings: _Settings
) -> Estimate:
    totals = question_totals(rows, keep)
    count = sum(n for _, n in totals.values())
    if not count:
        return Estimate(None, None, 0)
    score = sum(total for total, _ in totals.values()) / count
    ci = mean_interval(
        totals, resamples=settings.resamples, seed=settings.seed, confidence=settings.confidence
    )
    return Estimate(score, ci, count)


def _best(checkpoints: Sequence[CheckpointSummary]) -> CheckpointSummary | None:
    """The highest overall score among the complete checkpoints: one still being judged may
    have a lucky first few grades."""
    most = max((c.judged for c in checkpoints), default=0)
    scored = [c for c in checkpoints if c.overall.score is not None and c.judged >= most]
    # max() keeps the first of equal scores: in step order, the earliest checkpoint.
    return max(scored, key=lambda c: c.overall.score or 0.0, default=None)


def _versus(
    checkpoint: CheckpointSummary,
    rows: Sequence[SingleScore],
    best: CheckpointSummary,
    best_totals: dict[int, tuple[float, int]],
    settings: _Settings,
) -> CheckpointSummary:
    if checkpoint.label == best.label or checkpoint.overall.score is None:
        return checkpoint
    difference = paired_difference(
        question_totals(rows),
        best_totals,
        resamples=settings.resamples,
        seed=settings.seed,
        confidence=settings.confidence,
    )
    return replace(checkpoint, versus_best=difference)
