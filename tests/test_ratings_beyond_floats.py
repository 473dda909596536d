"""A judge's rating that a float holds but no sum of two does: FastChat's parser takes the 309-digit
`[[1000...0]]` as 1e308, averaged as given like any rating off the scale. Two of them once made
`math.fsum` raise, and `show`, the panel, agreement and the report died for every judge in the
store; now the board says inf (as FastChat's pandas mean does) and every other figure stands."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.config_panel import PanelConfig
from engine.interop import import_fastchat, record_questions
from engine.scoring.floats import float_sum
from engine.store.panels import record_panel
from engine.store.store import open_store
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import mtbench

HUGE = 1e308  # what FastChat's parser reads from "[[1" + "0" * 308 + "]]"


def _line(judge: str, model: str, qid: int, turn: int, score: float) -> dict[str, Any]:
    rating = "1" + "0" * 308 if score == HUGE else str(score)
    return {"question_id": qid, "model": model, "judge": [judge, "single-v1"],
            "user_prompt": "q", "judgment": f"Rating: [[{rating}]]", "score": score,
            "turn": turn, "tstamp": 1.0}  # fmt: skip


def _store(root: Path) -> Path:
    folder = root / "model_judgment"
    folder.mkdir(parents=True)
    items = [(model, qid, turn) for model in ("x", "y") for qid in (81, 82, 83) for turn in (1, 2)]
    for judge in ("calm", "wild"):
        lines = []
        for k, (model, qid, turn) in enumerate(items):
            score: float = 1 + (k * (3 if judge == "calm" else 7)) % 10
            if judge == "wild" and qid == 81:
                score = HUGE
            lines.append(_line(judge, model, qid, turn, score))
        (folder / f"{judge}_single.jsonl").write_bytes(
            b"".join(orjson.dumps(x) + b"\n" for x in lines)
        )
    store = root / "store.sqlite"

    async def build() -> None:
        await import_fastchat(store, root)
        await record_questions(store, MTBENCH_DATA, "mt_bench")
        opened = await open_store(store, write=True)
        try:
            await record_panel(opened, "mt_bench", PanelConfig(("calm", "wild")), None)
        finally:
            await opened.close()

    asyncio.run(build())
    return store


def test_float_sum_is_fsum_until_the_sum_overflows() -> None:
    assert float_sum([0.1] * 10) == math.fsum([0.1] * 10)
    assert float_sum([1e308, 1e308]) == math.inf
    assert math.isnan(float_sum([math.inf, -math.inf]))


def test_show_panel_agreement_and_report_stand_a_judge_rating_1e308_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(tmp_path)
    code, out, err = mtbench(capsys, "show", "--store", str(store), "--json")
    assert code == 0, err
    shown = orjson.loads(out)
    wild = next(board for board in shown["leaderboards"] if board["judge"]["name"] == "wild")
    assert all(row["score"] is None or row["score"] > 1e300 for row in wild["models"])
    (panel,) = shown["panels"]
    assert all(row["items"] == 6 for row in panel["models"])
    code, out, err = mtbench(capsys, "show", "--store", str(store))
    assert code == 0 and "inf" in out, err
    code, out, err = mtbench(capsys, "show", "--store", str(store), "--agreement", "--json")
    assert code == 0, err
    (row,) = orjson.loads(out)["single"]
    assert row["krippendorff_alpha"] == {"value": None, "items": 12}
    report = tmp_path / "report.html"
    code, _, err = mtbench(capsys, "report", "--store", str(store), "-o", str(report))
    assert code == 0, err
    assert "How much the judges agree" in report.read_text()
