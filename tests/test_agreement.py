"""Agreement figures: equal to an established library's (krippendorff, scipy) and to hand-worked
cases, with ties and items some judge left out, and each with the number of items behind it."""

from __future__ import annotations

import math
import random

import krippendorff
import numpy as np
import pytest
from scipy import stats

from engine.scoring.agreement import (
    average_ranks,
    cohen_kappa,
    kendall_tau_b,
    krippendorff_alpha_interval,
    oriented_verdict,
    spearman,
    verdict_agreement,
    verdict_kappa,
    verdict_pairs,
)


def _ratings(
    rng: random.Random, items: int, judges: int, missing: float
) -> list[list[float | None]]:
    """Judges' 1-10 ratings of items, correlated through each item's quality, some left out."""
    units: list[list[float | None]] = []
    for _ in range(items):
        quality = rng.uniform(1, 10)
        units.append(
            [
                None
                if rng.random() < missing
                else float(min(10, max(1, round(quality + rng.gauss(0, 2)))))
                for _ in range(judges)
            ]
        )
    return units


def test_krippendorff_alpha_by_hand_leaves_out_items_one_judge_rated() -> None:
    # values 1,2 | 3,3 | 5,4: observed disagreement 4/6, expected 120/30 = 4; alpha = 1 - 1/6.
    result = krippendorff_alpha_interval([[1, 2], [3, 3], [5, 4], [7, None], [None, None]])
    assert result.value == pytest.approx(5 / 6)
    assert result.items == 3


@pytest.mark.parametrize("seed", range(6))
def test_krippendorff_alpha_equals_the_krippendorff_library_with_missing_ratings(seed: int) -> None:
    rng = random.Random(seed)
    units = _ratings(rng, items=rng.randint(5, 60), judges=rng.randint(2, 5), missing=0.25)
    coders_by_units = np.array(
        [[np.nan if v is None else v for v in unit] for unit in units], dtype=float
    ).T
    expected = krippendorff.alpha(reliability_data=coders_by_units, level_of_measurement="interval")
    result = krippendorff_alpha_interval(units)
    assert result.value == pytest.approx(expected, abs=1e-9)
    assert result.items == sum(sum(v is not None for v in unit) >= 2 for unit in units)


def test_krippendorff_alpha_is_undefined_without_variation_or_pairs() -> None:
    assert krippendorff_alpha_interval([[5, 5], [5, 5, None]]).value is None
    assert krippendorff_alpha_interval([[5, None], [None, 3]]).value is None
    assert krippendorff_alpha_interval([[5, None], [None, 3]]).items == 0


@pytest.mark.parametrize("rating", [6.3, 7.7, 1.1, 0.1, 2.2])
@pytest.mark.parametrize("judges", [2, 3])
def test_krippendorff_alpha_is_undefined_for_one_decimal_rating_throughout(
    rating: float, judges: int
) -> None:
    # A judge that answers [[7.7]] to everything: nothing to agree about, whatever the rounding.
    for items in (5, 10, 40, 333):
        assert krippendorff_alpha_interval([[rating] * judges] * items).value is None


@pytest.mark.parametrize("seed", range(4))
def test_krippendorff_alpha_equals_the_library_on_decimal_ratings_with_little_spread(
    seed: int,
) -> None:
    rng = random.Random(seed)
    units = [[rng.choice([7.7, 7.7, 7.7, 7.8]) for _ in range(3)] for _ in range(200)]
    expected = krippendorff.alpha(
        reliability_data=np.array(units, dtype=float).T, level_of_measurement="interval"
    )
    assert krippendorff_alpha_interval(units).value == pytest.approx(expected, abs=1e-9)


def test_perfect_agreement_gives_alpha_one_and_systematic_disagreement_a_negative_alpha() -> None:
    assert krippendorff_alpha_interval([[1, 1], [4, 4], [9, 9]]).value == pytest.approx(1.0)
    assert krippendorff_alpha_interval([[1, 9], [9, 1], [1, 9]]).value < 0


def test_average_ranks_share_the_ranks_ties_span() -> None:
    assert average_ranks([10, 20, 20, 5, 20]) == [2.0, 4.0, 4.0, 1.0, 4.0]
    assert average_ranks([3.0, 1.0, 2.0]) == [3.0, 1.0, 2.0]


def test_spearman_by_hand_with_ties_and_an_item_one_judge_left_out() -> None:
    # ranks x: 1, 2.5, 2.5, 4; y: 1, 2, 3, 4 -> Pearson r of the ranks = 4.5 / sqrt(4.5 * 5)
    result = spearman([(1, 10), (2, 20), (2, 30), (3, 40), (None, 50), (4, None)])
    assert result.value == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert result.items == 4


@pytest.mark.parametrize("seed", range(6))
def test_spearman_equals_scipy_on_tied_ratings(seed: int) -> None:
    rng = random.Random(seed)
    units = _ratings(rng, items=rng.randint(5, 80), judges=2, missing=0.0)
    xs = [u[0] for u in units]
    ys = [u[1] for u in units]
    expected = stats.spearmanr(xs, ys).statistic
    assert spearman(zip(xs, ys, strict=True)).value == pytest.approx(expected, abs=1e-9)


def test_spearman_is_undefined_when_a_judge_gives_one_rating_throughout() -> None:
    assert spearman([(7, 1), (7, 2), (7, 3)]).value is None
    assert spearman([(1, 1), (2, 2)]).value is None  # two items: no evidence either way


def test_kendall_tau_b_by_hand() -> None:
    # (1,1) (2,3) (3,2): two concordant pairs, one discordant, no ties -> 1/3
    assert kendall_tau_b([(1, 1), (2, 3), (3, 2)]).value == pytest.approx(1 / 3)
    # x ties on one pair of three: C = 2, D = 0, tied_x = 1 -> 2 / sqrt(2 * 3)
    assert kendall_tau_b([(1, 1), (1, 2), (2, 3)]).value == pytest.approx(2 / math.sqrt(6))


@pytest.mark.parametrize("seed", range(6))
def test_kendall_tau_b_equals_scipy_on_tied_leaderboards(seed: int) -> None:
    rng = random.Random(seed)
    models = rng.randint(3, 25)
    board_1 = [round(rng.uniform(4, 9), 1) for _ in range(models)]
    board_2 = [round(score + rng.gauss(0, 0.6), 1) for score in board_1]
    board_2[0] = board_2[1]  # at least one tie on one side
    expected = stats.kendalltau(board_1, board_2).statistic
    result = kendall_tau_b(zip(board_1, board_2, strict=True))
    assert result.value == pytest.approx(expected, abs=1e-9)
    assert result.items == models


def test_kendall_tau_b_leaves_out_missing_models_and_is_undefined_when_all_tie() -> None:
    assert kendall_tau_b([(1, 1), (2, 2), (3, None)]).items == 2
    assert kendall_tau_b([(5, 1), (5, 2), (5, 3)]).value is None


def test_cohen_kappa_by_hand() -> None:
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5, kappa 0.4
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10
    pairs += [("no", "no")] * 15
    result = cohen_kappa(pairs)
    assert result.value == pytest.approx(0.4)
    assert result.items == 50


def test_cohen_kappa_over_verdicts_counts_every_kind_of_tie_as_one_label() -> None:
    # a/a, b/b, tie/tie (bothbad), a/tie: p_o = 3/4; marginals first a2 b1 t1, second a1 b1 t2
    # -> p_e = (2*1 + 1*1 + 1*2) / 16 = 5/16; kappa = (3/4 - 5/16) / (11/16) = 7/11
    pairs = [
        ("model_a", "model_a"),
        ("model_b", "model_b"),
        ("tie", "tie (bothbad)"),
        ("model_a", "tie"),
    ]
    result = verdict_kappa(pairs)
    assert result.value == pytest.approx(7 / 11)
    assert result.items == 4


def test_cohen_kappa_is_undefined_when_both_used_one_label_and_for_no_items() -> None:
    assert cohen_kappa([("tie", "tie")] * 3).value is None
    assert cohen_kappa([]).items == 0


def test_fastchat_agreement_with_and_without_ties() -> None:
    # FastChat's rule: any two ties agree; without ties, a pair with a tie on either side is out.
    pairs = [
        ("model_a", "model_a"),
        ("model_a", "model_b"),
        ("tie", "tie (bothbad)"),
        ("model_b", "tie"),
        ("tie", "model_a"),
    ]
    with_ties = verdict_agreement(pairs, ties=True)
    assert (with_ties.agreed, with_ties.total) == (2, 5)
    assert with_ties.value == pytest.approx(0.4)
    without = verdict_agreement(pairs, ties=False)
    assert (without.agreed, without.total) == (1, 2)
    assert verdict_agreement([("tie", "tie")], ties=False).value is None


def test_verdict_pairs_compare_one_judge_verdict_with_every_human_vote_on_shared_items() -> None:
    judge = {(81, "a", "b", 1): ["model_a"], (82, "a", "b", 1): ["tie"], (83, "a", "c", 1): ["x"]}
    humans = {(81, "a", "b", 1): ["model_a", "model_b"], (82, "a", "b", 1): ["tie (bothbad)"]}
    pairs = sorted(verdict_pairs(judge, humans))
    assert pairs == [("model_a", "model_a"), ("model_a", "model_b"), ("tie", "tie (bothbad)")]
    result = verdict_agreement(pairs, ties=True)
    assert (result.agreed, result.total) == (2, 3)


def test_oriented_verdict_restates_a_vote_for_the_pair_in_name_order() -> None:
    assert oriented_verdict("zeta", "alpha", "model_a") == (("alpha", "zeta"), "model_b")
    assert oriented_verdict("zeta", "alpha", "tie (bothbad)") == (
        ("alpha", "zeta"),
        "tie (bothbad)",
    )
    assert oriented_verdict("alpha", "zeta", "model_a") == (("alpha", "zeta"), "model_a")


def test_an_infinite_rating_leaves_alpha_undefined_and_ties_kendall_tau_with_its_equal() -> None:
    # A judge's reply of [[999...9]] (400 digits) parses as inf: no interval distance, no alpha;
    # two models both at inf are tied on that board, not a nan comparison counted as 0.
    inf = math.inf
    assert krippendorff_alpha_interval([[5, inf], [6, 7], [3, 2]]).value is None
    assert krippendorff_alpha_interval([[5, inf], [6, 7], [3, 2]]).items == 3
    assert kendall_tau_b([(inf, 6.0), (inf, 7.0)]).value is None
    assert kendall_tau_b([(inf, 6.0), (5.0, 7.0), (4.0, 8.0)]).value == pytest.approx(
        stats.kendalltau([1e300, 5, 4], [6, 7, 8]).statistic
    )
