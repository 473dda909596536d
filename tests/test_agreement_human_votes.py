"""Agreement with an imported human set that holds several raters' votes per match (one sample
each, as FastChat's human judgments have several experts per item): every vote is compared with
the judge's verdict, FastChat's `compute_agreement` way, instead of the votes being folded into
one majority first (which turned two raters who disagree into a tie and hid both votes)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.interop import import_fastchat, record_questions
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import mtbench


def _pair_line(judge: str, qid: int, games: tuple[str, str], sample: int = 0) -> dict[str, Any]:
    return {"question_id": qid, "model_1": "x", "model_2": "y", "g1_winner": games[0],
            "g2_winner": games[1], "judge": [judge, "pair-v2"], "g1_user_prompt": "q",
            "g1_judgment": "-", "g2_user_prompt": "q", "g2_judgment": "-", "turn": 1,
            "tstamp": 1.0, "sample": sample}  # fmt: skip


def _store(root: Path) -> Path:
    folder = root / "model_judgment"
    folder.mkdir(parents=True)
    judge = [_pair_line("gpt", 81, ("model_1", "model_1")), _pair_line("gpt", 82, ("tie", "tie"))]
    human = [  # q81: one expert for x, one for y; q82: one tie, one for x
        _pair_line("human", 81, ("model_1", "model_1"), 0),
        _pair_line("human", 81, ("model_2", "model_2"), 1),
        _pair_line("human", 82, ("tie", "tie"), 0),
        _pair_line("human", 82, ("model_1", "model_1"), 1),
    ]
    for name, lines in (("gpt_pair", judge), ("human_pair", human)):
        (folder / f"{name}.jsonl").write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    store = root / "store.sqlite"

    async def build() -> None:
        await import_fastchat(store, root)
        await record_questions(store, MTBENCH_DATA, "mt_bench")

    asyncio.run(build())
    return store


def test_every_human_vote_is_compared_with_the_judges_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(tmp_path)
    code, out, err = mtbench(
        capsys, "show", "--store", str(store), "--agreement", "--against", "human", "--json"
    )
    assert code == 0, err
    (row,) = orjson.loads(out)["pairwise"]
    # Vote pairs: q81 (x, x) agree, (x, y) differ; q82 (tie, tie) agree, (tie, x) differ.
    assert (row["agreement"]["agreed"], row["agreement"]["pairs"]) == (2, 4)
    without = row["agreement_without_ties"]
    assert (without["agreed"], without["pairs"]) == (1, 2)
    # p_o = 1/2; gpt says x, x, tie, tie and the experts x, y, tie, x: p_e = 3/8, kappa = 0.2.
    assert row["cohen_kappa"] == {"value": pytest.approx(0.2), "items": 4}
