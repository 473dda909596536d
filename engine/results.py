"""Judgments out of the store, as the rows `engine.scoring` aggregates.

Only sample 0 is read here; judges are told apart by their full identity (label, served model,
API kind), so two judges that share a label never have their scores mixed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from engine.scoring import PairMatch, SingleScore
from engine.store import JudgeIdentity, Store

__all__ = [
    "LastRun",
    "StoredJudge",
    "expected_single_judgments",
    "last_run",
    "load_pair_matches",
    "load_single_scores",
    "stored_judges",
]

UNKNOWN_CATEGORY = "unknown"


@dataclass(frozen=True, slots=True)
class LastRun:
    """The latest run on the store, and its failures by error class."""

    id: int
    command: str
    status: str
    failures: dict[str, int]


@dataclass(frozen=True, slots=True)
class StoredJudge:
    identity: JudgeIdentity
    kinds: frozenset[str]  # {'single', 'pair'}


async def stored_judges(store: Store, bench: str) -> list[StoredJudge]:
    rows = await store.fetch(
        "SELECT judge, judge_model, judge_api, kind FROM judgments WHERE bench = ? "
        "GROUP BY judge, judge_model, judge_api, kind ORDER BY judge, judge_model, judge_api",
        (bench,),
    )
    kinds: dict[JudgeIdentity, set[str]] = defaultdict(set)
    for name, model, api, kind in rows:
        kinds[JudgeIdentity(name, model, api)].add(kind)
    return [StoredJudge(identity, frozenset(k)) for identity, k in kinds.items()]


_WHERE = (
    "WHERE j.judge = ? AND j.judge_model = ? AND j.judge_api = ? AND j.bench = ? "
    "AND j.kind = ? AND j.sample = 0"
)
_CATEGORY = (
    f"COALESCE(q.category, '{UNKNOWN_CATEGORY}') FROM judgments j "
    "LEFT JOIN questions q ON q.bench = j.bench AND q.question_id = j.question_id "
)


async def load_single_scores(store: Store, bench: str, judge: JudgeIdentity) -> list[SingleScore]:
    rows = await store.fetch(
        f"SELECT j.model, j.question_id, j.turn, j.score, {_CATEGORY} {_WHERE}",
        (judge.name, judge.model, judge.api, bench, "single"),
    )
    return [
        SingleScore(model, qid, category, turn, score) for model, qid, turn, score, category in rows
    ]


async def load_pair_matches(store: Store, bench: str, judge: JudgeIdentity) -> list[PairMatch]:
    """Pair the two games of each match; a match missing a game counts as an 'error' game."""
    rows = await store.fetch(
        "SELECT j.model, j.opponent, j.question_id, j.turn, j.game, j.winner, "
        f"{_CATEGORY} {_WHERE}",
        (judge.name, judge.model, judge.api, bench, "pair"),
    )
    games: dict[tuple[str, str, int, int], dict[int, str]] = defaultdict(dict)
    categories: dict[int, str] = {}
    for model_1, model_2, qid, turn, game, winner, category in rows:
        games[(model_1, model_2, qid, turn)][game] = winner
        categories[qid] = category
    return [
        PairMatch(m1, m2, qid, categories[qid], turn, g.get(1, "error"), g.get(2, "error"))
        for (m1, m2, qid, turn), g in games.items()
    ]


async def expected_single_judgments(store: Store, bench: str) -> int | None:
    """Judgments one model should have in single mode (turn 2 only for two-turn questions)."""
    rows = await store.fetch(
        "SELECT COUNT(*), SUM(json_array_length(turns) >= 2) FROM questions WHERE bench = ?",
        (bench,),
    )
    questions, two_turn = rows[0]
    return None if not questions else questions + (two_turn or 0)


async def last_run(store: Store) -> LastRun | None:
    rows = await store.fetch("SELECT id, command, status FROM runs ORDER BY id DESC LIMIT 1")
    if not rows:
        return None
    run_id, command, status = rows[0]
    classes = await store.fetch(
        "SELECT error_class, COUNT(*) FROM failures WHERE run_id = ? GROUP BY error_class "
        "ORDER BY COUNT(*) DESC",
        (run_id,),
    )
    return LastRun(run_id, command, status, {name: count for name, count in classes})
