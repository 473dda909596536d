"""Judge prompts and verdict parsing, checked byte for byte against a real FastChat 0.2.36 run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.bench.data import BenchData, JudgePrompt, Question, load_bench
from engine.bench.judge import (
    RatingParse,
    game_winner,
    pair_prompt_name,
    parse_pair_verdict,
    parse_rating,
    reference_turns,
    render_pair_game,
    render_single,
    single_prompt_name,
)
from engine.errors import DataError
from tests.support.paths import FASTCHAT_REFERENCE, MTBENCH_DATA

JUDGMENTS = FASTCHAT_REFERENCE / "model_judgment"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def bench() -> BenchData:
    return load_bench(MTBENCH_DATA, "mt_bench", need_judging=True)


@pytest.fixture(scope="module")
def answers() -> dict[str, dict[int, tuple[str, ...]]]:
    by_model: dict[str, dict[int, tuple[str, ...]]] = {}
    for path in sorted((FASTCHAT_REFERENCE / "model_answer").glob("*.jsonl")):
        rows = _read_jsonl(path)
        by_model[path.stem] = {r["question_id"]: tuple(r["choices"][0]["turns"]) for r in rows}
    return by_model


@pytest.fixture(scope="module")
def single_rows() -> list[dict[str, Any]]:
    return _read_jsonl(JUDGMENTS / "gpt-4_single.jsonl")


@pytest.fixture(scope="module")
def pair_rows() -> list[dict[str, Any]]:
    return _read_jsonl(JUDGMENTS / "gpt-4_pair.jsonl")


def test_reference_files_have_the_documented_row_counts(
    single_rows: list[dict[str, Any]], pair_rows: list[dict[str, Any]]
) -> None:
    assert len(single_rows) == 480
    assert len(pair_rows) == 480


def test_single_prompts_are_byte_identical_to_fastchat(
    bench: BenchData,
    answers: dict[str, dict[int, tuple[str, ...]]],
    single_rows: list[dict[str, Any]],
) -> None:
    for row in single_rows:
        question = bench.by_id[row["question_id"]]
        rendered = render_single(
            bench.judge_prompts,
            question,
            answers[row["model"]][question.question_id],
            row["turn"],
            reference_turns(question, bench.references),
        )
        assert rendered.user_prompt == row["user_prompt"], (row["model"], row["question_id"])
        assert rendered.prompt_name == row["judge"][1]
        assert rendered.system_prompt == bench.judge_prompts[row["judge"][1]].system_prompt


def test_pair_prompts_of_both_games_are_byte_identical_to_fastchat(
    bench: BenchData,
    answers: dict[str, dict[int, tuple[str, ...]]],
    pair_rows: list[dict[str, Any]],
) -> None:
    for row in pair_rows:
        question = bench.by_id[row["question_id"]]
        answers_1 = answers[row["model_1"]][question.question_id]
        answers_2 = answers[row["model_2"]][question.question_id]
        reference = reference_turns(question, bench.references)
        for game in (1, 2):
            rendered = render_pair_game(
                bench.judge_prompts, question, answers_1, answers_2, row["turn"], reference, game
            )
            assert rendered.user_prompt == row[f"g{game}_user_prompt"], (row["question_id"], game)
            assert rendered.prompt_name == row["judge"][1]
            assert rendered.system_prompt == bench.judge_prompts[row["judge"][1]].system_prompt


def test_every_fastchat_single_score_is_reproduced_by_parse_rating(
    single_rows: list[dict[str, Any]],
) -> None:
    for row in single_rows:
        parsed = parse_rating(row["judgment"])
        assert parsed.score == row["score"]
        assert type(parsed.score) is type(row["score"])


def test_reference_run_exercises_every_rating_parse_status(
    single_rows: list[dict[str, Any]],
) -> None:
    statuses = [parse_rating(row["judgment"]).status for row in single_rows]
    assert statuses.count("missing") == 31
    assert {"ok", "fallback", "missing"} <= set(statuses)


def test_every_fastchat_pair_winner_is_reproduced_by_verdict_parsing(
    pair_rows: list[dict[str, Any]],
) -> None:
    for row in pair_rows:
        for game in (1, 2):
            verdict = parse_pair_verdict(row[f"g{game}_judgment"], "[[A]]")
            assert game_winner(verdict, game) == row[f"g{game}_winner"]


def test_prompt_choice_follows_category_and_turn() -> None:
    assert single_prompt_name("writing", 1) == "single-v1"
    assert single_prompt_name("math", 2) == "single-math-v1-multi-turn"
    assert single_prompt_name("arena-hard-200", 1) == "single-math-v1"
    assert pair_prompt_name("coding", 1) == "pair-math-v1"
    assert pair_prompt_name("stem", 2) == "pair-v2-multi-turn"


def test_first_double_bracket_rating_wins_over_later_ones() -> None:
    assert parse_rating("Rating: [[3]] then [[9]] and [7]") == RatingParse(3, "ok")


def test_double_bracket_rating_is_preferred_to_an_earlier_single_bracket() -> None:
    assert parse_rating("see [2] ... Rating: [[8]]") == RatingParse(8, "ok")


def test_single_bracket_rating_is_the_fallback() -> None:
    assert parse_rating("Rating: [6]") == RatingParse(6, "fallback")


def test_decimal_ratings_keep_literal_eval_types() -> None:
    assert parse_rating("[[5.5]]") == RatingParse(5.5, "ok")
    five = parse_rating("[[5.]]").score
    assert five == 5.0 and isinstance(five, float)
    assert isinstance(parse_rating("[[7]]").score, int)


def test_no_rating_gives_minus_one() -> None:
    assert parse_rating("Rating: 7/10, [[seven]]") == RatingParse(-1, "missing")


def test_rating_literal_eval_rejects_is_recorded_as_invalid() -> None:
    assert parse_rating("Rating: [[05]]") == RatingParse(-1, "invalid")


def test_letter_verdicts_are_substring_checks_in_fastchat_order() -> None:
    assert parse_pair_verdict("[[B]] no wait [[A]]", "[[A]]") == "A"
    assert parse_pair_verdict("final: [[B]]", "[[A]]") == "B"
    assert parse_pair_verdict("it is a tie: [[C]]", "[[A]]") == "tie"
    assert parse_pair_verdict("[A] is better", "[[A]]") == "error"


def test_two_score_verdict_uses_tie_delta() -> None:
    assert parse_pair_verdict("[[8, 6]]", "[[rating_a,rating_b]]") == "A"
    assert parse_pair_verdict("[[6.5,7]]", "[[rating_a,rating_b]]") == "B"
    assert parse_pair_verdict("[7, 7.1]", "[[rating_a,rating_b]]") == "tie"
    assert parse_pair_verdict("no scores", "[[rating_a,rating_b]]") == "error"


def test_game_two_swaps_the_winner_mapping() -> None:
    assert game_winner("A", 1) == "model_1"
    assert game_winner("A", 2) == "model_2"
    assert game_winner("B", 2) == "model_1"
    assert game_winner("tie", 2) == "tie"
    assert game_winner("error", 1) == "error"


def test_reference_category_without_reference_answer_is_a_data_error() -> None:
    prompts = {
        "single-math-v1": JudgePrompt(
            "single-math-v1", "single", "sys", "{question}{ref_answer_1}{answer}", "[[rating]]"
        )
    }
    question = Question(question_id=1, category="math", turns=("q1", "q2"))
    with pytest.raises(DataError):
        reference_turns(question, {})
    with pytest.raises(DataError):
        render_single(prompts, question, ("a1", "a2"), 1, None)
