"""Judging in a run, re-judging with a new judge, and judging the published leaderboard answers."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import model, mtbench, write_config


def judge(fake: FakeServer, name: str = "judge-a", **options: Any) -> dict[str, Any]:
    return {"name": name, "base_url": fake.base_url, **options}


def count(store: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute(sql).fetchall()


def test_run_judges_while_generation_goes_on_and_judges_every_answer(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(latency_median=0.02)
    models = [model(name, fake.base_url, concurrency=8) for name in ("alpha", "beta")]
    config = write_config(tmp_path, models=models, judge=judge(fake))
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out
    arrivals = fake.stats()["arrivals"]
    first_judge = min(t for t, _, kind, _ in arrivals if kind == "judge")
    last_generation = max(t for t, _, kind, _ in arrivals if kind == "generation")
    assert first_judge < last_generation
    judged_during_generation = sum(
        1 for t, _, kind, _ in arrivals if kind == "judge" and t < last_generation
    )
    assert judged_during_generation > 50
    store = tmp_path / "store.sqlite"
    assert count(store, "SELECT COUNT(*) FROM answers") == [(320,)]
    assert count(store, "SELECT COUNT(*) FROM judgments WHERE kind = 'single'") == [(320,)]


def test_rejudging_with_a_second_judge_sends_one_request_per_judgment(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    models = [model(name, fake.base_url) for name in ("alpha", "beta")]
    first = write_config(tmp_path, models=models, judge=judge(fake, "judge-a"), name="a.toml")
    assert mtbench(capsys, "run", "-c", str(first))[0] == 0
    before = fake.stats(arrivals=False)

    second = write_config(tmp_path, models=models, judge=judge(fake, "judge-b"), name="b.toml")
    code, out, _ = mtbench(capsys, "judge", "-c", str(second))
    assert code == 0, out
    after = fake.stats(arrivals=False)
    assert after["by_kind"]["generation"] == before["by_kind"]["generation"]
    assert after["by_kind"]["judge"] - before["by_kind"]["judge"] == 320
    assert after["duplicates"] == 0

    store = tmp_path / "store.sqlite"
    assert count(store, "SELECT judge, COUNT(*) FROM judgments GROUP BY judge") == [
        ("judge-a", 320),
        ("judge-b", 320),
    ]
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    assert [board["judge"]["name"] for board in orjson.loads(out)["leaderboards"]] == [
        "judge-a",
        "judge-b",
    ]

    assert mtbench(capsys, "judge", "-c", str(second))[0] == 0
    assert fake.stats(arrivals=False)["requests"] == after["requests"]


def test_same_judge_label_with_another_model_string_is_another_judge(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    models = [model("alpha", fake.base_url)]
    first = write_config(tmp_path, models=models, judge=judge(fake, "j", model="m1"), name="a.toml")
    second = write_config(
        tmp_path, models=models, judge=judge(fake, "j", model="m2"), name="b.toml"
    )
    assert mtbench(capsys, "run", "-c", str(first))[0] == 0
    assert mtbench(capsys, "judge", "-c", str(second))[0] == 0
    store = tmp_path / "store.sqlite"
    assert count(store, "SELECT judge_model, COUNT(*) FROM judgments GROUP BY judge_model") == [
        ("m1", 160),
        ("m2", 160),
    ]


@pytest.mark.parametrize("mode", ["pairwise-all", "pairwise-baseline"])
def test_pairwise_runs_play_every_match_in_both_orders(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    models = [model(name, fake.base_url) for name in ("alpha", "beta", "gpt-3.5-turbo")]
    config = write_config(tmp_path, models=models, judge=judge(fake, mode=mode))
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out
    matches = 3 if mode == "pairwise-all" else 2
    store = tmp_path / "store.sqlite"
    assert count(store, "SELECT COUNT(*) FROM judgments WHERE kind = 'pair'") == [
        (matches * 160 * 2,)
    ]
    assert count(store, "SELECT game, COUNT(*) FROM judgments GROUP BY game") == [
        (1, matches * 160),
        (2, matches * 160),
    ]
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--mode", mode, "--json")
    assert code == 0
    (board,) = orjson.loads(out)["leaderboards"]
    shown = {entry["model"] for entry in board["models"]}
    assert shown == (
        {"alpha", "beta"} if mode == "pairwise-baseline" else {"alpha", "beta", "gpt-3.5-turbo"}
    )


def test_pairwise_baseline_without_baseline_answers_is_refused_before_sending(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judge=judge(fake, mode="pairwise-baseline"),
    )
    code, _, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 2
    assert "baseline 'gpt-3.5-turbo' has no answers" in err
    assert fake.stats(arrivals=False)["requests"] == 0
    assert not (tmp_path / "store.sqlite").exists()


def test_unparsable_judge_replies_are_stored_as_minus_one_and_counted(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(judge_no_verdict=0.1, judge_one_bracket=0.1, judge_decimal=0.1, seed=5)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], judge=judge(fake))
    assert mtbench(capsys, "run", "-c", str(config))[0] == 0
    store = tmp_path / "store.sqlite"
    statuses = dict(count(store, "SELECT parse_status, COUNT(*) FROM judgments GROUP BY 1"))
    assert statuses["missing"] > 0 and statuses["fallback"] > 0 and statuses["ok"] > 0
    assert count(store, "SELECT COUNT(*) FROM judgments WHERE score = -1") == [
        (statuses["missing"],)
    ]
    assert (
        count(store, "SELECT COUNT(*) FROM judgments WHERE score != CAST(score AS INTEGER)")[0][0]
        > 0
    )
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    assert code == 0
    (board,) = orjson.loads(out)["leaderboards"]
    assert board["models"][0]["missing"] == statuses["missing"]
    assert board["models"][0]["rows"] == 160 - statuses["missing"]


def test_published_leaderboard_answers_are_rejudged_without_generation(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's recipe: import the 31 published answer files, judge them, show the table."""
    store = tmp_path / "published.sqlite"
    published = MTBENCH_DATA / "published_pregenerated"
    code, out, _ = mtbench(
        capsys,
        "import",
        "--store",
        str(store),
        "--fastchat",
        str(published),
        "--data",
        str(MTBENCH_DATA),
    )
    assert code == 0, out
    config = write_config(tmp_path, judge=judge(fake, "my-judge", concurrency=64), store=str(store))
    code, out, _ = mtbench(capsys, "judge", "-c", str(config))
    assert code == 0, out
    stats = fake.stats(arrivals=False)
    assert count(store, "SELECT COUNT(*) FROM judgments") == [(31 * 160,)]
    # Models that gave the same answer get the same judge prompt: it is judged (and paid) once.
    distinct_prompts = count(store, "SELECT COUNT(DISTINCT response_key) FROM judgments")[0][0]
    assert 31 * 160 - 200 < distinct_prompts < 31 * 160
    assert stats["by_kind"] == {"generation": 0, "judge": distinct_prompts}
    assert stats["duplicates"] == 0
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--judge", "my-judge", "--json")
    (board,) = orjson.loads(out)["leaderboards"]
    assert len(board["models"]) == 31
    assert {"gpt-4", "llama-13b", "vicuna-13b-v1.3"} <= {
        entry["model"] for entry in board["models"]
    }


def test_imported_answers_are_used_as_they_are_and_never_regenerated(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store.sqlite"
    published = MTBENCH_DATA / "published_pregenerated" / "mt_bench" / "model_answer"
    answers = tmp_path / "answers" / "model_answer"
    answers.mkdir(parents=True)
    (answers / "gpt-3.5-turbo.jsonl").symlink_to(published / "gpt-3.5-turbo.jsonl")
    assert mtbench(capsys, "import", "--store", str(store), "--fastchat", str(answers))[0] == 0

    models = [model("alpha", fake.base_url), model("gpt-3.5-turbo", fake.base_url)]
    config = write_config(tmp_path, models=models, judge=judge(fake), store=str(store))
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out
    stats = fake.stats(arrivals=False)
    assert stats["by_model"]["alpha"] == 160
    assert "gpt-3.5-turbo" not in stats["by_model"]
    assert stats["by_kind"]["judge"] == 320
    assert count(store, "SELECT source, COUNT(*) FROM answers GROUP BY source") == [
        ("generated", 160),
        ("imported", 160),
    ]
