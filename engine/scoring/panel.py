"""A judge panel's grades: several judges pooled into one, on the items they all judged.

A single judge's grade is noisy and leans toward its own model family; a panel of judges from
different families, pooled, tracks human preference better ("Replacing Judges with Juries",
Verga et al. 2024). A panel item is one (model, question, turn) for ratings, one game of a match
for pairwise verdicts. Each member is first reduced to one grade per item (its own median over
samples, or its majority verdict per game: `engine.report.results` does that), then:

- ratings: the mean or the median of the members' ratings of the item;
- verdicts: the verdict more than half of the members gave the game; without such a majority the
  game is a tie (two members who disagree, or three who all differ).

An item enters the panel only when every member graded it (a rating, not -1; a verdict, not an
error): averaging whoever happened to grade an item would make the panel a different judge from
item to item. Items some member lacks are left out and counted per model, so the board can say
what it rests on. For verdicts the unit left out is the whole match (both games), since FastChat's
win rates score a match from its two games. Pure functions over frozen rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from engine.config_panel import AGGREGATES, Aggregate
from engine.scoring.floats import float_sum
from engine.scoring.summaries import MISSING_SCORE, PairMatch, SingleScore, median_score

__all__ = [
    "AGGREGATES",
    "Aggregate",
    "PanelMatches",
    "PanelScores",
    "aggregate_ratings",
    "majority_verdict",
    "panel_matches",
    "panel_scores",
]

TIE = "tie"
ERROR = "error"

ItemKey = tuple[str, int, int]  # (model, question_id, turn)
MatchKey = tuple[str, str, int, int]  # (model_1, model_2, question_id, turn), names in order


@dataclass(frozen=True, slots=True)
class PanelScores:
    """The panel's ratings, one per item every member rated, and what was left out per model."""

    scores: tuple[SingleScore, ...]
    left_out: tuple[tuple[str, int], ...]  # model -> items some member did not rate, by model


@dataclass(frozen=True, slots=True)
class PanelMatches:
    """The panel's matches (model names in name order), and the matches left out."""

    matches: tuple[PairMatch, ...]
    left_out: tuple[PairMatch, ...]  # matches some member gave no verdict in a game of


def aggregate_ratings(ratings: Sequence[float], aggregate: Aggregate) -> float:
    """The panel's rating of one item from its members' ratings."""
    if not ratings:
        raise ValueError("a panel rating needs at least one member's rating")
    if aggregate == "mean":
        return float_sum(ratings) / len(ratings)
    return median_score(ratings)


def majority_verdict(verdicts: Sequence[str]) -> str:
    """The verdict more than half of the members gave; a tie without such a majority."""
    if not verdicts:
        raise ValueError("a panel verdict needs at least one member's verdict")
    top, count = Counter(verdicts).most_common(1)[0]
    return top if 2 * count > len(verdicts) else TIE


def panel_scores(members: Sequence[Sequence[SingleScore]], aggregate: Aggregate) -> PanelScores:
    """One rating per item that every member rated (-1 is no rating); the rest counted."""
    ratings: dict[ItemKey, list[float]] = defaultdict(list)
    categories: dict[ItemKey, str] = {}
    for rows in members:
        for row in rows:
            if row.score == MISSING_SCORE:
                continue
            key = (row.model, row.question_id, row.turn)
            ratings[key].append(row.score)
            categories.setdefault(key, row.category)
    every_item = {(r.model, r.question_id, r.turn) for rows in members for r in rows}
    kept = [key for key in sorted(ratings) if len(ratings[key]) == len(members)]
    left_out = Counter(model for model, _, _ in every_item - set(kept))
    scores = tuple(
        SingleScore(model, qid, categories[(model, qid, turn)], turn,
                    aggregate_ratings(ratings[(model, qid, turn)], aggregate))
        for model, qid, turn in kept
    )  # fmt: skip
    return PanelScores(scores, tuple(sorted(left_out.items())))


def panel_matches(members: Sequence[Sequence[PairMatch]]) -> PanelMatches:
    """Each game's majority verdict over the members, for the matches in which every member gave
    a verdict in both games; a member's match played with the names the other way round counts
    the same (its game 1 showed the second name first: the other orientation's game 2)."""
    games: dict[MatchKey, list[tuple[str, str]]] = defaultdict(list)
    categories: dict[MatchKey, str] = {}
    for matches in members:
        own: dict[MatchKey, tuple[str, str]] = {}  # a member's one verdict pair per match
        for match in matches:
            key, oriented = _in_name_order(match)
            own[key] = oriented
            categories.setdefault(key, match.category)
        for key, oriented in own.items():
            games[key].append(oriented)
    kept: list[PairMatch] = []
    left_out: list[PairMatch] = []
    for key in sorted(games):
        verdicts = games[key]
        complete = len(verdicts) == len(members) and all(ERROR not in pair for pair in verdicts)
        g1 = majority_verdict([g1 for g1, _ in verdicts]) if complete else ERROR
        g2 = majority_verdict([g2 for _, g2 in verdicts]) if complete else ERROR
        match = PairMatch(key[0], key[1], key[2], categories[key], key[3], g1, g2)
        (kept if complete else left_out).append(match)
    return PanelMatches(tuple(kept), tuple(left_out))


def _in_name_order(match: PairMatch) -> tuple[MatchKey, tuple[str, str]]:
    """The match keyed with its model names in order, and its (game 1, game 2) verdicts so."""
    if match.model_1 <= match.model_2:
        key = (match.model_1, match.model_2, match.question_id, match.turn)
        return key, (match.g1_winner, match.g2_winner)
    swapped = {"model_1": "model_2", "model_2": "model_1"}
    key = (match.model_2, match.model_1, match.question_id, match.turn)
    g1 = swapped.get(match.g2_winner, match.g2_winner)
    g2 = swapped.get(match.g1_winner, match.g1_winner)
    return key, (g1, g2)
