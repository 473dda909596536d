"""Bradley-Terry ratings: the maximum-likelihood fit arena-hard computes (checked by hand and
against scipy's optimiser on arena-hard's own formulation), ties counted half, anchored at the
baseline, with seeded bootstrap intervals and finite ratings when a model never lost."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from scipy.optimize import minimize

from engine.scoring.bradley_terry import Battle, battles_from_matches, bradley_terry
from engine.scoring.summaries import PairMatch
from tests.support.paths import FASTCHAT_REFERENCE

PAIR_JUDGMENTS = FASTCHAT_REFERENCE / "model_judgment" / "gpt-4_pair.jsonl"


def _fastchat_battles(path: Path) -> list[Battle]:
    """Every game of FastChat's pairwise-all judgments as one battle (arena-hard counts games),
    games without a verdict left out."""
    battles = []
    for line in path.read_bytes().splitlines():
        row: dict[str, Any] = orjson.loads(line)
        for winner in (row["g1_winner"], row["g2_winner"]):
            if winner != "error":
                verdict = {"model_1": "model_a", "model_2": "model_b"}.get(winner, winner)
                battles.append(Battle(row["model_1"], row["model_2"], verdict))
    return battles


def _arena_hard_mle(battles: list[Battle], baseline: str) -> dict[str, float]:
    """arena-hard's `compute_mle_elo`, solved by scipy: every battle twice, a tie as one win for
    each side, an unpenalised logistic regression on +-ln(10) features, 400 * coef + 1000,
    shifted so the baseline is 1000."""
    models = sorted({m for b in battles for m in (b.model_a, b.model_b)})
    index = {m: i for i, m in enumerate(models)}
    doubled = battles + battles
    x = np.zeros((len(doubled), len(models)))
    y = np.zeros(len(doubled))
    for row, battle in enumerate(doubled):
        x[row, index[battle.model_a]] = math.log(10)
        x[row, index[battle.model_b]] = -math.log(10)
        first_copy = row < len(battles)
        y[row] = battle.winner == "model_a" or ("tie" in battle.winner and first_copy)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        value = np.sum(np.logaddexp(0, z) - y * z)
        return float(value), x.T @ (1 / (1 + np.exp(-z)) - y)

    fit = minimize(loss, np.zeros(len(models)), jac=True, method="BFGS", options={"gtol": 1e-10})
    elo = 400 * fit.x + 1000
    elo += 1000 - elo[index[baseline]]
    return dict(zip(models, elo.tolist(), strict=True))


def _ratings(board: Any) -> dict[str, float]:
    return {row.model: row.rating for row in board.ratings}


def test_two_models_three_wins_in_four_give_the_odds_on_the_elo_scale() -> None:
    battles = [Battle("a", "b", "model_a")] * 3 + [Battle("a", "b", "model_b")]
    board = bradley_terry(battles, baseline="b", prior=0, rounds=0)
    ratings = _ratings(board)
    assert ratings["b"] == pytest.approx(1000.0)
    assert ratings["a"] == pytest.approx(1000.0 + 400 * math.log10(3), abs=1e-6)
    assert board.ratings[0].win_rate == pytest.approx(0.75)
    assert [row.battles for row in board.ratings] == [4, 4]
    assert not board.separated


def test_a_tie_counts_half_a_win_for_each_side() -> None:
    # a scores 2 wins + 2 half-wins of 5 battles = 3 of 5: odds 3 : 2
    battles = [Battle("a", "b", "model_a")] * 2 + [Battle("b", "a", "model_a")]
    battles += [Battle("a", "b", "tie"), Battle("b", "a", "tie (bothbad)")]
    ratings = _ratings(bradley_terry(battles, baseline="b", prior=0, rounds=0))
    assert ratings["a"] - ratings["b"] == pytest.approx(400 * math.log10(1.5), abs=1e-6)


def test_ratings_equal_arena_hards_logistic_regression_on_fastchat_pairwise_judgments() -> None:
    battles = _fastchat_battles(PAIR_JUDGMENTS)
    expected = _arena_hard_mle(battles, baseline="fake-alpha")
    board = bradley_terry(battles, baseline="fake-alpha", prior=0, rounds=0)
    assert _ratings(board) == pytest.approx(expected, abs=1e-3)
    assert board.battles == len(battles)
    assert board.baseline == "fake-alpha"


def test_ratings_equal_the_logistic_regression_on_five_random_models_with_ties() -> None:
    rng = random.Random(7)
    strength = {f"m{i}": rng.gauss(0, 1) for i in range(5)}
    battles = []
    for _ in range(600):
        a, b = rng.sample(sorted(strength), 2)
        p = 1 / (1 + math.exp(strength[b] - strength[a]))
        u = rng.random()
        battles.append(
            Battle(a, b, "tie" if abs(u - p) < 0.15 else "model_a" if u < p else "model_b")
        )
    expected = _arena_hard_mle(battles, baseline="m0")
    exact = _ratings(bradley_terry(battles, baseline="m0", prior=0, rounds=0))
    assert exact == pytest.approx(expected, abs=1e-3)
    # The default prior keeps separated data finite and costs well under a tenth of a point here.
    assert _ratings(bradley_terry(battles, baseline="m0", rounds=0)) == pytest.approx(
        expected, abs=0.1
    )


def test_without_a_baseline_the_mean_rating_is_1000() -> None:
    battles = [Battle("a", "b", "model_a")] * 3 + [
        Battle("b", "c", "model_a"),
        Battle("c", "a", "tie"),
    ]
    board = bradley_terry(battles, baseline="not-playing", prior=0, rounds=0)
    assert board.baseline is None
    assert math.fsum(_ratings(board).values()) / 3 == pytest.approx(1000.0)
    assert all(row.win_rate is None for row in board.ratings)


def test_a_model_that_never_lost_gets_a_finite_rating_and_the_board_says_so() -> None:
    battles = [Battle("strong", "weak", "model_a")] * 160 + [Battle("weak", "mid", "tie")] * 10
    board = bradley_terry(battles, baseline="weak", rounds=20)
    ratings = _ratings(board)
    assert board.separated
    assert all(math.isfinite(r) for r in ratings.values())
    assert ratings["strong"] > ratings["mid"] >= ratings["weak"] - 1e-6
    assert board.ratings[0].model == "strong"


def test_bootstrap_intervals_are_seeded_order_free_and_bracket_the_estimate() -> None:
    battles = _fastchat_battles(PAIR_JUDGMENTS)
    board = bradley_terry(battles, baseline="fake-alpha", rounds=50, seed=3)
    shuffled = list(battles)
    random.Random(0).shuffle(shuffled)
    assert bradley_terry(shuffled, baseline="fake-alpha", rounds=50, seed=3) == board
    assert bradley_terry(battles, baseline="fake-alpha", rounds=50, seed=4) != board
    for row in board.ratings:
        assert row.ci is not None
        assert row.ci.low <= row.rating <= row.ci.high
        assert row.ci.level == 0.95
    baseline = next(row for row in board.ratings if row.model == "fake-alpha")
    assert baseline.ci is not None and baseline.ci.low == baseline.ci.high == 1000.0
    others = [row for row in board.ratings if row.model != "fake-alpha"]
    assert all(row.ci is not None and row.ci.high - row.ci.low > 1 for row in others)


def test_no_rounds_means_no_intervals_and_no_battles_an_empty_board() -> None:
    board = bradley_terry([Battle("a", "b", "model_a"), Battle("a", "b", "tie")], rounds=0)
    assert all(row.ci is None for row in board.ratings)
    empty = bradley_terry([Battle("a", "a", "model_a")])
    assert empty.ratings == () and empty.battles == 0


def test_battles_from_stored_matches_are_every_game_with_a_verdict() -> None:
    rows = [orjson.loads(line) for line in PAIR_JUDGMENTS.read_bytes().splitlines()]
    matches = [
        PairMatch(
            r["model_1"],
            r["model_2"],
            r["question_id"],
            "",
            r["turn"],
            r["g1_winner"],
            r["g2_winner"],
        )
        for r in rows
    ]
    battles = battles_from_matches(matches)
    assert sorted(battles, key=repr) == sorted(_fastchat_battles(PAIR_JUDGMENTS), key=repr)
    errors = sum((r["g1_winner"] == "error") + (r["g2_winner"] == "error") for r in rows)
    assert len(battles) == 2 * len(rows) - errors


def test_a_battle_without_a_verdict_is_refused() -> None:
    with pytest.raises(ValueError, match="'error'"):
        bradley_terry([Battle("a", "b", "error")])
