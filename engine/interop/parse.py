"""FastChat answer and judgment lines as store rows, every problem named as `file:line`.

FastChat's rules are kept: the model name is the answer file's stem (not `model_id`), unless our
export wrote the real label into the lines of a sanitized file name (`engine.interop.names`); a
later line for the same question wins. Rows get synthetic response keys hashed from their content
and `created` = the line's `tstamp` (else the file's mtime), so importing the same files again
changes nothing. A judgment's slot is the store's primary key, so a repeated line replaces the
earlier one where `show_result` would count both (`Batch.superseded` counts how often).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import orjson

from engine.bench.jsonl import field, optional_field, question_id_field, read_jsonl
from engine.bench.judge import parse_rating, rating_in_range
from engine.errors import DataError
from engine.interop.fields import (
    IMPORT_API,
    judge_model_field,
    judge_settings_field,
    sample_field,
)
from engine.interop.names import label_for_stem
from engine.store.rows import AnswerRow, JudgmentRow, ResponseRow

__all__ = [
    "Batch",
    "ImportedJudge",
    "ImportedModel",
    "judge_counts",
    "parse_answer_file",
    "parse_judgment_file",
]

PAIR_WINNERS = frozenset({"model_1", "model_2", "tie", "error"})


@dataclass(frozen=True, slots=True)
class ImportedModel:
    model: str
    questions: int
    answers: int  # answer rows: one per turn


@dataclass(frozen=True, slots=True)
class ImportedJudge:
    judge: str
    single: int  # single-grading rows
    pair: int  # pairwise game rows: two per match


@dataclass(slots=True)
class Batch:
    """Rows parsed from every file, written only once all files have parsed."""

    responses: list[ResponseRow] = dataclass_field(default_factory=list)
    answers: list[AnswerRow] = dataclass_field(default_factory=list)
    judgments: dict[tuple[Any, ...], tuple[ResponseRow, JudgmentRow]] = dataclass_field(
        default_factory=dict
    )
    superseded: int = 0


def parse_answer_file(path: Path, bench: str, batch: Batch) -> ImportedModel:
    latest: dict[int, tuple[int, dict[str, Any], list[str]]] = {}
    lines = read_jsonl(path)
    model = label_for_stem(path.stem, (obj.get("model") for _, obj in lines))
    for number, obj in lines:
        turns = _answer_turns(path, number, obj)
        qid = question_id_field(path, number, obj)
        batch.superseded += qid in latest
        latest[qid] = (number, obj, turns)
    fallback_time = path.stat().st_mtime
    rows = 0
    for qid, (number, obj, turns) in sorted(latest.items()):
        model_id = optional_field(path, number, obj, "model_id", str) or model
        tstamp = _tstamp(path, number, obj, fallback_time)
        for turn, text in enumerate(turns, start=1):
            identity = {"model": model, "bench": bench, "question_id": qid, "turn": turn}
            key = _digest({"import": "fastchat-answer", **identity, "text": text})
            request = _canonical(
                {
                    "import": "fastchat-answer",
                    **identity,
                    "file": path.name,
                    "answer_id": optional_field(path, number, obj, "answer_id", str),
                    "model_id": model_id,
                    "tstamp": tstamp,
                }
            )
            batch.responses.append(_response(key, model, model_id, request, text, tstamp))
            batch.answers.append(
                AnswerRow(model, bench, qid, turn, 0, key, "imported", None, tstamp)
            )
            rows += 1
    return ImportedModel(model, len(latest), rows)


def _answer_turns(path: Path, number: int, obj: dict[str, Any]) -> list[str]:
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise DataError(f"{path}:{number}: field 'choices' must be a list holding an object")
    turns = choices[0].get("turns")
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
        raise DataError(
            f"{path}:{number}: field 'choices[0].turns' must be a non-empty list of strings"
        )
    return turns


@dataclass(frozen=True, slots=True)
class _JudgmentLine:
    """What every judgment row from one line shares."""

    file: str
    judge: str
    prompt_name: str
    judge_model: str  # the judge's model string, when our export recorded it; else its label
    sample: int
    bench: str
    question_id: int
    turn: int
    tstamp: float
    settings: str | None  # the judge's reasoning settings, when our export recorded them


def parse_judgment_file(path: Path, bench: str, batch: Batch) -> None:
    pair = path.name.endswith("_pair.jsonl")
    fallback_time = path.stat().st_mtime
    for number, obj in read_jsonl(path):
        judge, prompt_name = _judge(path, number, obj)
        line = _JudgmentLine(
            path.name,
            judge,
            prompt_name,
            judge_model_field(path, number, obj, judge),
            sample_field(path, number, obj),
            bench,
            question_id_field(path, number, obj),
            _turn(path, number, obj),
            _tstamp(path, number, obj, fallback_time),
            judge_settings_field(path, number, obj),
        )
        if pair:
            model_1 = field(path, number, obj, "model_1", str)
            model_2 = field(path, number, obj, "model_2", str)
            for game in (1, 2):
                winner = field(path, number, obj, f"g{game}_winner", str)
                if winner not in PAIR_WINNERS:
                    raise DataError(
                        f"{path}:{number}: g{game}_winner {winner!r} is not one of "
                        f"{', '.join(sorted(PAIR_WINNERS))}"
                    )
                prompt = field(path, number, obj, f"g{game}_user_prompt", str)
                text = field(path, number, obj, f"g{game}_judgment", str)
                status = "missing" if winner == "error" else "ok"
                slot = ("pair", model_1, model_2, game)
                _add_judgment(batch, line, slot, prompt, text, None, winner, status)
        else:
            prompt = field(path, number, obj, "user_prompt", str)
            text = field(path, number, obj, "judgment", str)
            score = field(path, number, obj, "score", (int, float))
            rating = parse_rating(text)
            # The file's score is what FastChat's show_result averages; keep it even if we disagree,
            # and flag it when it is off the 1-10 scale.
            if not rating_in_range(score):
                status = "out_of_range"
            else:
                status = rating.status if rating.score == score else "imported"
            slot = ("single", field(path, number, obj, "model", str), "", 0)
            _add_judgment(batch, line, slot, prompt, text, float(score), None, status)


def _add_judgment(
    batch: Batch,
    line: _JudgmentLine,
    slot: tuple[str, str, str, int],
    user_prompt: str,
    text: str,
    score: float | None,
    winner: str | None,
    status: str,
) -> None:
    kind, model, opponent, game = slot
    identity = {
        "judge": [line.judge, line.prompt_name],
        **({} if line.judge_model == line.judge else {"judge_model": line.judge_model}),
        **({"sample": line.sample} if line.sample else {}),
        "bench": line.bench,
        "question_id": line.question_id,
        "turn": line.turn,
        "kind": kind,
        "model": model,
        "opponent": opponent,
        "game": game,
    }
    content = {"user_prompt": user_prompt, "text": text}
    key = _digest({"import": "fastchat-judgment", **identity, **content})
    request = _canonical(
        {
            "import": "fastchat-judgment",
            **identity,
            "file": line.file,
            "messages": [{"role": "user", "content": user_prompt}],
            "tstamp": line.tstamp,
        }
    )
    judgment = JudgmentRow(
        line.judge, line.judge_model, IMPORT_API, line.bench, kind, model, opponent,
        line.question_id, line.turn, game, line.sample, line.prompt_name, score, winner, status,
        key, None, line.tstamp, line.settings,
    )  # fmt: skip
    if judgment.slot() in batch.judgments:
        batch.superseded += 1
    response = _response(key, line.judge, line.judge_model, request, text, line.tstamp)
    batch.judgments[judgment.slot()] = (response, judgment)


def judge_counts(batch: Batch) -> tuple[ImportedJudge, ...]:
    counts: dict[str, list[int]] = {}
    for _, judgment in batch.judgments.values():
        tally = counts.setdefault(judgment.judge, [0, 0])
        tally[judgment.kind == "pair"] += 1
    return tuple(
        ImportedJudge(judge, single, pair) for judge, (single, pair) in sorted(counts.items())
    )


def _response(
    key: str, label: str, model: str, request: bytes, text: str, created: float
) -> ResponseRow:
    return ResponseRow(
        key, IMPORT_API, label, model, request, text, None, None, None, None, created
    )


def _canonical(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def _digest(obj: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(obj)).hexdigest()


def _turn(path: Path, number: int, obj: dict[str, Any]) -> int:
    """FastChat judges turn 1 or 2; any other turn is no MT-Bench judgment."""
    turn: int = field(path, number, obj, "turn", int)
    if turn not in (1, 2):
        raise DataError(f"{path}:{number}: field 'turn' = {turn}: expected 1 or 2")
    return turn


def _tstamp(path: Path, number: int, obj: dict[str, Any], fallback: float) -> float:
    # Without a tstamp the file's mtime keeps re-imports of the same file identical.
    value = optional_field(path, number, obj, "tstamp", (int, float))
    return fallback if value is None else float(value)


def _judge(path: Path, number: int, obj: dict[str, Any]) -> tuple[str, str]:
    judge = obj.get("judge")
    if (
        not isinstance(judge, list)
        or len(judge) != 2
        or not all(isinstance(part, str) and part for part in judge)
    ):
        raise DataError(f"{path}:{number}: field 'judge' must be [judge_model, prompt_name]")
    return judge[0], judge[1]
