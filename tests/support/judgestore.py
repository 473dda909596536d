"""A store holding three judge labels, built from the FastChat reference run's judgment files.

`gpt-4` is the reference run itself, imported from /work/shared (answers, judgments, questions):
the reference set the other judges are compared with. `judge-b` and `judge-c` are the same files
relabelled and changed by fixed rules, written to a temporary folder and imported like any
FastChat judgment file: `judge-b` moves some ratings and swaps some verdicts (disagreement without
ties) or makes game 1 a tie; `judge-c` leaves out a fifth of the items and gives many the same
rating or a tie. The rows as written are returned so a test can compute every figure itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from engine.interop import import_fastchat, record_questions
from tests.support.paths import FASTCHAT_REFERENCE, MTBENCH_DATA

REFERENCE = "gpt-4"
JUDGMENTS = FASTCHAT_REFERENCE / "model_judgment"
Row = dict[str, Any]
SWAPPED = {"model_1": "model_2", "model_2": "model_1"}


def jsonl(path: Path) -> list[Row]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def reference_rows(kind: str) -> list[Row]:
    return jsonl(JUDGMENTS / f"{REFERENCE}_{kind}.jsonl")


def _judge_b_single(index: int, row: Row) -> Row | None:
    if row["score"] != -1 and index % 5 == 0:
        row["score"] = min(10, row["score"] + 1)
    elif row["score"] != -1 and index % 7 == 0:
        row["score"] = max(1, row["score"] - 2)
    return row


def _judge_b_pair(index: int, row: Row) -> Row | None:
    if index % 4 == 0:
        for game in ("g1_winner", "g2_winner"):
            row[game] = SWAPPED.get(row[game], row[game])
    elif index % 6 == 0:
        row["g1_winner"] = "tie"
    return row


def _judge_c_single(index: int, row: Row) -> Row | None:
    if index % 5 == 1:
        return None
    if row["score"] != -1 and index % 3 == 0:
        row["score"] = 5
    return row


def _judge_c_pair(index: int, row: Row) -> Row | None:
    if index % 5 == 1:
        return None
    if index % 3 == 0:
        row["g1_winner"] = row["g2_winner"] = "tie"
    return row


RULES: dict[str, dict[str, Callable[[int, Row], Row | None]]] = {
    "judge-b": {"single": _judge_b_single, "pair": _judge_b_pair},
    "judge-c": {"single": _judge_c_single, "pair": _judge_c_pair},
}


def derived_rows(label: str, kind: str, rule: str | None = None) -> list[Row]:
    """The reference's judgment rows changed by `rule`'s rule (default `label`'s), relabelled."""
    rows = []
    for index, row in enumerate(reference_rows(kind)):
        changed = RULES[rule or label][kind](index, row)
        if changed is not None:
            changed["judge"] = [label, changed["judge"][1]]
            rows.append(changed)
    return rows


def judgment_rows(label: str, kind: str) -> list[Row]:
    """What the store holds for `label` (kind 'single' or 'pair'), as file rows."""
    return reference_rows(kind) if label == REFERENCE else derived_rows(label, kind)


def write_judge(
    root: Path, label: str, kinds: tuple[str, ...] = ("single", "pair"), rule: str | None = None
) -> Path:
    """A FastChat folder holding `label`'s judgment files (made by `rule`'s rule, if given)."""
    folder = root / f"judge-{len(list(root.glob('judge-*')))}" / "model_judgment"
    folder.mkdir(parents=True)
    for kind in kinds:
        rows = derived_rows(label, kind, rule)
        (folder / f"judge_{kind}.jsonl").write_bytes(
            b"".join(orjson.dumps(r) + b"\n" for r in rows)
        )
    return folder.parent


def three_judge_store(root: Path) -> Path:
    store = root / "judges.sqlite"

    async def build() -> None:
        await import_fastchat(store, FASTCHAT_REFERENCE)
        await record_questions(store, MTBENCH_DATA, "mt_bench")
        for label in RULES:
            await import_fastchat(store, write_judge(root, label))

    asyncio.run(build())
    return store
