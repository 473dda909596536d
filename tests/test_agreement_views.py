"""`mtbench show --agreement`: every figure equal to one computed here from the judgment files with
krippendorff / scipy / a confusion matrix, on a store with three judge labels (the FastChat
reference run imported as it is, and two judges derived from it with moved ratings, ties, swapped
verdicts and items one of them left out), each with the number of items behind it."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
import orjson
import pytest
from scipy import stats

from tests.support.judgestore import REFERENCE, Row, judgment_rows, three_judge_store, write_judge
from tests.support.runconfig import mtbench

JUDGES = (REFERENCE, "judge-b", "judge-c")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return three_judge_store(tmp_path_factory.mktemp("judges"))


def _agreement(capsys: pytest.CaptureFixture[str], store: Path, *flags: str) -> dict[str, Any]:
    code, out, err = mtbench(capsys, "show", "--store", str(store), "--agreement", "--json", *flags)
    assert code == 0, err
    return orjson.loads(out)


def _ratings(label: str) -> dict[tuple[str, int, int], float]:
    """(model, question, turn) -> rating, the -1s (no rating) left out; a later line wins."""
    rows = judgment_rows(label, "single")
    items = {(r["model"], r["question_id"], r["turn"]): float(r["score"]) for r in rows}
    return {key: score for key, score in items.items() if score != -1}


def _leaderboard(label: str) -> dict[str, float]:
    per_model: dict[str, list[float]] = defaultdict(list)
    for (model, _, _), score in _ratings(label).items():
        per_model[model].append(score)
    return {model: float(np.mean(scores)) for model, scores in per_model.items()}


def _match_verdict(row: Row) -> tuple[tuple[int, str, str, int], str] | None:
    """FastChat's vote: the match result for the models in name order; None for an error game."""
    g1, g2 = row["g1_winner"], row["g2_winner"]
    if "error" in (g1, g2):
        return None
    result = "tie" if g1 == "tie" or g1 != g2 else {"model_1": "A", "model_2": "B"}[g1]
    first, second = row["model_1"], row["model_2"]
    if first > second:
        first, second = second, first
        result = {"A": "B", "B": "A"}.get(result, result)
    return (row["question_id"], first, second, row["turn"]), result


def _verdicts(label: str) -> dict[tuple[int, str, str, int], str]:
    found = (_match_verdict(row) for row in judgment_rows(label, "pair"))
    return dict(vote for vote in found if vote is not None)


def _expected_single(first: str, second: str) -> dict[str, Any]:
    a, b = _ratings(first), _ratings(second)
    union = sorted(a.keys() | b.keys())
    data = np.array([[a.get(k, np.nan) for k in union], [b.get(k, np.nan) for k in union]])
    shared = sorted(a.keys() & b.keys())
    board_a, board_b = _leaderboard(first), _leaderboard(second)
    models = sorted(board_a.keys() & board_b.keys())
    tau = stats.kendalltau([board_a[m] for m in models], [board_b[m] for m in models])
    return {
        "alpha": krippendorff.alpha(reliability_data=data, level_of_measurement="interval"),
        "spearman": stats.spearmanr([a[k] for k in shared], [b[k] for k in shared]).statistic,
        "tau": tau.statistic,
        "items": len(shared),
        "models": len(models),
    }


def _expected_pairwise(first: str, second: str) -> dict[str, Any]:
    a, b = _verdicts(first), _verdicts(second)
    shared = sorted(a.keys() & b.keys())
    labels = ["A", "B", "tie"]
    confusion = np.zeros((3, 3))
    for key in shared:
        confusion[labels.index(a[key]), labels.index(b[key])] += 1
    n = confusion.sum()
    observed = np.trace(confusion) / n
    chance = float((confusion.sum(axis=1) * confusion.sum(axis=0)).sum()) / n**2
    clear = [k for k in shared if "tie" not in (a[k], b[k])]
    return {
        "kappa": (observed - chance) / (1 - chance),
        "items": len(shared),
        "agreed": sum(a[k] == b[k] for k in shared),
        "agreed_without_ties": sum(a[k] == b[k] for k in clear),
        "without_ties": len(clear),
    }


def _check_single(row: dict[str, Any]) -> None:
    expected = _expected_single(*row["judges"])
    assert row["krippendorff_alpha"]["value"] == pytest.approx(expected["alpha"], abs=1e-9)
    assert row["spearman"]["value"] == pytest.approx(expected["spearman"], abs=1e-9)
    assert row["kendall_tau"]["value"] == pytest.approx(expected["tau"], abs=1e-9)
    assert row["krippendorff_alpha"]["items"] == row["spearman"]["items"] == expected["items"]
    assert row["kendall_tau"]["models"] == expected["models"]


def _check_pairwise(row: dict[str, Any]) -> None:
    expected = _expected_pairwise(*row["judges"])
    assert row["cohen_kappa"]["value"] == pytest.approx(expected["kappa"], abs=1e-9)
    assert row["cohen_kappa"]["items"] == expected["items"]
    with_ties, without = row["agreement"], row["agreement_without_ties"]
    assert (with_ties["agreed"], with_ties["pairs"]) == (expected["agreed"], expected["items"])
    assert with_ties["value"] == pytest.approx(expected["agreed"] / expected["items"])
    assert (without["agreed"], without["pairs"]) == (
        expected["agreed_without_ties"],
        expected["without_ties"],
    )


def test_every_pair_of_judges_agrees_as_the_libraries_compute_it(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _agreement(capsys, store)
    pairs = [list(pair) for pair in itertools.combinations(JUDGES, 2)]
    assert result["judges"] == list(JUDGES)
    assert [row["judges"] for row in result["single"]] == pairs
    assert [row["judges"] for row in result["pairwise"]] == pairs
    for row in result["single"]:
        _check_single(row)
    for row in result["pairwise"]:
        _check_pairwise(row)
    assert result["not_compared"] == []


def test_items_one_judge_left_out_and_its_ties_are_counted(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _agreement(capsys, store)
    single = {tuple(row["judges"]): row for row in result["single"]}
    full = single[(REFERENCE, "judge-b")]["spearman"]["items"]
    partial = single[(REFERENCE, "judge-c")]["spearman"]["items"]
    assert full == len(_ratings(REFERENCE)) and partial < 0.85 * full
    pairwise = {tuple(row["judges"]): row for row in result["pairwise"]}
    swapped = pairwise[(REFERENCE, "judge-b")]
    # Swapped verdicts disagree without a tie, so leaving ties out does not make them agree.
    assert (
        0 < swapped["agreement_without_ties"]["agreed"] < swapped["agreement_without_ties"]["pairs"]
    )
    assert swapped["agreement_without_ties"]["pairs"] < swapped["agreement"]["pairs"]


def test_the_text_shows_each_figure_beside_its_items(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--agreement")
    assert code == 0
    expected = _expected_single(REFERENCE, "judge-c")
    line = next(row for row in out.splitlines() if row.split()[:2] == [REFERENCE, "judge-c"])
    alpha, items, rho, rho_items = line.split()[2:6]
    assert float(alpha) == pytest.approx(expected["alpha"], abs=5e-4)
    assert float(rho) == pytest.approx(expected["spearman"], abs=5e-4)
    assert int(items) == int(rho_items) == expected["items"]
    pair = _expected_pairwise(REFERENCE, "judge-b")
    lines = [row for row in out.splitlines() if row.split()[:2] == [REFERENCE, "judge-b"]]
    verdict_line = lines[1]
    assert f"{pair['agreed']}/{pair['items']}" in verdict_line
    assert "Krippendorff's alpha" in out and "without ties" in out


def test_against_compares_every_judge_with_the_reference_set_only(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _agreement(capsys, store, "--against", REFERENCE)
    assert result["against"] == REFERENCE
    expected = [["judge-b", REFERENCE], ["judge-c", REFERENCE]]
    assert [row["judges"] for row in result["single"]] == expected
    assert [row["judges"] for row in result["pairwise"]] == expected
    for row in result["single"]:
        _check_single(row)
    for row in result["pairwise"]:
        _check_pairwise(row)


def test_judge_flags_choose_the_judges_compared(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _agreement(capsys, store, "--judge", "judge-b", "--judge", "judge-c")
    assert result["judges"] == ["judge-b", "judge-c"]
    assert [row["judges"] for row in result["single"]] == [["judge-b", "judge-c"]]
    _check_single(result["single"][0])
    _check_pairwise(result["pairwise"][0])
    result = _agreement(capsys, store, "--judge", "judge-c", "--against", REFERENCE)
    assert [row["judges"] for row in result["pairwise"]] == [["judge-c", REFERENCE]]


def test_judges_with_nothing_in_common_are_named_not_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from engine.interop import import_fastchat

    store = tmp_path / "apart.sqlite"
    asyncio.run(import_fastchat(store, write_judge(tmp_path, "judge-b", ("single",))))
    asyncio.run(import_fastchat(store, write_judge(tmp_path, "judge-c", ("pair",))))
    result = _agreement(capsys, store)
    assert result["single"] == result["pairwise"] == []
    (line,) = result["not_compared"]
    assert "judge-b (single) and judge-c (pairwise): no mode in common" in line
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--agreement")
    assert code == 0 and "Not compared:" in out and "no mode in common" in out


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--agreement", "--judge", "nobody"], "no judgments by judge 'nobody'"),
        (["--agreement", "--against", "nobody"], "no judgments by judge 'nobody'"),
        (["--against", REFERENCE], "--against goes with --agreement"),
        (["--judge", REFERENCE, "--judge", "judge-b"], "give --judge once"),
        (["--agreement", "--mode", "single"], "drop --mode/--baseline"),
        (["--agreement", "--judge", "judge-b"], "name two or more with --judge"),
    ],
)
def test_a_bad_agreement_request_is_one_line_and_exit_2(
    store: Path, capsys: pytest.CaptureFixture[str], flags: list[str], says: str
) -> None:
    before = store.stat().st_mtime_ns
    code, out, err = mtbench(capsys, "show", "--store", str(store), *flags)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and says in err, err
    assert store.stat().st_mtime_ns == before


def test_agreement_values_are_finite_or_null(store: Path, capsys: pytest.CaptureFixture[str]):
    for row in _agreement(capsys, store)["single"]:
        for figure in ("krippendorff_alpha", "spearman", "kendall_tau"):
            value = row[figure]["value"]
            assert value is None or math.isfinite(value)


def test_a_store_with_one_judge_says_how_to_get_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from engine.interop import import_fastchat
    from tests.support.paths import FASTCHAT_REFERENCE

    store = tmp_path / "one.sqlite"
    asyncio.run(import_fastchat(store, FASTCHAT_REFERENCE))
    code, out, err = mtbench(capsys, "show", "--store", str(store), "--agreement")
    assert code == 2 and out == ""
    assert "agreement needs two judges" in err and "(judges in the store: 'gpt-4')" in err
    assert "mtbench import" in err and len(err.strip().splitlines()) == 1
