"""`mtbench plan` counts what a run would send and what is cached, and sends nothing itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config


def plan(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, Any]:
    code, out, err = mtbench(capsys, "plan", "-c", str(config), "--json")
    assert code == 0, err
    return orjson.loads(out)


def endpoints(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Models by name, judges as "judge <name>" (the summary keeps the two roles apart)."""
    judges = {f"judge {name}": e for name, e in summary["judges"].items()}
    return {**summary["models"], **judges}


def split(summary: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    table = {n: (e["jobs"], e["to_send"], e["cached"]) for n, e in endpoints(summary).items()}
    total = summary["total"]
    table["total"] = (total["jobs"], total["to_send"], total["cached"])
    return table


def test_plan_on_a_fresh_store_sends_nothing_and_creates_nothing(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judge={"name": "judge-x", "base_url": fake.base_url},
    )
    assert split(plan(capsys, config)) == {
        "alpha": (160, 160, 0),
        "judge judge-x": (160, 160, 0),
        "total": (320, 320, 0),
    }
    code, out, _ = mtbench(capsys, "plan", "-c", str(config))
    assert code == 0 and "est. cost" in out and "alpha" in out
    assert fake.stats(arrivals=False)["requests"] == 0
    assert not (tmp_path / "store.sqlite").exists()


def test_plan_on_a_half_finished_store_reports_the_split(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # alpha finishes; beta gets about a third of its requests answered with 500s and one attempt.
    fake.configure(fault_500=0.35, faults_only_for=["beta"], seed=3)
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url), model("beta", fake.base_url, max_attempts=1)],
    )
    assert mtbench(capsys, "generate", "-c", str(config))[0] == 1
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        stored_beta = db.execute("SELECT COUNT(*) FROM answers WHERE model = 'beta'").fetchone()[0]
    assert 0 < stored_beta < 160

    before = fake.stats(arrivals=False)["requests"]
    assert split(plan(capsys, config)) == {
        "alpha": (160, 0, 160),
        "beta": (160, 160 - stored_beta, stored_beta),
        "total": (320, 160 - stored_beta, 160 + stored_beta),
    }
    assert fake.stats(arrivals=False)["requests"] == before

    fake.configure(fault_500=0.0)
    assert mtbench(capsys, "generate", "-c", str(config))[0] == 0
    assert fake.stats(arrivals=False)["requests"] - before == 160 - stored_beta


def test_plan_estimates_tokens_and_dollars_then_run_reports_what_was_paid(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = {"price_in": 2.0, "price_out": 8.0}
    judge = {"name": "judge-x", "base_url": fake.base_url, **prices}
    config = write_config(tmp_path, models=[model("alpha", fake.base_url, **prices)], judge=judge)
    cold = endpoints(plan(capsys, config))
    # nothing paid yet: answers are estimated at max_tokens
    assert cold["alpha"]["completion_tokens"] == 160 * 1024
    assert cold["judge judge-x"]["completion_tokens"] == 160 * 2048
    assert cold["alpha"]["cost"] == pytest.approx(
        (cold["alpha"]["prompt_tokens"] * 2.0 + 160 * 1024 * 8.0) / 1e6
    )
    # judge prompts contain the (estimated) answers, so they outweigh the questions
    assert cold["judge judge-x"]["prompt_tokens"] > cold["alpha"]["prompt_tokens"]

    code, out, _ = mtbench(capsys, "run", "-c", str(config), "--json")
    assert code == 0
    paid = orjson.loads(out)
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        tokens_in, tokens_out, dollars = db.execute(
            "SELECT SUM(prompt_tokens), SUM(completion_tokens), SUM(cost) FROM responses"
        ).fetchone()
    assert paid["total"]["prompt_tokens"] == tokens_in
    assert paid["total"]["completion_tokens"] == tokens_out
    assert paid["total"]["cost"] == pytest.approx(dollars)
    assert dollars == pytest.approx((tokens_in * 2.0 + tokens_out * 8.0) / 1e6)

    # a model added later is estimated from the answers already paid for under its label
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url, max_tokens=2000, **prices)],
        judge=judge,
    )
    warm = plan(capsys, config)["models"]["alpha"]
    assert warm["to_send"] == 160
    assert warm["completion_tokens"] < 160 * 200  # the fake answers ~20-120 words, not 2000


def test_show_reports_what_each_model_and_judge_cost(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    judge = {"name": "judge-x", "base_url": fake.base_url, "price_in": 10.0, "price_out": 30.0}
    models = [
        model("alpha", fake.base_url, price_in=1.0, price_out=2.0),
        model("beta", fake.base_url),
    ]
    config = write_config(tmp_path, models=models, judge=judge)
    assert mtbench(capsys, "run", "-c", str(config))[0] == 0
    store = tmp_path / "store.sqlite"
    with sqlite3.connect(store) as db:
        (alpha,) = db.execute(
            "SELECT SUM(r.cost) FROM answers a JOIN responses r ON r.key = a.response_key "
            "WHERE a.model = 'alpha'"
        ).fetchone()
        (judged,) = db.execute("SELECT SUM(cost) FROM responses WHERE label = 'judge-x'").fetchone()
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    (board,) = orjson.loads(out)["leaderboards"]
    assert board["judge"]["cost"] == pytest.approx(judged)
    costs = {entry["model"]: entry["answer_cost"] for entry in board["models"]}
    assert costs == {"alpha": pytest.approx(alpha), "beta": None}  # beta has no price
    code, out, _ = mtbench(capsys, "show", "--store", str(store))
    assert code == 0
    assert f"cost ${judged:,.2f}" in out and "answer cost" in out
