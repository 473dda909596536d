"""`mtbench show --sweep` (text, --json, --csv): checkpoints in step order, the best marked,
distinguishability by the paired bootstrap; sweeps from labels or from a run config."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest

from engine.config import load_config
from engine.errors import ConfigError
from tests.support.runconfig import mtbench, write_config
from tests.support.sweepstore import QUESTIONS, flat_ratings, sweep_store

EARLY = {(q, t): 3.0 + (q % 2) for q in QUESTIONS for t in (1, 2)}  # far below the best
NEAR = {**flat_ratings(7.0), (81, 2): 6.0}  # one rating from the best: noise
BEST = flat_ratings(7.0)
RATINGS = {
    "step-1000": BEST,
    "step-200": EARLY,
    "step-500": NEAR,
    "gpt-3.5-turbo": flat_ratings(9.0),  # not a checkpoint: alone under its label pattern
}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return sweep_store(tmp_path, RATINGS)


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = mtbench(capsys, "show", *argv, "--sweep", "--json")
    assert code == 0, err
    return orjson.loads(out)


def test_json_lists_checkpoints_in_step_order_and_marks_the_best(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (sweep,) = _json(capsys, "--store", str(store))["sweeps"]
    assert sweep["sweep"] == "step-*"
    assert [c["step"] for c in sweep["checkpoints"]] == [200, 500, 1000]
    assert sweep["best"] == "step-1000"
    early, near, best = sweep["checkpoints"]
    assert best["best"] and best["versus_best"] is None
    assert best["overall"]["score"] == 7.0 and best["overall"]["rows"] == 8
    assert early["overall"]["score"] == pytest.approx(3.75)  # 4, 3, 4, 4 per question
    assert early["turn_1"]["score"] == pytest.approx(3.75)
    assert early["categories"]["math"]["score"] == pytest.approx(4.0)  # 111 is odd: 3 + 1
    assert early["versus_best"]["difference"] == pytest.approx(-3.25)
    assert early["versus_best"]["distinguishable"] is True
    assert near["versus_best"]["difference"] == pytest.approx(-1 / 8)
    assert near["versus_best"]["distinguishable"] is False
    assert near["versus_best"]["questions"] == len(QUESTIONS)
    assert sorted(sweep["categories"]) == ["coding", "math", "writing"]


def test_the_overall_interval_is_the_one_plain_show_prints(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (sweep,) = _json(capsys, "--store", str(store))["sweeps"]
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    assert code == 0
    plain = {m["model"]: m["ci_95"] for m in orjson.loads(out)["leaderboards"][0]["models"]}
    for checkpoint in sweep["checkpoints"]:
        assert checkpoint["overall"]["ci_95"] == plain[checkpoint["label"]]


def test_text_shows_the_best_and_what_is_noise(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--sweep")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Sweep step-* · judge gpt-4")
    rows = [line.split() for line in lines[2:5]]
    assert [row[0] for row in rows] == ["200", "500", "1000"]
    assert rows[0][-2] == "yes" and "no (noise)" in lines[3] and "step-1000 *" in lines[4]
    assert "gpt-3.5-turbo" not in out
    assert "Per category" in out


def test_csv_has_one_row_per_checkpoint_with_interval_bounds(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--sweep", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["checkpoint"] for r in rows] == ["step-200", "step-500", "step-1000"]
    assert [r["best"] for r in rows] == ["no", "no", "yes"]
    assert float(rows[0]["overall"]) == pytest.approx(3.75)
    assert float(rows[0]["overall_ci_low"]) <= 3.75 <= float(rows[0]["overall_ci_high"])
    assert rows[0]["distinguishable_from_best"] == "yes"
    assert rows[1]["distinguishable_from_best"] == "no"
    assert rows[2]["vs_best"] == "" and float(rows[2]["writing"]) == 7.0


def test_a_config_names_its_sweep_and_keeps_checkpoints_deleted_since(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ckpts").mkdir()  # empty: every checkpoint was deleted after scoring
    config = write_config(
        tmp_path,
        models=[
            {"name": "run7", "serve": "vllm serve {path} --port {port}", "checkpoints": "x/s-*"},
            {"serve": "vllm serve {path} --port {port}", "checkpoints": "ckpts/step-*"},
            {"name": "gpt-3.5-turbo", "base_url": "http://127.0.0.1:9/v1", "step": 5},
            {"name": "step-200", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "UNSET_KEY"},
        ],
    )
    data = _json(capsys, "--store", str(store), "-c", str(config))
    assert [s["sweep"] for s in data["sweeps"]] == ["ckpts/step-*", "run"]
    assert [c["label"] for c in data["sweeps"][0]["checkpoints"]] == [
        "step-200",
        "step-500",
        "step-1000",
    ]
    (explicit,) = data["sweeps"][1]["checkpoints"]
    assert (explicit["label"], explicit["step"], explicit["best"]) == ("gpt-3.5-turbo", 5, True)
    assert data["notes"] == ["sweep 'run7': no stored model matches it yet"]


def test_show_refuses_sweep_flags_and_storeless_sweeps_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = sweep_store(tmp_path, {"alpha": BEST, "beta": NEAR})
    cases = [
        (["--csv"], "--csv goes with --sweep"),
        (["--sweep", "--csv", "--json"], "not both"),
        (["--sweep", "--mode", "single"], "drop --mode"),
        (["--sweep"], "no sweep: no two models whose labels differ only in their step"),
        (["--sweep", "-c", str(tmp_path / "none.toml")], "config file not found"),
    ]
    for flags, words in cases:
        code, out, err = mtbench(capsys, "show", "--store", str(store), *flags)
        assert (code, out) == (2, ""), flags
        assert len(err.strip().splitlines()) == 1 and words in err, err


def test_a_bad_step_is_refused_by_show_and_run_alike(tmp_path: Path) -> None:
    from engine.report.sweep_members import configured_sweeps

    bad = write_config(tmp_path, models=[{"name": "m", "base_url": "http://h/v1", "step": -1}])
    with pytest.raises(ConfigError, match=r"\[\[model\]\] #1 key 'step' = -1"):
        configured_sweeps(bad)
    with pytest.raises(ConfigError, match=r"key 'step' = -1"):
        load_config(bad)
    (tmp_path / "ck" / "step-1").mkdir(parents=True)
    both = write_config(
        tmp_path,
        models=[{"serve": "s {path} {port}", "checkpoints": "ck/step-*", "step": 3}],
        name="both.toml",
    )
    with pytest.raises(ConfigError, match="give step only to a model without checkpoints"):
        load_config(both)
    good = write_config(
        tmp_path, models=[{"name": "m", "base_url": "http://h/v1", "step": 7}], name="g.toml"
    )
    assert load_config(good).models[0].step == 7


def test_csv_names_a_spreadsheet_would_run_as_formulas_start_with_a_quote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = {"=cmd|'calc'!A0-step-100": BEST, "=cmd|'calc'!A0-step-200": EARLY}
    store = sweep_store(tmp_path, {**evil, "@SUM(1)-5": BEST, "@SUM(1)-6": NEAR})
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--sweep", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["sweep"] for r in rows} == {"'=cmd|'calc'!A0-step-*", "'@SUM(1)-*"}
    assert "'=cmd|'calc'!A0-step-100" in [r["checkpoint"] for r in rows]
    assert all(not cell.startswith(("=", "@")) for r in rows for cell in r.values())
    assert float(next(r for r in rows if r["vs_best"])["vs_best"]) < 0  # numbers stay numbers
    (json_sweep, _) = _json(capsys, "--store", str(store))["sweeps"]
    assert json_sweep["sweep"] == "=cmd|'calc'!A0-step-*"  # JSON carries names as they are


def test_a_configured_sweeps_name_is_taken_literally_not_as_a_glob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = sweep_store(
        tmp_path, {"run[7]-step-100": BEST, "run[7]-step-200": EARLY, "run7-step-300": NEAR}
    )
    config = write_config(
        tmp_path,
        models=[
            {
                "name": "run[7]",
                "serve": "vllm serve {path} --port {port}",
                "checkpoints": "c/step-*",
            }
        ],
    )
    (sweep,) = _json(capsys, "--store", str(store), "-c", str(config))["sweeps"]
    assert sweep["sweep"] == "run[7]"
    assert [c["label"] for c in sweep["checkpoints"]] == ["run[7]-step-100", "run[7]-step-200"]


def test_the_per_category_table_names_checkpoints_that_share_a_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = sweep_store(tmp_path, {"step-100": BEST, "step-0100": EARLY, "step-200": NEAR})
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--sweep")
    assert code == 0
    per_category = out.split("Per category")[1].splitlines()
    assert per_category[1].split()[:2] == ["step", "checkpoint"]
    assert [line.split()[:2] for line in per_category[2:4]] == [
        ["100", "step-0100"],
        ["100", "step-100"],
    ]
