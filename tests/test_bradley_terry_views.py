"""Bradley-Terry ratings beside FastChat's pairwise-all win rates in `show` and `show --json`:
equal to a maximum-likelihood fit done here with scipy from the reference run's judgment file,
with seeded (reproducible) bootstrap intervals; FastChat's own numbers are left as they are."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from scipy import optimize

from engine.interop import import_fastchat
from tests.support.judgestore import reference_rows
from tests.support.paths import FASTCHAT_REFERENCE
from tests.support.runconfig import mtbench

ELO = 400.0 / math.log(10.0)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bt") / "reference.sqlite"
    asyncio.run(import_fastchat(path, FASTCHAT_REFERENCE))
    return path


def _games() -> list[tuple[str, str, float]]:
    """Every game with a verdict as (a, b, a's points): a tie is half a point each."""
    games = []
    for row in reference_rows("pair"):
        for winner in (row["g1_winner"], row["g2_winner"]):
            points = {"model_1": 1.0, "model_2": 0.0, "tie": 0.5}.get(winner)
            if points is not None:
                games.append((row["model_1"], row["model_2"], points))
    return games


def _fitted(games: list[tuple[str, str, float]]) -> dict[str, float]:
    models = sorted({m for a, b, _ in games for m in (a, b)})
    index = {m: i for i, m in enumerate(models)}

    def loss(strengths: np.ndarray) -> float:
        total = 0.0
        for a, b, points in games:
            diff = strengths[index[a]] - strengths[index[b]]
            total -= points * -np.logaddexp(0, -diff) + (1 - points) * -np.logaddexp(0, diff)
        return total

    found = optimize.minimize(loss, np.zeros(len(models)), method="BFGS", options={"gtol": 1e-10})
    ratings = found.x * ELO
    return {m: float(r - ratings.mean() + 1000.0) for m, r in zip(models, ratings, strict=True)}


def _board(capsys: pytest.CaptureFixture[str], store: Path, mode: str) -> dict[str, Any]:
    code, out, err = mtbench(capsys, "show", "--store", str(store), "--mode", mode, "--json")
    assert code == 0, err
    (board,) = orjson.loads(out)["leaderboards"]
    return board


def test_ratings_equal_a_scipy_maximum_likelihood_fit_of_every_game(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bt = _board(capsys, store, "pairwise-all")["bradley_terry"]
    games = _games()
    expected = _fitted(games)
    battles = Counter(m for a, b, _ in games for m in (a, b))
    assert bt["battles"] == len(games)
    assert {m["model"]: m["battles"] for m in bt["models"]} == dict(battles)
    for entry in bt["models"]:
        # The weak prior (0.01 virtual ties) moves these ratings by far less than 0.1 points.
        assert entry["rating"] == pytest.approx(expected[entry["model"]], abs=0.1)
        low, high = entry["ci_95"]
        assert low < entry["rating"] < high
    ratings = [m["rating"] for m in bt["models"]]
    assert ratings == sorted(ratings, reverse=True)
    assert np.mean(ratings) == pytest.approx(1000.0, abs=1e-6)


def test_the_bootstrap_is_seeded_so_two_shows_print_the_same(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _board(capsys, store, "pairwise-all")
    second = _board(capsys, store, "pairwise-all")
    assert first["bradley_terry"] == second["bradley_terry"]
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--mode", "pairwise-all")
    assert code == 0
    table = out[out.index("Bradley-Terry ratings from") :].splitlines()
    assert f"from {first['bradley_terry']['battles']} games" in table[0]
    for line, entry in zip(table[2:], first["bradley_terry"]["models"], strict=True):
        _, model, rating = line.split()[:3]
        assert (model, float(rating)) == (entry["model"], round(entry["rating"], 1))
    assert [line.split()[0] for line in table[2:]] == ["1", "2", "3"]


def test_fastchat_win_rates_stay_first_and_other_modes_have_no_ratings(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--mode", "pairwise-all")
    assert out.index("win_rate_adjusted") < out.index("Bradley-Terry")
    shown = [line.split()[0] for line in out.splitlines()[2:5]]
    reference = (FASTCHAT_REFERENCE / "show_pairwise_all.txt").read_text()
    assert all(model in reference for model in shown)
    for mode in ("single", "pairwise-baseline"):
        flags = ["--baseline", "fake-alpha"] if mode == "pairwise-baseline" else []
        code, out, _ = mtbench(
            capsys, "show", "--store", str(store), "--mode", mode, "--json", *flags
        )
        assert code == 0
        (board,) = orjson.loads(out)["leaderboards"]
        assert "bradley_terry" not in board
