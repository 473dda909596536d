"""Judgments out of the store, as the rows `engine.scoring.summaries` aggregates.

Judges are told apart by their full identity (label, served model, API kind), so two judges that
share a label never have their scores mixed. A judge run with `samples = k` has k rows per item;
the item's score is their median (pairwise: the majority verdict of each game), as
`engine.scoring.summaries.median_score` / `majority_winner` define, and the per-sample rows stay
available for the spread between samples.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from engine.scoring.summaries import PairMatch, SingleScore, majority_winner, median_score
from engine.store import rows
from engine.store.rows import JudgeIdentity, judge_params
from engine.store.store import Store

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
    "load_pair_votes",
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
    found = await store.fetch(rows.STORED_JUDGES, {"bench": bench})
    kinds: dict[JudgeIdentity, set[str]] = defaultdict(set)
    prompts: dict[JudgeIdentity, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    samples: dict[JudgeIdentity, int] = defaultdict(int)
    settings: dict[JudgeIdentity, set[str]] = defaultdict(set)
    for name, model, api, kind, prompt, judge_settings, top_sample in found:
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


async def load_single_samples(
    store: Store, bench: str, judge: JudgeIdentity
) -> dict[int, list[SingleScore]]:
    """Sample index -> that sample's rows, one per (model, question, turn)."""
    found = await store.fetch(rows.SINGLE_SAMPLES, _of_kind(judge, bench, "single"))
    samples: dict[int, list[SingleScore]] = defaultdict(list)
    for sample, model, qid, turn, score, category in found:
        samples[sample].append(SingleScore(model, qid, category, turn, score))
    return dict(samples)


async def load_single_scores(store: Store, bench: str, judge: JudgeIdentity) -> list[SingleScore]:
    """One row per (model, question, turn): the median over its samples (-1s left out)."""
    items: dict[tuple[str, int, int], list[SingleScore]] = defaultdict(list)
    for sample in (await load_single_samples(store, bench, judge)).values():
        for row in sample:
            items[(row.model, row.question_id, row.turn)].append(row)
    return [
        SingleScore(model, qid, item[0].category, turn, median_score([r.score for r in item]))
        for (model, qid, turn), item in items.items()
    ]


async def load_pair_matches(store: Store, bench: str, judge: JudgeIdentity) -> list[PairMatch]:
    """Pair the two games of each match (each game's majority verdict over its samples); a
    match missing a game counts as an 'error' game."""
    found = await store.fetch(rows.PAIR_GAMES, _of_kind(judge, bench, "pair"))
    games: dict[tuple[str, str, int, int], dict[int, list[str]]] = defaultdict(
        lambda: defaultdict(list)
    )
    categories: dict[int, str] = {}
    for model_1, model_2, qid, turn, game, winner, category in found:
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


async def load_pair_votes(store: Store, bench: str, judge: JudgeIdentity) -> list[PairMatch]:
    """Each sample's match on its own, as a vote (an imported human set keeps each rater's vote
    on an item as a sample of its own); a sample missing a game has an 'error' game."""
    found = await store.fetch(rows.PAIR_SAMPLE_GAMES, _of_kind(judge, bench, "pair"))
    games: dict[tuple[int, str, str, int, int], dict[int, str]] = defaultdict(dict)
    categories: dict[int, str] = {}
    for sample, model_1, model_2, qid, turn, game, winner, category in found:
        games[(sample, model_1, model_2, qid, turn)][game] = winner
        categories[qid] = category
    return [
        PairMatch(m1, m2, qid, categories[qid], turn, g.get(1, "error"), g.get(2, "error"))
        for (_, m1, m2, qid, turn), g in sorted(games.items())
    ]


async def generation_costs(store: Store, bench: str) -> dict[str, float]:
    """Dollars paid for each model's current answers (only responses that had a price)."""
    return await _generation_totals(store, bench, "cost")


async def judge_cost(store: Store, bench: str, judge: JudgeIdentity) -> float | None:
    """Dollars paid for this judge's judgments (each distinct request once)."""
    return await _judge_total(store, bench, judge, "cost")


async def generation_reasoning_tokens(store: Store, bench: str) -> dict[str, int]:
    """Reasoning tokens of each model's current answers, where the server reported them."""
    totals = await _generation_totals(store, bench, "reasoning_tokens")
    return {model: int(total) for model, total in totals.items()}


async def judge_reasoning_tokens(store: Store, bench: str, judge: JudgeIdentity) -> int | None:
    """Reasoning tokens of this judge's judgments (each distinct request once), if reported."""
    total = await _judge_total(store, bench, judge, "reasoning_tokens")
    return None if total is None else int(total)


async def _generation_totals(store: Store, bench: str, column: str) -> dict[str, Any]:
    sql = rows.GENERATION_TOTALS.format(column=column)
    return {model: total for model, total in await store.fetch(sql, {"bench": bench})}


async def _judge_total(store: Store, bench: str, judge: JudgeIdentity, column: str) -> float | None:
    """The judge's total of `column`, or None when no judgment's response reported one."""
    sql = rows.JUDGE_TOTAL.format(column=column)
    total, reported = (await store.fetch(sql, judge_params(judge, bench)))[0]
    return float(total) if reported else None


def _of_kind(judge: JudgeIdentity, bench: str, kind: str) -> dict[str, Any]:
    return judge_params(judge, bench, kind=kind, unknown=UNKNOWN_CATEGORY)


async def expected_single_judgments(store: Store, bench: str) -> int | None:
    """Judgments one model should have in single mode (turn 2 only for two-turn questions)."""
    questions, two_turn = (await store.fetch(rows.EXPECTED_SINGLE, {"bench": bench}))[0]
    return None if not questions else questions + (two_turn or 0)


async def last_run(store: Store) -> LastRun | None:
    latest = await store.fetch(rows.LAST_RUN)
    if not latest:
        return None
    run_id, command, status = latest[0]
    classes = await store.fetch(rows.RUN_FAILURE_CLASSES, {"run_id": run_id})
    return LastRun(run_id, command, status, {name: count for name, count in classes})
