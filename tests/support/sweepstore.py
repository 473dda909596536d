"""A store holding a checkpoint sweep with ratings chosen by the test, via `mtbench import`.

FastChat answer and single-judgment files are written for each checkpoint and imported with the
shared data dir (so categories are recorded), exactly as a user would load published files.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from pathlib import Path

import orjson

from engine.cli.main import main
from tests.support.paths import MTBENCH_DATA

# question id -> category in MT-Bench: two writing, one math, one coding question.
QUESTIONS = {81: "writing", 82: "writing", 111: "math", 121: "coding"}


def write_sweep_files(
    folder: Path, ratings: Mapping[str, Mapping[tuple[int, int], float]], judge: str = "gpt-4"
) -> Path:
    """model_answer/<label>.jsonl and model_judgment/<judge>_single.jsonl under `folder`."""
    answers = folder / "model_answer"
    judgments = folder / "model_judgment"
    answers.mkdir(parents=True, exist_ok=True)
    judgments.mkdir(parents=True, exist_ok=True)
    lines = []
    for label, scores in ratings.items():
        questions = sorted({qid for qid, _ in scores})
        answer_lines = [
            {"question_id": q, "model_id": label, "choices": [{"index": 0, "turns": ["a", "b"]}]}
            for q in questions
        ]
        (answers / f"{label}.jsonl").write_bytes(
            b"".join(orjson.dumps(line) + b"\n" for line in answer_lines)
        )
        for (qid, turn), score in sorted(scores.items()):
            lines.append(
                {
                    "question_id": qid,
                    "model": label,
                    "judge": [judge, "single-v1" if turn == 1 else "single-v1-multi-turn"],
                    "user_prompt": "grade it",
                    "judgment": f"Rating: [[{score:g}]]",
                    "score": score,
                    "turn": turn,
                    "tstamp": 1700000000.0,
                }
            )
    (judgments / f"{judge}_single.jsonl").write_bytes(
        b"".join(orjson.dumps(line) + b"\n" for line in lines)
    )
    return folder


def sweep_store(
    directory: Path,
    ratings: Mapping[str, Mapping[tuple[int, int], float]],
    judge: str = "gpt-4",
) -> Path:
    """A store at directory/store.sqlite holding these ratings."""
    store = directory / "store.sqlite"
    files = write_sweep_files(directory / "fastchat", ratings, judge)
    argv = ["import", "--store", str(store), "--fastchat", str(files), "--data", str(MTBENCH_DATA)]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        code = main(argv)
    assert code == 0, printed.getvalue()
    return store


def flat_ratings(
    score: float, questions: Mapping[int, str] = QUESTIONS
) -> dict[tuple[int, int], float]:
    """The same rating on both turns of every question."""
    return {(qid, turn): score for qid in questions for turn in (1, 2)}
