"""Leaderboard numbers: equal to what FastChat's `show_result` printed, plus bootstrap intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.bench.data import load_bench
from engine.scoring.summaries import (
    PairMatch,
    SingleScore,
    match_result,
    rank_by_turn,
    summarize_pairwise,
    summarize_single,
)
from tests.support.paths import FASTCHAT_REFERENCE, MTBENCH_DATA

JUDGMENTS = FASTCHAT_REFERENCE / "model_judgment"
SECTION_TITLES = {"First turn": "turn_1", "Second turn": "turn_2", "Average": "score"}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _categories() -> dict[int, str]:
    bench = load_bench(MTBENCH_DATA, "mt_bench", need_judging=False)
    return {q.question_id: q.category for q in bench.questions}


@pytest.fixture(scope="module")
def single_scores() -> list[SingleScore]:
    categories = _categories()
    return [
        SingleScore(
            r["model"], r["question_id"], categories[r["question_id"]], r["turn"], r["score"]
        )
        for r in _read_jsonl(JUDGMENTS / "gpt-4_single.jsonl")
    ]


@pytest.fixture(scope="module")
def pair_matches() -> list[PairMatch]:
    categories = _categories()
    return [
        PairMatch(
            model_1=r["model_1"],
            model_2=r["model_2"],
            question_id=r["question_id"],
            category=categories[r["question_id"]],
            turn=r["turn"],
            g1_winner=r["g1_winner"],
            g2_winner=r["g2_winner"],
        )
        for r in _read_jsonl(JUDGMENTS / "gpt-4_pair.jsonl")
    ]


def _printed_single_tables() -> dict[str, list[tuple[str, float]]]:
    """show_single.txt's three pandas tables as (model, score) rows in printed order."""
    tables: dict[str, list[tuple[str, float]]] = {}
    current: list[tuple[str, float]] | None = None
    for line in (FASTCHAT_REFERENCE / "show_single.txt").read_text().splitlines():
        if line.startswith("##########"):
            current = tables.setdefault(SECTION_TITLES[line.strip("# ")], [])
            continue
        cells = line.split()
        if current is not None and cells and cells[0] not in ("score", "model"):
            current.append((cells[0], float(cells[-1])))
    return tables


def _printed_pair_table() -> list[tuple[str, int, int, int, float, float, float]]:
    """show_pairwise_all.txt's table rows: model, win, loss, tie and the three rates."""
    lines = (FASTCHAT_REFERENCE / "show_pairwise_all.txt").read_text().splitlines()
    body = lines[lines.index(next(line for line in lines if line.startswith("model"))) + 1 :]
    rows = []
    for line in body:
        name, *counts, win_rate, loss_rate, adjusted = line.split()
        win, loss, tie = (int(count) for count in counts)
        rows.append((name, win, loss, tie, float(win_rate), float(loss_rate), float(adjusted)))
    return rows


def test_single_tables_equal_fastchat_show_result(single_scores: list[SingleScore]) -> None:
    printed = _printed_single_tables()
    summaries = summarize_single(single_scores, resamples=0)
    tables = {
        "turn_1": [(s.model, s.turn_1) for s in rank_by_turn(summaries, 1)],
        "turn_2": [(s.model, s.turn_2) for s in rank_by_turn(summaries, 2)],
        "score": [(s.model, s.score) for s in summaries],
    }
    assert set(printed) == set(tables)
    for name, rows in printed.items():
        ours = tables[name]
        assert [model for model, _ in ours] == [model for model, _ in rows], name
        for (_, expected), (_, actual) in zip(rows, ours, strict=True):
            assert actual == pytest.approx(expected, abs=5e-7), name


def test_overall_single_score_is_the_mean_of_rows_not_of_turn_means() -> None:
    rows = [
        SingleScore("m", 1, "writing", 1, 10),
        SingleScore("m", 2, "writing", 1, 10),
        SingleScore("m", 1, "writing", 2, 4),
    ]
    (summary,) = summarize_single(rows, resamples=0)
    assert summary.turn_1 == 10 and summary.turn_2 == 4
    assert summary.score == pytest.approx(8.0)


def test_minus_one_ratings_are_dropped_and_counted(single_scores: list[SingleScore]) -> None:
    summaries = summarize_single(single_scores, resamples=0)
    assert sum(s.missing for s in summaries) == 31
    assert sum(s.rows for s in summaries) == 480 - 31
    rows = [SingleScore("m", 1, "math", 1, -1), SingleScore("m", 1, "math", 2, 6)]
    (summary,) = summarize_single(rows, resamples=0)
    assert (summary.score, summary.turn_1, summary.missing, summary.rows) == (6, None, 1, 1)


def test_model_with_only_minus_one_ratings_sorts_last_without_scores() -> None:
    rows = [SingleScore("broken", 1, "math", 1, -1), SingleScore("ok", 1, "math", 1, 3)]
    summaries = summarize_single(rows, resamples=0)
    assert [s.model for s in summaries] == ["ok", "broken"]
    assert summaries[1].score is None and summaries[1].ci is None


def test_category_means_cover_all_scored_rows(single_scores: list[SingleScore]) -> None:
    for summary in summarize_single(single_scores, resamples=0):
        assert sum(c.rows for c in summary.categories) == summary.rows
        total = sum(c.score * c.rows for c in summary.categories)
        assert summary.score is not None
        assert total / summary.rows == pytest.approx(summary.score)


def test_pairwise_all_table_equals_fastchat_show_result(pair_matches: list[PairMatch]) -> None:
    printed = _printed_pair_table()
    ours = summarize_pairwise(pair_matches, resamples=0)
    assert [s.model for s in ours] == [row[0] for row in printed]
    for summary, (_, win, loss, tie, win_rate, loss_rate, adjusted) in zip(
        ours, printed, strict=True
    ):
        assert (summary.win, summary.loss, summary.tie) == (win, loss, tie)
        assert summary.win_rate == pytest.approx(win_rate, abs=5e-7)
        assert summary.loss_rate == pytest.approx(loss_rate, abs=5e-7)
        assert summary.win_rate_adjusted == pytest.approx(adjusted, abs=5e-7)


def test_matches_with_an_error_game_are_dropped_and_counted(
    pair_matches: list[PairMatch],
) -> None:
    summaries = summarize_pairwise(pair_matches, resamples=0)
    assert sum(s.errors for s in summaries) == 2 * 50
    assert sum(s.win + s.loss + s.tie for s in summaries) == 2 * (480 - 50)


def test_inconsistent_games_or_a_first_game_tie_count_as_a_tie() -> None:
    def match(g1: str, g2: str) -> PairMatch:
        return PairMatch("a", "b", 1, "writing", 1, g1, g2)

    assert match_result(match("model_1", "model_2")) == "tie"
    assert match_result(match("tie", "model_1")) == "tie"
    assert match_result(match("model_1", "tie")) == "tie"
    assert match_result(match("model_2", "model_2")) == "model_2"
    assert match_result(match("model_1", "error")) == "error"


def test_baseline_mode_keeps_only_baseline_matches_and_drops_its_row() -> None:
    matches = [
        PairMatch("a", "base", 1, "writing", 1, "model_1", "model_1"),
        PairMatch("base", "b", 1, "writing", 1, "model_1", "model_1"),
        PairMatch("a", "b", 1, "writing", 1, "model_2", "model_2"),
    ]
    summaries = summarize_pairwise(matches, baseline="base", resamples=0)
    assert [(s.model, s.win, s.loss, s.tie) for s in summaries] == [("a", 1, 0, 0), ("b", 0, 1, 0)]
    all_models = summarize_pairwise(matches, resamples=0)
    assert {s.model for s in all_models} == {"a", "b", "base"}


def test_single_bootstrap_is_deterministic_and_contains_the_mean(
    single_scores: list[SingleScore],
) -> None:
    first = summarize_single(single_scores, seed=7, resamples=300)
    second = summarize_single(list(reversed(single_scores)), seed=7, resamples=300)
    assert first == second
    for summary in first:
        assert summary.ci is not None and summary.score is not None
        assert summary.ci.low < summary.score < summary.ci.high
    other_seed = summarize_single(single_scores, seed=8, resamples=300)
    assert [s.ci for s in other_seed] != [s.ci for s in first]


def test_pairwise_bootstrap_is_deterministic_and_contains_the_rate(
    pair_matches: list[PairMatch],
) -> None:
    first = summarize_pairwise(pair_matches, seed=3, resamples=300)
    assert first == summarize_pairwise(list(reversed(pair_matches)), seed=3, resamples=300)
    for summary in first:
        assert summary.ci is not None and summary.win_rate_adjusted is not None
        assert summary.ci.low < summary.win_rate_adjusted < summary.ci.high
        assert summary.ci.level == 0.95
