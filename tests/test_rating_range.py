"""Ratings off the 1-10 scale are averaged as FastChat averages them, but flagged everywhere."""

from __future__ import annotations

import asyncio
import math
import re
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.bench.judge import parse_rating
from engine.interop import export_fastchat, import_fastchat
from engine.report.html import write_report
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config
from tests.support.scripted import json_reply, openai_completion
from tests.test_export import fastchat_single, read_jsonl

HUGE = "99999999999999999999999"
QUESTIONS = [81, 82]  # 81 asks about Hawaii, 82 about a supervisor


@pytest.mark.parametrize(
    ("reply", "score", "status"),
    [
        ("Rating: [[11]]", 11, "out_of_range"),
        ("Rating: [[10.5]]", 10.5, "out_of_range"),
        ("Rating: [[0]]", 0, "out_of_range"),
        (f"Rating: [[{HUGE}]]", int(HUGE), "out_of_range"),
        ("Rating: [[" + "9" * 400 + "]]", math.inf, "out_of_range"),
        ("Rating: [[" + "9" * 5000 + "]]", -1, "invalid"),
        ("Rating: [11]", 11, "out_of_range"),
        ("Rating: [[10]]", 10, "ok"),
        ("Rating: [[1]]", 1, "ok"),
        ("Rating: [[7.5]]", 7.5, "ok"),
        ("no verdict", -1, "missing"),
    ],
)
def test_ratings_off_the_scale_keep_fastchats_value_and_are_flagged(
    reply: str, score: float, status: str
) -> None:
    parsed = parse_rating(reply)
    assert (parsed.score, parsed.status) == (score, status)
    assert type(parsed.score) is type(score)  # FastChat's int stays an int
    float(parsed.score)  # the store gets a float: never an OverflowError


def _said(text: str, *, model: str | None = None, contains: Sequence[str] = ()) -> dict[str, Any]:
    return json_reply(openai_completion(text), model=model, contains=contains)


def _replies() -> list[dict[str, Any]]:
    """Models say who they are; the judge rates "wild" off the scale, everyone else 7 (the first
    reply that matches a request answers it)."""
    wild = ["[[rating]]", "I am wild."]
    return [
        _said(f"Rating: [[{HUGE}]]", contains=[*wild, "Conversation with User"]),  # turn 2
        _said("Rating: [[11]]", contains=[*wild, "Hawaii"]),
        _said("Rating: [[10.5]]", contains=wild),
        _said("Rating: [[7]]", contains=["[[rating]]"]),
        _said("I am steady.", model="steady"),
        _said("I am wild.", model="wild"),
    ]


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("range")
    with FakeServer() as server:
        server.script(_replies())
        config = write_config(
            directory,
            models=[model("steady", server.base_url), model("wild", server.base_url)],
            judge={"name": "judge-r", "base_url": server.base_url},
            questions=QUESTIONS,
        )
        from engine.cli.main import main

        assert main(["run", "-c", str(config), "--quiet"]) == 0
    return directory / "store.sqlite"


def test_generated_judgments_store_the_rating_and_the_status(judged: Path) -> None:
    with closing(sqlite3.connect(judged)) as db:
        rows = db.execute(
            "SELECT model, turn, score, parse_status FROM judgments "
            "ORDER BY model, question_id, turn"
        ).fetchall()
    assert rows == [
        ("steady", 1, 7.0, "ok"),
        ("steady", 2, 7.0, "ok"),
        ("steady", 1, 7.0, "ok"),
        ("steady", 2, 7.0, "ok"),
        ("wild", 1, 11.0, "out_of_range"),
        ("wild", 2, float(HUGE), "out_of_range"),
        ("wild", 1, 10.5, "out_of_range"),
        ("wild", 2, float(HUGE), "out_of_range"),
    ]


def test_show_keeps_fastchats_average_counts_the_flags_and_keeps_its_layout(
    judged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = mtbench(capsys, "show", "--store", str(judged), "--json")
    assert code == 0
    (board,) = orjson.loads(out)["leaderboards"]
    flags = {entry["model"]: entry["out_of_range"] for entry in board["models"]}
    assert flags == {"wild": 4, "steady": 0}
    # FastChat's show_result on the exported file averages the same numbers.
    asyncio.run(export_fastchat(judged, tmp_path / "fc"))
    exported = tmp_path / "fc" / "model_judgment" / "judge-r_single.jsonl"
    assert exported.read_text().count(f'"score": {HUGE},') == 2  # FastChat's int, digit for digit
    rows = read_jsonl(exported)
    shown = {entry["model"]: entry["score"] for entry in board["models"]}
    assert shown == pytest.approx(fastchat_single(rows))
    assert shown["wild"] == pytest.approx((11 + 10.5 + 2 * float(HUGE)) / 4)

    code, out, _ = mtbench(capsys, "show", "--store", str(judged))
    assert code == 0
    table = out.split("\n\n")[0].splitlines()[1:4]  # header, then one row per model
    assert table[0].split() == [
        "model", "turn", "1", "turn", "2", "overall", "95%", "CI", "-1s", "not", "1-10",
        "unjudged", "rows",
    ]  # fmt: skip
    assert len({len(line) for line in table}) == 1  # one row's numbers do not widen the table
    assert max(len(line) for line in table) < 110
    wild = next(line for line in table if line.startswith("wild"))
    assert "5e+22" in wild and "99999" not in wild
    assert "4 ratings outside 1-10 (parse status out_of_range)" in out


def test_the_reports_reliability_section_counts_out_of_range_ratings(
    judged: Path, tmp_path: Path
) -> None:
    page = asyncio.run(write_report(judged, tmp_path / "r.html")).read_text()
    section = page[page.index('id="reliability"') :]
    header = re.search(r"<thead><tr>(.*?)</tr></thead>", section)
    assert header is not None
    columns = re.findall(r"<th[^>]*>(.*?)</th>", header.group(1))
    row = re.search(r"<tr><td class=\"model\">judge-r[^<]*</td><td>single</td>(.*?)</tr>", section)
    assert row is not None
    cells = dict(zip(columns[2:], re.findall(r"<td>(.*?)</td>", row.group(1)), strict=False))
    assert cells["replies"] == "8"
    assert cells["out_of_range"] == "4"
    assert cells["ok"] == "4"
    assert cells["failure rate"] == "0.0%"
    assert "99999999999999991" not in page  # the leaderboard shows 5e+22, not 23 digits


def test_imported_ratings_off_the_scale_are_flagged_too(tmp_path: Path) -> None:
    folder = tmp_path / "fc" / "model_judgment"
    folder.mkdir(parents=True)
    lines = [
        {"question_id": 81, "model": "m", "judge": ["gpt-4", "single-v1"], "user_prompt": "p",
         "judgment": f"Rating: [[{score}]]", "score": score, "turn": 1, "tstamp": 1.0}
        for score in (11, 7)
    ]  # fmt: skip
    lines[1]["question_id"] = 82
    (folder / "gpt-4_single.jsonl").write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    store = tmp_path / "store.sqlite"
    asyncio.run(import_fastchat(store, tmp_path / "fc"))
    with closing(sqlite3.connect(store)) as db:
        statuses = db.execute("SELECT score, parse_status FROM judgments ORDER BY score").fetchall()
    assert statuses == [(7.0, "ok"), (11.0, "out_of_range")]
