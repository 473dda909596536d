"""Judgments out of the store, as the rows `engine.scoring` aggregates.

Judges are told apart by their full identity (label, served model, API kind), so two judges that
share a label never have their scores mixed. A judge run with `samples = k` has k rows per item;
the item's score is their median (pairwise: the majority verdict of each game), as
`engine.scoring.median_score` / `majority_winner` define, and the per-sample rows stay available
for the spread between samples.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from engine.scoring import PairMatch, SingleScore, majority_winner, median_score
from engine.store import JudgeIdentity, Store

__all__ = [
    "LastRun",
    "StoredJudge",
    "expected_single_judgments",
    "generation_costs",
    "generation_reasoning_tokens",
    "judge_cost",
    "judge_reasoning_tokens",
    "last_run",
    "load_pair_matches",
    "load_single_samples",
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
    prompts: dict[str, tuple[str, ...]]  # kind -> judge prompt names, e.g. single-v1
    samples: int  # most samples stored for one item
    # Reasoning settings its judgments were made with (JSON objects; usually one): they change
    # grades, so they are shown with the judge's identity.
    settings: tuple[str, ...] = ()


async def stored_judges(store: Store, bench: str) -> list[StoredJudge]:
    rows = await store.fetch(
        "SELECT judge, judge_model, judge_api, kind, prompt_name, judge_settings, MAX(sample) "
        "FROM judgments WHERE bench = ? "
        "GROUP BY judge, judge_model, judge_api, kind, prompt_name, judge_settings "
        "ORDER BY judge, judge_model, judge_api",
        (bench,),
    )
    kinds: dict[JudgeIdentity, set[str]] = defaultdict(set)
    prompts: dict[JudgeIdentity, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    samples: dict[JudgeIdentity, int] = defaultdict(int)
    settings: dict[JudgeIdentity, set[str]] = defaultdict(set)
    for name, model, api, kind, prompt, judge_settings, top_sample in rows:
        identity = JudgeIdentity(name, model, api)
        kinds[identity].add(kind)
        prompts[identity][kind].add(prompt)
        samples[identity] = max(samples[identity], top_sample + 1)
        if judge_settings is not None:
            settings[identity].add(str(judge_settings))
    return [
        StoredJudge(
            identity,
            frozenset(k),
            {kind: tuple(sorted(names)) for kind, names in prompts[identity].items()},
            samples[identity],
            tuple(sorted(settings[identity])),
        )
        for identity, k in kinds.items()
    ]


_WHERE = (
    "WHERE j.judge = ? AND j.judge_model = ? AND j.judge_api = ? AND j.bench = ? AND j.kind = ?"
)
_CATEGORY = (
    f"COALESCE(q.category, '{UNKNOWN_CATEGORY}') FROM judgments j "
    "LEFT JOIN questions q ON q.bench = j.bench AND q.question_id = j.question_id "
)


async def load_single_samples(
    store: Store, bench: str, judge: JudgeIdentity
) -> dict[int, list[SingleScore]]:
    """Sample index -> that sample's rows, one per (model, question, turn)."""
    rows = await store.fetch(
        f"SELECT j.sample, j.model, j.question_id, j.turn, j.score, {_CATEGORY} {_WHERE}",
        (judge.name, judge.model, judge.api, bench, "single"),
    )
    samples: dict[int, list[SingleScore]] = defaultdict(list)
    for sample, model, qid, turn, score, category in rows:
        samples[sample].append(SingleScore(model, qid, category, turn, score))
    return dict(samples)


async def load_single_scores(store: Store, bench: str, judge: JudgeIdentity) -> list[SingleScore]:
    """One row per (model, question, turn): the median over its samples (-1s left out)."""
    items: dict[tuple[str, int, int], list[SingleScore]] = defaultdict(list)
    for rows in (await load_single_samples(store, bench, judge)).values():
        for row in rows:
            items[(row.model, row.question_id, row.turn)].append(row)
    return [
        SingleScore(model, qid, rows[0].category, turn, median_score([r.score for r in rows]))
        for (model, qid, turn), rows in items.items()
    ]


async def load_pair_matches(store: Store, bench: str, judge: JudgeIdentity) -> list[PairMatch]:
    """Pair the two games of each match (each game's majority verdict over its samples); a
    match missing a game counts as an 'error' game."""
    rows = await store.fetch(
        "SELECT j.model, j.opponent, j.question_id, j.turn, j.game, j.winner, "
        f"{_CATEGORY} {_WHERE}",
        (judge.name, judge.model, judge.api, bench, "pair"),
    )
    games: dict[tuple[str, str, int, int], dict[int, list[str]]] = defaultdict(
        lambda: defaultdict(list)
    )
    categories: dict[int, str] = {}
    for model_1, model_2, qid, turn, game, winner, category in rows:
        games[(model_1, model_2, qid, turn)][game].append(winner)
        categories[qid] = category
    return [
        PairMatch(
            m1,
            m2,
            qid,
            categories[qid],
            turn,
            majority_winner(g.get(1, ["error"])),
            majority_winner(g.get(2, ["error"])),
        )
        for (m1, m2, qid, turn), g in games.items()
    ]


async def generation_costs(store: Store, bench: str) -> dict[str, float]:
    """Dollars paid for each model's current answers (only responses that had a price)."""
    rows = await store.fetch(
        "SELECT a.model, SUM(r.cost) FROM answers a JOIN responses r ON r.key = a.response_key "
        "WHERE a.bench = ? AND r.cost IS NOT NULL GROUP BY a.model",
        (bench,),
    )
    return {model: cost for model, cost in rows}


async def judge_cost(store: Store, bench: str, judge: JudgeIdentity) -> float | None:
    """Dollars paid for this judge's judgments (each distinct request once)."""
    rows = await store.fetch(
        "SELECT SUM(r.cost) FROM responses r WHERE r.key IN (SELECT DISTINCT response_key "
        "FROM judgments WHERE judge = ? AND judge_model = ? AND judge_api = ? AND bench = ?)",
        (judge.name, judge.model, judge.api, bench),
    )
    return rows[0][0]


# Token counts are summed with TOTAL (a float), not SUM: a server may report counts up to
# 2**62 each (engine.providers.wire), and SQLite's SUM of two of them fails with "integer overflow".


async def generation_reasoning_tokens(store: Store, bench: str) -> dict[str, int]:
    """Reasoning tokens of each model's current answers, where the server reported them."""
    rows = await store.fetch(
        "SELECT a.model, TOTAL(r.reasoning_tokens) FROM answers a "
        "JOIN responses r ON r.key = a.response_key "
        "WHERE a.bench = ? AND r.reasoning_tokens IS NOT NULL GROUP BY a.model",
        (bench,),
    )
    return {model: int(tokens) for model, tokens in rows}


async def judge_reasoning_tokens(store: Store, bench: str, judge: JudgeIdentity) -> int | None:
    """Reasoning tokens of this judge's judgments (each distinct request once), if reported."""
    rows = await store.fetch(
        "SELECT TOTAL(r.reasoning_tokens), COUNT(r.reasoning_tokens) FROM responses r "
        "WHERE r.key IN (SELECT DISTINCT response_key FROM judgments WHERE judge = ? "
        "AND judge_model = ? AND judge_api = ? AND bench = ?)",
        (judge.name, judge.model, judge.api, bench),
    )
    tokens, reported = rows[0]
    return int(tokens) if reported else None


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
