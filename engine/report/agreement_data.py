"""How much the judges in a store agree, pair by pair, for `show --agreement` and the report.

A store holds judgments under several judge labels when `judge -c` ran with different `[judge]`
tables, or when FastChat judgment files were imported (a human or reference set is just one more
label). Every pair of labels that judged the same items is compared with
`engine.scoring.agreement`'s figures, each with the number of items behind it:

- single ratings: an item is (model, question, turn) and its value the judge's median over its
  samples (-1, no rating, is left out), as the leaderboard scores it. Krippendorff's alpha
  (interval) and Spearman's rho over the items both rated; Kendall's tau-b between the two
  leaderboards' overall scores, over the models both scored.
- pairwise verdicts: an item is a match (the two models, question, turn) and its verdict the
  match's result as FastChat counts it (games that disagree, or a tie in game 1, are a tie; a
  match with a game without verdict is left out). Cohen's kappa, and FastChat's
  `compute_agreement` ratios with and without ties. An imported set (a human one) may hold
  several votes per match, one per sample (FastChat's human judgments have several raters per
  item): each is a vote of its own, compared with every vote of the other side as FastChat does,
  where a judge of a run gives its majority over its samples.

A pair with nothing in common in a mode is named, not dropped. With `against`, every judge is
compared with that one label only (a reference set).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from engine.errors import InputError
from engine.report.judged_views import JudgeViews, judges_named, select_judges
from engine.report.notes import judge_details
from engine.report.results import load_pair_matches, load_pair_votes, load_single_scores
from engine.scoring.agreement import (
    Agreement,
    VerdictAgreement,
    kendall_tau_b,
    krippendorff_alpha_interval,
    oriented_verdict,
    spearman,
    verdict_agreement,
    verdict_kappa,
    verdict_pairs,
)
from engine.scoring.summaries import (
    MISSING_SCORE,
    PairMatch,
    SingleScore,
    match_result,
    summarize_single,
)
from engine.store.rows import IMPORT_API, JudgeIdentity
from engine.store.store import Store, open_store

__all__ = [
    "JudgeAgreement",
    "JudgeJudgments",
    "RatingAgreement",
    "VerdictAgreementRow",
    "compare_judges",
    "gather_agreement",
    "judge_agreement",
]

ItemKey = tuple[str, int, int]  # model, question, turn
MatchKey = tuple[int, str, str, int]  # question, the two models in name order, turn
MATCH_WINNERS = {"model_1": "model_a", "model_2": "model_b", "tie": "tie"}


@dataclass(frozen=True, slots=True)
class JudgeJudgments:
    """One judge label's judgments, as agreement compares them."""

    label: str
    ratings: tuple[SingleScore, ...] = ()  # one per item: the median over samples
    matches: tuple[PairMatch, ...] = ()  # per match: each game's majority, or (imported) votes
    votes: bool = False  # an imported set: every match of `matches` is a vote of its own


@dataclass(frozen=True, slots=True)
class RatingAgreement:
    first: str
    second: str
    alpha: Agreement  # Krippendorff's alpha (interval); items both rated
    spearman: Agreement  # items both rated
    tau: Agreement  # Kendall's tau-b of the two leaderboards; items = models both scored


@dataclass(frozen=True, slots=True)
class VerdictAgreementRow:
    first: str
    second: str
    kappa: Agreement  # Cohen's kappa; items = matches both gave a verdict on
    with_ties: VerdictAgreement
    without_ties: VerdictAgreement


@dataclass(frozen=True, slots=True)
class JudgeAgreement:
    judges: tuple[str, ...]  # the labels compared
    against: str | None  # the reference label every judge was compared with, if one
    ratings: tuple[RatingAgreement, ...]
    verdicts: tuple[VerdictAgreementRow, ...]
    apart: tuple[str, ...]  # pairs with nothing in common in a mode, as sentences


def compare_judges(
    judges: Sequence[JudgeJudgments], *, against: str | None = None
) -> JudgeAgreement:
    """Every pair of `judges` (or each against the label `against`), in each mode both judged."""
    by_label = {judge.label: judge for judge in judges}
    labels = tuple(judge.label for judge in judges)
    if against is None:
        pairs = list(combinations(labels, 2))
    else:
        pairs = [(label, against) for label in labels if label != against]
    ratings: list[RatingAgreement] = []
    verdicts: list[VerdictAgreementRow] = []
    apart: list[str] = []
    for first, second in pairs:
        a, b = by_label[first], by_label[second]
        rating = _rating_agreement(a, b) if a.ratings and b.ratings else None
        verdict = _verdict_agreement(a, b) if a.matches and b.matches else None
        if rating is not None and rating.alpha.items:
            ratings.append(rating)
        elif rating is not None:
            apart.append(_apart(first, second, "single-rated"))
        if verdict is not None and verdict.kappa.items:
            verdicts.append(verdict)
        elif verdict is not None:
            apart.append(_apart(first, second, "pairwise-judged"))
        if rating is None and verdict is None:
            apart.append(
                f"{first} ({_modes(a)}) and {second} ({_modes(b)}): no mode in common, "
                "nothing to compare"
            )
    return JudgeAgreement(labels, against, tuple(ratings), tuple(verdicts), tuple(apart))


def _apart(first: str, second: str, what: str) -> str:
    return f"{first} and {second}: no {what} item in common"


def _modes(judge: JudgeJudgments) -> str:
    held = (("single", judge.ratings), ("pairwise", judge.matches))
    return " and ".join(name for name, judged in held if judged) or "nothing"


def _rating_agreement(first: JudgeJudgments, second: JudgeJudgments) -> RatingAgreement:
    a, b = _rated_items(first.ratings), _rated_items(second.ratings)
    shared = sorted(a.keys() & b.keys())
    pairs = [(a[key], b[key]) for key in shared]
    board_a, board_b = _leaderboard(first.ratings), _leaderboard(second.ratings)
    models = sorted(board_a.keys() & board_b.keys())
    return RatingAgreement(
        first.label,
        second.label,
        krippendorff_alpha_interval([x, y] for x, y in pairs),
        spearman(pairs),
        kendall_tau_b((board_a[m], board_b[m]) for m in models),
    )


def _rated_items(ratings: Sequence[SingleScore]) -> dict[ItemKey, float]:
    return {(r.model, r.question_id, r.turn): r.score for r in ratings if r.score != MISSING_SCORE}


def _leaderboard(ratings: Sequence[SingleScore]) -> dict[str, float]:
    """Each model's overall score (FastChat's mean without -1s), as the leaderboard shows it."""
    return {s.model: s.score for s in summarize_single(ratings, resamples=0) if s.score is not None}


def _verdict_agreement(first: JudgeJudgments, second: JudgeJudgments) -> VerdictAgreementRow:
    pairs = verdict_pairs(_verdicts(first), _verdicts(second))
    return VerdictAgreementRow(
        first.label,
        second.label,
        verdict_kappa(pairs),
        verdict_agreement(pairs, ties=True),
        verdict_agreement(pairs, ties=False),
    )


def _verdicts(judge: JudgeJudgments) -> dict[MatchKey, list[str]]:
    """Each match's verdict (an imported set: its votes), restated for its models in name order
    (FastChat's vote key); a judge's match played both ways round counts once."""
    verdicts: dict[MatchKey, list[str]] = {}
    for match in judge.matches:
        result = match_result(match)
        if result not in MATCH_WINNERS:
            continue  # a game without verdict: FastChat leaves the match out
        (low, high), winner = oriented_verdict(match.model_1, match.model_2, MATCH_WINNERS[result])
        key = (match.question_id, low, high, match.turn)
        verdicts[key] = [*verdicts.get(key, []), winner] if judge.votes else [winner]
    return verdicts


async def gather_agreement(
    store: Store, bench: str, views: Sequence[JudgeViews], *, against: str | None = None
) -> JudgeAgreement:
    """`compare_judges` over the judges in `views`, their judgments read from the store."""
    labels = _labels(views)
    judges = []
    for view, label in zip(views, labels, strict=True):
        identity, kinds = view.judge.identity, view.judge.kinds
        ratings = await load_single_scores(store, bench, identity) if "single" in kinds else []
        matches = await _pair_verdicts(store, bench, identity) if "pair" in kinds else []
        votes = identity.api == IMPORT_API
        judges.append(JudgeJudgments(label, tuple(ratings), tuple(matches), votes))
    return compare_judges(judges, against=against)


async def _pair_verdicts(store: Store, bench: str, identity: JudgeIdentity) -> list[PairMatch]:
    """A run judge's matches (its majority over samples), or an imported set's every vote."""
    if identity.api == IMPORT_API:
        return await load_pair_votes(store, bench, identity)
    return await load_pair_matches(store, bench, identity)


def _labels(views: Sequence[JudgeViews]) -> list[str]:
    """Judge labels; two judges sharing one (say, an imported set and a run) say who they are."""
    names = [view.name for view in views]
    return [
        view.name
        if names.count(view.name) == 1
        else f"{view.name} ({judge_details(view.judge.identity, view.judge.settings)})"
        for view in views
    ]


async def judge_agreement(
    store_path: Path,
    bench: str = "mt_bench",
    *,
    judges: Sequence[str] = (),
    against: str | None = None,
) -> JudgeAgreement:
    """`mtbench show --agreement`: the judges labelled `judges` (every judge when empty) and
    `against`; an unknown label is refused as `--judge` is, and fewer than two judges too."""
    store = await open_store(Path(store_path), write=False)
    try:
        every = await select_judges(store, store_path, bench, None)
        chosen = _chosen(every, judges, against, store_path, bench)
        labels = dict(zip([view.name for view in chosen], _labels(chosen), strict=True))
        reference = None if against is None else labels[against]
        return await gather_agreement(store, bench, chosen, against=reference)
    finally:
        await store.close()


def _chosen(
    every: Sequence[JudgeViews],
    judges: Sequence[str],
    against: str | None,
    store_path: object,
    bench: str,
) -> list[JudgeViews]:
    named = [*dict.fromkeys([*judges, *([against] if against else [])])]
    chosen = list(every) if not judges else []
    for label in named:
        for view in judges_named(every, label, store_path, bench):
            if view not in chosen:
                chosen.append(view)
    if len(chosen) < 2:
        held = ", ".join(sorted({repr(view.name) for view in every}))
        advice = (
            "name two or more with --judge"
            if len(every) > 1
            else "judge again with another [judge] table (`mtbench judge -c`) or import a "
            "FastChat judgment file (`mtbench import`)"
        )
        raise InputError(
            f"{store_path}: agreement needs two judges for bench {bench} "
            f"(judges in the store: {held}); {advice}"
        )
    if against is not None and sum(view.name == against for view in chosen) > 1:
        raise InputError(
            f"{store_path}: --against {against!r} names {sum(v.name == against for v in chosen)} "
            "judges (the same label with another model or api); compare them with --judge instead"
        )
    return chosen
