"""`mtbench show` with judge panels: a store with three judge labels (imported FastChat judgment
files), the panel a run recorded or one `--panel` names, its board in text and `--json` with the
numbers worked by hand, items left out counted per model, and what cannot be shown refused or
named."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.config_panel import PanelConfig
from engine.interop import import_fastchat, record_questions
from engine.store.panels import record_panel
from engine.store.store import open_store
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import mtbench

# judge -> model -> (question, turn) -> score; -1 is FastChat's "no parsable rating".
RATINGS = {
    "a": {
        "x": {(81, 1): 8, (81, 2): 6, (82, 1): 4, (82, 2): 2},
        "y": {(81, 1): 5, (81, 2): 5, (82, 1): 9, (82, 2): 7},
    },
    "b": {
        "x": {(81, 1): 6, (81, 2): 6, (82, 1): 5, (82, 2): -1},
        "y": {(81, 1): 7, (81, 2): 4, (82, 1): 9, (82, 2): 8},
    },
    "c": {
        "x": {(81, 1): 7, (81, 2): 9, (82, 1): 3},  # never judged x's q82 turn 2
        "y": {(81, 1): 3, (81, 2): 6, (82, 1): 6, (82, 2): 9},
    },
}
# judge -> (model_1, model_2, question) -> (game 1, game 2)
VERDICTS = {
    "a": {("x", "y", 81): ("model_1", "model_1"), ("x", "y", 82): ("model_2", "model_2")},
    "b": {("x", "y", 81): ("model_1", "tie"), ("x", "y", 82): ("model_1", "model_2")},
    "c": {("x", "y", 81): ("model_2", "model_1"), ("x", "y", 82): ("error", "model_2")},
}


def _single_line(judge: str, model: str, qid: int, turn: int, score: int) -> dict[str, Any]:
    text = "no rating here" if score == -1 else f"Rating: [[{score}]]"
    prompt = "single-v1" if turn == 1 else "single-v1-multi-turn"
    return {"question_id": qid, "model": model, "judge": [judge, prompt], "user_prompt": "q",
            "judgment": text, "score": score, "turn": turn, "tstamp": 1.0}  # fmt: skip


def _pair_line(judge: str, match: tuple[str, str, int], games: tuple[str, str]) -> dict[str, Any]:
    model_1, model_2, qid = match
    return {"question_id": qid, "model_1": model_1, "model_2": model_2, "g1_winner": games[0],
            "g2_winner": games[1], "judge": [judge, "pair-v2"], "g1_user_prompt": "q",
            "g1_judgment": "[[A]]", "g2_user_prompt": "q", "g2_judgment": "[[B]]", "turn": 1,
            "tstamp": 1.0}  # fmt: skip


def _write(path: Path, lines: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))


def build_store(root: Path, *, pairs: bool = False) -> Path:
    """A store judged by 'a', 'b' and 'c' (single grading, or pairwise with `pairs`)."""
    folder = root / "model_judgment"
    folder.mkdir(parents=True)
    for judge in RATINGS:
        if pairs:
            lines = [_pair_line(judge, m, g) for m, g in VERDICTS[judge].items()]
            _write(folder / f"{judge}_pair.jsonl", lines)
            continue
        lines = [
            _single_line(judge, model, qid, turn, score)
            for model, scores in RATINGS[judge].items()
            for (qid, turn), score in scores.items()
        ]
        _write(folder / f"{judge}_single.jsonl", lines)
    store = root / "store.sqlite"

    async def build() -> None:
        await import_fastchat(store, root)
        await record_questions(store, MTBENCH_DATA, "mt_bench")

    asyncio.run(build())
    return store


def _record(store: Path, panel: PanelConfig) -> None:
    async def record() -> None:
        opened = await open_store(store, write=True)
        try:
            await record_panel(opened, "mt_bench", panel, None)
        finally:
            await opened.close()

    asyncio.run(record())


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return build_store(tmp_path)


def _show_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = mtbench(capsys, "show", "--json", *argv)
    assert code == 0, err
    return orjson.loads(out)


def test_a_recorded_panel_has_its_own_board_with_the_mean_of_the_items_all_judges_rated(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(store, PanelConfig(("a", "b", "c"), "mean", "jury"))
    shown = _show_json(capsys, "--store", str(store))
    assert [board["judge"]["name"] for board in shown["leaderboards"]] == ["a", "b", "c"]
    (panel,) = shown["panels"]
    assert (panel["name"], panel["aggregate"], panel["mode"], panel["recorded"]) == (
        "jury", "mean", "single", True,
    )  # fmt: skip
    assert [j["name"] for j in panel["judges"]] == ["a", "b", "c"]
    models = {entry["model"]: entry for entry in panel["models"]}
    # x: q81 t1 (8+6+7)/3 = 7, t2 (6+6+9)/3 = 7, q82 t1 (4+5+3)/3 = 4; q82 t2 left out (b gave
    # no rating, c never judged it). y: 5, 5, 8, 8.
    assert models["x"]["turn_1"] == pytest.approx(5.5)
    assert models["x"]["turn_2"] == pytest.approx(7.0)
    assert models["x"]["score"] == pytest.approx(6.0)
    assert (models["x"]["items"], models["x"]["left_out"]) == (3, 1)
    assert models["y"]["score"] == pytest.approx(6.5)
    assert (models["y"]["items"], models["y"]["left_out"]) == (4, 0)
    assert [entry["model"] for entry in panel["models"]] == ["y", "x"]
    assert panel["left_out"] == {"x": 1}
    low, high = models["y"]["ci_95"]
    assert 5.0 <= low <= 6.5 <= high <= 8.0
    # Each judge's own board is FastChat's, unchanged: judge a's x is the mean of 8, 6, 4, 2.
    board_a = shown["leaderboards"][0]
    assert {m["model"]: m["score"] for m in board_a["models"]}["x"] == pytest.approx(5.0)


def test_the_text_board_names_the_panel_its_judges_and_what_was_left_out(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(store, PanelConfig(("a", "b", "c"), "median", "jury"))
    code, out, _ = mtbench(capsys, "show", "--store", str(store))
    assert code == 0
    panel = out[out.index("Panel jury") :]
    title = panel.splitlines()[0]
    assert "judges a (model a, api import), b (model b, api import), c (model c, api import)" in (
        title
    )
    assert "median of the judges' ratings" in title and "mode single" in title
    header, first, second = panel.splitlines()[1:4]
    assert header.split() == ["model", "turn", "1", "turn", "2", "overall", "95%", "CI", "items",
                              "left", "out"]  # fmt: skip
    # median: y 5, 5, 9, 8 -> 6.75; x 7, 6, 4 -> 5.666667
    assert first.split()[:4] == ["y", "7.000000", "6.500000", "6.750000"]
    assert second.split()[0] == "x" and second.split()[3] == "5.666667"
    assert second.split()[-2:] == ["3", "1"]
    assert "left out: items not every judge of the panel rated" in panel


def test_show_panel_pools_stored_judges_ad_hoc_and_median_on_request(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = _show_json(capsys, "--store", str(store), "--panel", "a,b", "--aggregate", "median")
    (panel,) = shown["panels"]
    assert (panel["recorded"], panel["aggregate"]) == (False, "median")
    models = {entry["model"]: entry for entry in panel["models"]}
    # a and b: x q82 t2 left out (b: -1); x = median of pairs: 7, 6, 4.5 -> 5.833333
    assert models["x"]["score"] == pytest.approx((7 + 6 + 4.5) / 3)
    assert (models["x"]["items"], models["x"]["left_out"]) == (3, 1)
    assert models["y"]["score"] == pytest.approx((6 + 4.5 + 9 + 7.5) / 4)


def test_show_panel_refuses_an_unknown_label_as_judge_does(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, judge_err = mtbench(capsys, "show", "--store", str(store), "--judge", "zed")
    code, out, err = mtbench(capsys, "show", "--store", str(store), "--panel", "a,zed")
    assert code == 2 and out == ""
    assert err == judge_err
    assert "no judgments by judge 'zed'" in err and "judges in the store: 'a', 'b', 'c'" in err


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--panel", "a"], "--panel 'a': a panel needs at least 2 judges"),
        (["--panel", "a,a"], "judge 'a' is named twice"),
        (["--aggregate", "median"], "--aggregate goes with --panel"),
        (["--panel", "a,b", "--sweep"], "drop --panel"),
        (["--panel", ","], "--panel ',': an empty judge label"),
        (["--panel", "a,b,"], "--panel 'a,b,': an empty judge label"),
        (["--agreement", "--panel", "a,b"], "drop --panel/--aggregate"),
        (["--agreement", "--aggregate", "median"], "drop --panel/--aggregate"),
    ],
)
def test_a_bad_panel_request_is_one_line_and_exit_2(
    store: Path, capsys: pytest.CaptureFixture[str], flags: list[str], problem: str
) -> None:
    code, out, err = mtbench(capsys, "show", "--store", str(store), *flags)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and problem in err


def test_a_recorded_panel_whose_judge_has_not_judged_yet_is_named_not_dropped(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(store, PanelConfig(("a", "later"), "mean", "jury"))
    shown = _show_json(capsys, "--store", str(store))
    assert shown["panels"] == []
    assert (
        "panel 'jury' not shown: judge 'later' has no judgments for bench mt_bench yet"
        in (shown["not_shown"])
    )
    code, out, _ = mtbench(capsys, "show", "--store", str(store))
    assert code == 0 and "panel 'jury' not shown" in out
    # --judge narrows the output to one judge: no panel, and no note about one.
    shown = _show_json(capsys, "--store", str(store), "--judge", "a")
    assert (shown["panels"], shown["not_shown"]) == ([], [])


def test_a_later_run_replaces_the_panel_of_the_same_name(store: Path) -> None:
    _record(store, PanelConfig(("a", "b"), "mean", "jury"))
    _record(store, PanelConfig(("a", "b", "c"), "median", "jury"))
    with sqlite3.connect(store) as db:
        found = db.execute("SELECT bench, name, judges, aggregate FROM panels").fetchall()
    assert found == [("mt_bench", "jury", '["a","b","c"]', "median")]


def test_pairwise_panel_majority_per_game_then_fastchats_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = build_store(tmp_path, pairs=True)
    _record(store, PanelConfig(("a", "b", "c"), "mean", "jury"))
    (panel,) = _show_json(capsys, "--store", str(store))["panels"]
    assert (panel["mode"], panel["baseline"]) == ("pairwise-all", None)
    # q81: game 1 x, x, y -> x; game 2 x, tie, x -> x: x wins. q82: c gave no verdict in game 1:
    # the match is left out for both models.
    models = {entry["model"]: entry for entry in panel["models"]}
    assert (models["x"]["win"], models["x"]["loss"], models["x"]["tie"]) == (1, 0, 0)
    assert (models["y"]["win"], models["y"]["loss"], models["y"]["left_out"]) == (0, 1, 1)
    assert models["x"]["win_rate_adjusted"] == 1.0
    code, out, _ = mtbench(capsys, "show", "--store", str(store))
    assert code == 0 and "majority verdict per game (no majority: a tie)" in out
    assert "left out: matches not every judge of the panel gave a verdict in both games" in out


def test_the_python_api_gives_the_panel_board_show_prints(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import engine

    board = engine.scores(store, panel=["a", "b"], aggregate="median")
    shown = _show_json(capsys, "--store", str(store), "--panel", "a,b", "--aggregate", "median")
    assert board.as_dict() == shown


@pytest.mark.parametrize("panel", [[1, 2], ["a", None], b"a,b", 5])
def test_the_python_api_refuses_panel_labels_that_are_not_strings_with_an_input_error(
    store: Path, panel: object
) -> None:
    import engine

    with pytest.raises(engine.InputError, match=r"panel = .*: expected judge labels"):
        engine.scores(store, panel=panel)  # type: ignore[arg-type]


def test_a_panel_of_judges_with_no_leaderboard_in_common_is_refused_or_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = build_store(tmp_path / "single")
    pairs = tmp_path / "pairs" / "model_judgment"
    pairs.mkdir(parents=True)
    _write(pairs / "p_pair.jsonl", [_pair_line("p", m, g) for m, g in VERDICTS["a"].items()])
    asyncio.run(import_fastchat(store, pairs.parent))
    code, out, err = mtbench(capsys, "show", "--store", str(store), "--panel", "a,p")
    assert (code, out) == (2, "")
    assert "no leaderboard for --panel: no leaderboard in a mode they all share; " in err
    assert "judge 'p' has pairwise" in err
    _record(store, PanelConfig(("a", "p"), "mean", "mixed"))
    shown = _show_json(capsys, "--store", str(store))
    assert shown["panels"] == []
    assert any(note.startswith("panel 'mixed' not shown: ") for note in shown["not_shown"])


def test_a_judge_with_several_samples_enters_the_panel_with_its_own_median(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = store.parent / "samples" / "model_judgment"
    extra.mkdir(parents=True)
    lines = [{**_single_line("a", "x", 81, 1, score), "sample": sample}
             for sample, score in ((1, 10), (2, 3))]  # fmt: skip
    _write(extra / "a_single.jsonl", lines)
    asyncio.run(import_fastchat(store, extra.parent))
    (panel,) = _show_json(capsys, "--store", str(store), "--panel", "a,b,c")["panels"]
    x = next(entry for entry in panel["models"] if entry["model"] == "x")
    # a's x q81 turn 1: median of its samples 8, 10, 3 = 8 -> the panel's (8+6+7)/3 = 7 as before;
    # turn 1 = mean(7, 4) = 5.5. Had the samples been pooled as judges, the mean would move.
    assert x["turn_1"] == pytest.approx(5.5)
    lines = [{**_single_line("a", "x", 81, 1, 10), "sample": 3}]
    _write(extra / "a_single.jsonl", lines)
    asyncio.run(import_fastchat(store, extra.parent))
    (panel,) = _show_json(capsys, "--store", str(store), "--panel", "a,b,c")["panels"]
    x = next(entry for entry in panel["models"] if entry["model"] == "x")
    # a's samples 8, 10, 3, 10: median 9 -> (9+6+7)/3 = 22/3; turn 1 = (22/3 + 4) / 2
    assert x["turn_1"] == pytest.approx((22 / 3 + 4) / 2)
