"""A judge panel's grades, worked by hand: mean and median of the members' ratings, items a member
did not rate left out and counted per model, majority verdicts per game with no majority a tie,
and FastChat's win rates and bootstrap intervals computed from the panel's matches."""

from __future__ import annotations

import math

import pytest

from engine.scoring.panel import (
    aggregate_ratings,
    majority_verdict,
    panel_matches,
    panel_scores,
)
from engine.scoring.summaries import PairMatch, SingleScore, summarize_pairwise, summarize_single


def _ratings(judge: dict[tuple[str, int, int], float]) -> list[SingleScore]:
    return [SingleScore(m, q, "writing", t, score) for (m, q, t), score in judge.items()]


def test_mean_and_median_of_the_members_ratings() -> None:
    assert aggregate_ratings([2.0, 9.0, 4.0], "mean") == pytest.approx(5.0)
    assert aggregate_ratings([2.0, 9.0, 4.0], "median") == 4.0
    assert aggregate_ratings([3.0, 8.0], "median") == 5.5  # two members: the middle of the two
    assert aggregate_ratings([7.0], "mean") == 7.0


def test_only_items_every_member_rated_count_and_the_rest_are_counted_per_model() -> None:
    a = _ratings({("x", 1, 1): 2, ("x", 1, 2): 6, ("x", 2, 1): 10, ("y", 1, 1): 5})
    b = _ratings({("x", 1, 1): 9, ("x", 1, 2): 6, ("x", 2, 1): -1, ("y", 1, 1): 7})
    c = _ratings({("x", 1, 1): 4, ("x", 1, 2): 9, ("y", 1, 1): 3, ("y", 2, 1): 8})
    mean = panel_scores([a, b, c], "mean")
    by_item = {(s.model, s.question_id, s.turn): s.score for s in mean.scores}
    # x q2 t1: b could not rate it (-1) and c never judged it; y q2 t1: only c judged it.
    assert by_item == pytest.approx({("x", 1, 1): 5.0, ("x", 1, 2): 7.0, ("y", 1, 1): 5.0})
    assert mean.left_out == (("x", 1), ("y", 1))
    median = panel_scores([a, b, c], "median")
    by_item = {(s.model, s.question_id, s.turn): s.score for s in median.scores}
    assert by_item == {("x", 1, 1): 4.0, ("x", 1, 2): 6.0, ("y", 1, 1): 5.0}
    # The board over the panel's items: x = mean(5, 7) overall, turn 1 = 5, turn 2 = 7.
    (x, y) = summarize_single(mean.scores, resamples=0)
    assert (x.model, x.score, x.turn_1, x.turn_2, x.rows) == ("x", 6.0, 5.0, 7.0, 2)
    assert (y.model, y.score, y.rows) == ("y", 5.0, 1)


def test_the_panel_board_has_a_bootstrap_interval_over_questions() -> None:
    a = _ratings({("x", q, 1): float(q) for q in range(1, 6)})
    b = _ratings({("x", q, 1): float(q) + 2 for q in range(1, 6)})
    (x,) = summarize_single(panel_scores([a, b], "mean").scores)
    assert x.score == 4.0  # the mean of 2, 3, 4, 5, 6
    assert x.ci is not None and 2.0 <= x.ci.low < 4.0 < x.ci.high <= 6.0


def test_a_verdict_needs_more_than_half_of_the_members_else_the_game_is_a_tie() -> None:
    assert majority_verdict(["model_1", "model_1", "tie"]) == "model_1"
    assert majority_verdict(["model_1", "model_2", "tie"]) == "tie"
    assert majority_verdict(["model_1", "model_2"]) == "tie"
    assert majority_verdict(["model_2", "tie"]) == "tie"
    assert majority_verdict(["model_2", "model_2", "model_1", "tie"]) == "tie"  # 2 of 4
    assert majority_verdict(["model_2", "model_2", "model_2", "model_1"]) == "model_2"


def _match(m1: str, m2: str, qid: int, g1: str, g2: str) -> PairMatch:
    return PairMatch(m1, m2, qid, "writing", 1, g1, g2)


def test_pairwise_majority_per_game_then_fastchats_rates() -> None:
    a = [
        _match("x", "y", 1, "model_1", "model_1"),
        _match("x", "y", 2, "model_2", "model_2"),
        _match("x", "y", 3, "model_1", "model_1"),
        _match("x", "y", 4, "model_1", "error"),
    ]
    b = [
        _match("x", "y", 1, "model_1", "tie"),
        _match("x", "y", 2, "model_1", "model_2"),
        _match("x", "y", 3, "model_2", "model_2"),
        _match("x", "y", 4, "model_1", "model_1"),
    ]
    # c judged the match the other way round: its game 1 showed y first (the panel's game 2).
    c = [
        _match("y", "x", 1, "model_2", "model_2"),
        _match("y", "x", 2, "model_2", "model_1"),
        _match("y", "x", 3, "model_1", "tie"),
    ]
    panel = panel_matches([a, b, c])
    games = {m.question_id: (m.g1_winner, m.g2_winner) for m in panel.matches}
    # q1: game 1 x, x, x; game 2 x, tie, x. q2: y, x, y; y, y, x. q3: x, y, tie (no majority);
    # x, y, y. q4: a has no verdict in game 2 and c none at all: left out.
    assert games == {
        1: ("model_1", "model_1"),
        2: ("model_2", "model_2"),
        3: ("tie", "model_2"),
    }
    assert [m.question_id for m in panel.left_out] == [4]
    (x, y) = sorted(summarize_pairwise(panel.matches, resamples=0), key=lambda s: s.model)
    # x won q1, lost q2, q3's games disagree: a tie (FastChat's rule).
    assert (x.win, x.loss, x.tie, x.errors) == (1, 1, 1, 0)
    assert (y.win, y.loss, y.tie) == (1, 1, 1)
    assert x.win_rate_adjusted == pytest.approx(0.5)


def test_a_panel_pooling_an_infinite_rating_has_an_infinite_interval_bound_not_nan() -> None:
    # A judge's 400-digit [[999...9]] is inf and averaged as given (FastChat's rule): the
    # bootstrap interval's upper bound is then inf, never inf * 0 = nan.
    rows = [SingleScore("x", q, "writing", 1, 5.0 + q % 3) for q in range(81, 91)]
    huge = [SingleScore("x", 81, "writing", 1, math.inf), *rows[1:]]
    (x,) = summarize_single(panel_scores([rows, huge], "mean").scores)
    assert x.ci is not None
    assert math.isfinite(x.ci.low) and x.ci.high == math.inf
