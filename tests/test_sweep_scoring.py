"""Steps from labels, the paired bootstrap and the sweep summary, against hand-computed cases."""

from __future__ import annotations

import pytest

from engine.scoring.paired import mean_interval, paired_difference, question_totals
from engine.scoring.steps import SweepMember, label_pattern, parse_step, sweeps_by_pattern
from engine.scoring.summaries import SingleScore, summarize_single
from engine.scoring.sweep import summarize_sweep


@pytest.mark.parametrize(
    ("label", "step"),
    [
        ("step-1200", 1200),
        ("checkpoint-1200", 1200),
        ("iter_0001200", 1200),
        ("run7-ep2-step1200", 1200),
        ("global_step_50_hf", 50),
        ("final", None),
        ("", None),
    ],
)
def test_the_step_is_the_last_integer_of_the_label(label: str, step: int | None) -> None:
    assert parse_step(label) == step


@pytest.mark.parametrize(
    "label",
    [
        "step-\u0661\u0660\u0660",  # Arabic-Indic digits: int() reads 100
        "step-\uff11\uff10\uff10",  # fullwidth digits
        f"step-{2**63}",  # beyond a signed 64-bit integer: W&B, MLflow and JSON readers refuse it
        "step-" + "9" * 5000,  # beyond what int() converts at all
    ],
)
def test_a_label_without_an_ascii_step_a_tracker_takes_has_no_step(label: str) -> None:
    assert parse_step(label) is None
    assert label_pattern(label) is None
    assert sweeps_by_pattern([label, "step-100"]) == {}


def test_the_largest_step_is_the_largest_signed_64_bit_integer() -> None:
    assert parse_step(f"step-000{2**63 - 1}") == 2**63 - 1


def test_a_labels_pattern_replaces_only_its_last_integer() -> None:
    assert label_pattern("run7-step-1200") == "run7-step-*"
    assert label_pattern("iter_0001200") == "iter_*"
    assert label_pattern("final") is None


def test_labels_differing_only_in_their_step_form_a_sweep_in_step_order() -> None:
    labels = ["step-1000", "gpt-3.5-turbo", "step-200", "final", "iter_0001200", "iter_0000800"]
    labels += ["Llama-2-7b-chat", "Llama-2-13b-chat"]  # sizes, not steps
    assert sweeps_by_pattern(labels) == {
        "iter_*": (SweepMember("iter_0000800", 800), SweepMember("iter_0001200", 1200)),
        "step-*": (SweepMember("step-200", 200), SweepMember("step-1000", 1000)),
    }


def test_the_paired_interval_is_the_percentiles_of_the_differences_on_the_same_draws() -> None:
    better = {1: (8.0, 1), 2: (6.0, 1)}
    base = {1: (6.0, 1), 2: (6.0, 1)}
    # Draws {q1,q1}: 8-6 = 2; {q1,q2}: 7-6 = 1; {q2,q2}: 6-6 = 0 -> sorted [0, 1, 2].
    # 2.5th percentile: 0 + 0.05 * (1 - 0); 97.5th: 1 + 0.95 * (2 - 1).
    found = paired_difference(better, base, draws=[(0, 0), (0, 1), (1, 1)])
    assert found is not None
    assert found.difference == pytest.approx(1.0)
    assert found.ci is not None
    assert (found.ci.low, found.ci.high) == pytest.approx((0.05, 1.95))
    assert found.distinguishable
    assert found.questions == 2


def test_a_difference_whose_interval_holds_zero_is_not_distinguishable() -> None:
    mixed = {1: (8.0, 1), 2: (4.0, 1)}
    base = {1: (6.0, 1), 2: (6.0, 1)}
    # Draws give 2, -2 and 0 -> [-2, 0, 2]: -2 + 0.05 * 2 = -1.9, 0 + 0.95 * 2 = 1.9.
    found = paired_difference(mixed, base, draws=[(0, 0), (1, 1), (0, 1)])
    assert found is not None and found.ci is not None
    assert found.difference == pytest.approx(0.0)
    assert (found.ci.low, found.ci.high) == pytest.approx((-1.9, 1.9))
    assert not found.distinguishable


def test_each_side_is_a_mean_over_rows_and_only_shared_questions_count() -> None:
    # q1 has both turns (7 + 8 against 5 + 5), q2 one turn; q3 was graded for one side only.
    a = {1: (15.0, 2), 2: (4.0, 1), 3: (10.0, 1)}
    b = {1: (10.0, 2), 2: (4.0, 1)}
    found = paired_difference(a, b, draws=[(0, 0), (1, 1)])
    assert found is not None and found.ci is not None
    assert found.questions == 2
    assert found.difference == pytest.approx(19 / 3 - 14 / 3)
    # {q1,q1}: 30/4 - 20/4 = 2.5; {q2,q2}: 4 - 4 = 0.
    assert (found.ci.low, found.ci.high) == pytest.approx((0.0625, 2.4375))


def test_checkpoints_without_a_shared_question_have_no_difference() -> None:
    assert paired_difference({1: (5.0, 1)}, {2: (5.0, 1)}) is None


def test_a_constant_gain_on_every_question_is_distinguishable_under_seeded_resampling() -> None:
    base = {qid: (float(qid % 7 + 1), 1) for qid in range(40)}
    gained = {qid: (total + 1.0, n) for qid, (total, n) in base.items()}
    found = paired_difference(gained, base, resamples=200, seed=7)
    assert found is not None and found.ci is not None
    assert (found.ci.low, found.ci.high) == pytest.approx((1.0, 1.0))
    assert found.distinguishable
    again = paired_difference(gained, base, resamples=200, seed=7)
    assert again == found
    same = paired_difference(base, base, resamples=200, seed=7)
    assert same is not None and not same.distinguishable


def _row(model: str, qid: int, turn: int, score: float, category: str = "writing") -> SingleScore:
    return SingleScore(model, qid, category, turn, score)


def test_question_totals_leave_out_missing_ratings_and_the_mean_interval_matches_show() -> None:
    rows = [_row("m", q, t, float((q * t) % 9 + 1)) for q in range(1, 12) for t in (1, 2)]
    rows.append(_row("m", 3, 1, -1))
    totals = question_totals(rows)
    assert totals[1] == (2.0 + 3.0, 2)
    (summary,) = summarize_single([r for r in rows if r.score != -1])
    assert mean_interval(totals) == summary.ci


def test_the_sweep_marks_the_best_and_compares_each_checkpoint_with_it() -> None:
    rows = [
        *[_row("step-100", q, 1, 4.0) for q in (1, 2)],
        _row("step-200", 1, 1, 8.0, "math"),
        _row("step-200", 2, 1, 6.0),
        *[_row("step-300", q, 1, 7.0) for q in (1, 2)],
        _row("other", 1, 1, 10.0),
    ]
    members = [SweepMember(f"step-{s}", s) for s in (100, 200, 300, 400)]
    summary = summarize_sweep(rows, members, resamples=50)
    assert [c.label for c in summary.checkpoints] == [m.label for m in members]
    assert summary.best == "step-200"  # 7.0 on a tie with step-300: the earlier step
    assert summary.categories == ("math", "writing")
    by_label = {c.label: c for c in summary.checkpoints}
    assert by_label["step-200"].versus_best is None
    assert by_label["step-400"].overall.score is None and by_label["step-400"].versus_best is None
    worse = by_label["step-100"].versus_best
    assert worse is not None and worse.difference == pytest.approx(-3.0)
    assert by_label["step-200"].category("math") is not None
    assert by_label["step-100"].category("math").score is None  # type: ignore[union-attr]
    assert by_label["step-300"].turn_2.score is None


def test_one_shared_question_gives_a_difference_but_no_interval_and_no_verdict() -> None:
    # Every draw of one question is that question: a zero-width interval, "distinguishable".
    found = paired_difference({81: (9.0, 1)}, {81: (6.0, 2), 82: (10.0, 2)})
    assert found is not None
    assert found.difference == pytest.approx(6.0)
    assert found.ci is None and not found.distinguishable and found.questions == 1
