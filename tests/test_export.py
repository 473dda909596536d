"""Exported FastChat files, aggregated FastChat's way, give the numbers `mtbench show` prints."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config


def read_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def fastchat_single(rows: list[dict]) -> dict[str, float]:
    """show_result's "Average" table: mean over every row whose score is not -1."""
    scores: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row["score"] != -1:
            scores[row["model"]].append(row["score"])
    return {m: sum(s) / len(s) for m, s in scores.items()}


def fastchat_pairwise(rows: list[dict]) -> dict[str, float]:
    """show_result's win_rate_adjusted in pairwise-all mode."""
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        if "error" in (row["g1_winner"], row["g2_winner"]):
            continue
        if row["g1_winner"] == "tie" or row["g1_winner"] != row["g2_winner"]:
            tally[row["model_1"]][2] += 1
            tally[row["model_2"]][2] += 1
        else:
            winner = row["model_1"] if row["g1_winner"] == "model_1" else row["model_2"]
            loser = row["model_2"] if winner == row["model_1"] else row["model_1"]
            tally[winner][0] += 1
            tally[loser][1] += 1
    return {m: (win + 0.5 * tie) / (win + loss + tie) for m, (win, loss, tie) in tally.items()}


@pytest.mark.parametrize("mode", ["single", "pairwise-all"])
def test_export_after_a_run_aggregates_to_shows_numbers(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    fake.configure(judge_no_verdict=0.1, judge_decimal=0.2, judge_one_bracket=0.1, seed=11)
    models = [model(name, fake.base_url) for name in ("alpha", "beta", "gamma")]
    judge = {"name": "judge-a", "base_url": fake.base_url, "mode": mode}
    config = write_config(tmp_path, models=models, judge=judge)
    assert mtbench(capsys, "run", "-c", str(config))[0] == 0
    store = str(tmp_path / "store.sqlite")
    out_dir = tmp_path / "fastchat"
    assert mtbench(capsys, "export", "--store", store, "--fastchat", str(out_dir))[0] == 0

    answers = read_jsonl(out_dir / "model_answer" / "alpha.jsonl")
    assert len(answers) == 80 and all(len(a["choices"][0]["turns"]) == 2 for a in answers)

    code, out, _ = mtbench(capsys, "show", "--store", store, "--mode", mode, "--json")
    assert code == 0
    (board,) = orjson.loads(out)["leaderboards"]
    if mode == "single":
        rows = read_jsonl(out_dir / "model_judgment" / "judge-a_single.jsonl")
        assert len(rows) == 480
        expected = fastchat_single(rows)
        shown = {entry["model"]: entry["score"] for entry in board["models"]}
    else:
        rows = read_jsonl(out_dir / "model_judgment" / "judge-a_pair.jsonl")
        assert len(rows) == 3 * 160
        expected = fastchat_pairwise(rows)
        shown = {entry["model"]: entry["win_rate_adjusted"] for entry in board["models"]}
    assert shown == pytest.approx(expected, abs=1e-12)
