"""`show` and `report` show the mode and baseline the judgments were played in, refuse the rest."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson
import pytest

from engine.report.html import write_report
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

QUESTIONS = [81, 82, 101]


def _baseline_run(directory: Path, fake: FakeServer, contestants: list[str]) -> Path:
    models = [model(name, fake.base_url) for name in [*contestants, "gpt-3.5-turbo"]]
    judge = {"name": "judge-b", "base_url": fake.base_url, "mode": "pairwise-baseline"}
    config = write_config(directory, models=models, judge=judge, questions=QUESTIONS)
    from engine.cli.main import main

    assert main(["run", "-c", str(config), "--quiet"]) == 0
    return directory / "store.sqlite"


@pytest.fixture
def baseline_store(tmp_path: Path, fake: FakeServer) -> Path:
    return _baseline_run(tmp_path, fake, ["alpha", "beta"])


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_show_defaults_to_the_baseline_mode_and_never_ranks_the_baseline(
    baseline_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = mtbench(capsys, "show", "--store", str(baseline_store), "--json")
    assert code == 0
    (board,) = orjson.loads(out)["leaderboards"]
    assert (board["mode"], board["baseline"]) == ("pairwise-baseline", "gpt-3.5-turbo")
    assert sorted(entry["model"] for entry in board["models"]) == ["alpha", "beta"]
    for entry in board["models"]:
        assert entry["win"] + entry["loss"] + entry["tie"] + entry["errors"] == 2 * len(QUESTIONS)
    code, out, _ = mtbench(capsys, "show", "--store", str(baseline_store))
    assert code == 0
    assert "mode pairwise-baseline, baseline gpt-3.5-turbo" in out
    assert not any(line.startswith("gpt-3.5-turbo") for line in out.splitlines())


@pytest.mark.parametrize(
    ("flags", "asked"),
    [
        (["--baseline", "nope"], "no baseline 'nope' leaderboard"),
        (["--mode", "pairwise-all"], "no mode pairwise-all leaderboard"),
        (["--mode", "single"], "no mode single leaderboard"),
        (["--mode", "pairwise-baseline", "--baseline", "alpha"], "baseline 'alpha'"),
    ],
)
def test_show_refuses_a_mode_or_baseline_the_store_does_not_hold_and_says_what_it_holds(
    baseline_store: Path, capsys: pytest.CaptureFixture[str], flags: list[str], asked: str
) -> None:
    code, out, err = mtbench(capsys, "show", "--store", str(baseline_store), *flags)
    assert code == 2
    assert out == ""
    line = _one_error_line(err)
    assert str(baseline_store) in line and asked in line
    assert "judge 'judge-b' has pairwise-baseline (baseline gpt-3.5-turbo)" in line


def test_show_and_report_refuse_an_unknown_judge_listing_the_judges(
    baseline_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = mtbench(capsys, "show", "--store", str(baseline_store), "--judge", "nope")
    assert code == 2
    assert "no judgments by judge 'nope'" in _one_error_line(err)
    assert "judges in the store: 'judge-b'" in err
    out = tmp_path / "report.html"
    argv = ["report", "--store", str(baseline_store), "-o", str(out), "--judge", "nope"]
    code, _, err = mtbench(capsys, *argv)
    assert code == 2
    assert "judges in the store: 'judge-b'" in _one_error_line(err)
    assert not out.exists()


def test_a_baseline_without_pairwise_mode_is_refused(
    baseline_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["show", "--store", str(baseline_store), "--mode", "single", "--baseline", "alpha"]
    code, _, err = mtbench(capsys, *argv)
    assert code == 2
    assert "--baseline goes with --mode pairwise-baseline" in _one_error_line(err)


def test_the_report_shows_the_baseline_table_without_the_baseline(
    baseline_store: Path, tmp_path: Path
) -> None:
    page = asyncio.run(write_report(baseline_store, tmp_path / "r.html")).read_text()
    assert "Leaderboard (pairwise, against gpt-3.5-turbo)" in page
    section = page[page.index("Leaderboard (pairwise") : page.index('id="reliability"')]
    assert sorted(re.findall(r'<tr data-model="([^"]+)"', section)) == ["alpha", "beta"]


def test_one_contestant_against_the_baseline_is_shown_as_the_run_judged_it(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _baseline_run(tmp_path, fake, ["alpha"])
    capsys.readouterr()
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    assert code == 0
    (board,) = orjson.loads(out)["leaderboards"]
    assert (board["mode"], board["baseline"]) == ("pairwise-baseline", "gpt-3.5-turbo")
    assert [entry["model"] for entry in board["models"]] == ["alpha"]
    # The matches are a pair of two models: the all-pairs table exists too, when asked for.
    code, out, _ = mtbench(
        capsys, "show", "--store", str(store), "--mode", "pairwise-all", "--json"
    )
    assert code == 0
    (board,) = orjson.loads(out)["leaderboards"]
    assert sorted(entry["model"] for entry in board["models"]) == ["alpha", "gpt-3.5-turbo"]


def test_a_judge_without_the_mode_asked_for_is_named_not_dropped(
    baseline_store: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    models = [model(name, fake.base_url) for name in ["alpha", "beta", "gpt-3.5-turbo"]]
    judge = {"name": "judge-s", "base_url": fake.base_url}
    config = write_config(
        baseline_store.parent, models=models, judge=judge, questions=QUESTIONS, name="s.toml"
    )
    assert mtbench(capsys, "judge", "-c", str(config), "--quiet")[0] == 0
    code, out, _ = mtbench(capsys, "show", "--store", str(baseline_store), "--mode", "single")
    assert code == 0
    assert "Judge judge-s" in out and "Judge judge-b" not in out
    assert "not shown: no mode single leaderboard; judge 'judge-b' has pairwise-baseline" in out
    code, out, _ = mtbench(capsys, "show", "--store", str(baseline_store), "--json")
    boards = orjson.loads(out)["leaderboards"]
    assert [(b["judge"]["name"], b["mode"]) for b in boards] == [
        ("judge-b", "pairwise-baseline"),
        ("judge-s", "single"),
    ]


def test_an_unknown_bench_names_the_benches_that_have_judgments(
    baseline_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["show", "--store", str(baseline_store), "--bench", "vicuna_bench"]
    code, _, err = mtbench(capsys, *argv)
    assert code == 2
    assert "no judgments for bench vicuna_bench (judgments exist for bench mt_bench)" in err


def test_export_of_an_unknown_judge_names_the_judges(
    baseline_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["export", "--store", str(baseline_store), "--fastchat", str(tmp_path / "out")]
    code, _, err = mtbench(capsys, *argv, "--judge", "nope")
    assert code == 2
    assert "judges in the store: 'judge-b'" in _one_error_line(err)
    assert not (tmp_path / "out").exists()


def test_all_pairs_judgments_give_a_baseline_table_for_any_of_their_models(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    models = [model(name, fake.base_url) for name in ["alpha", "beta", "gamma"]]
    judge = {"name": "judge-p", "base_url": fake.base_url, "mode": "pairwise-all"}
    config = write_config(tmp_path, models=models, judge=judge, questions=QUESTIONS)
    assert mtbench(capsys, "run", "-c", str(config), "--quiet")[0] == 0
    store = str(tmp_path / "store.sqlite")
    code, out, _ = mtbench(capsys, "show", "--store", store, "--json")
    (board,) = orjson.loads(out)["leaderboards"]
    assert (board["mode"], len(board["models"])) == ("pairwise-all", 3)
    argv = ["show", "--store", store, "--mode", "pairwise-baseline"]
    code, _, err = mtbench(capsys, *argv)
    assert code == 2
    assert "no mode pairwise-baseline without --baseline leaderboard" in _one_error_line(err)
    assert "pairwise-baseline (baseline alpha, beta, gamma); pairwise-all" in err
    code, out, _ = mtbench(capsys, *argv, "--baseline", "beta", "--json")
    assert code == 0
    (board,) = orjson.loads(out)["leaderboards"]
    assert board["baseline"] == "beta"
    assert sorted(entry["model"] for entry in board["models"]) == ["alpha", "gamma"]
