"""FastChat `llm_judge` answer and judgment files into the store, all or nothing.

Answers produced elsewhere (the 31 published MT-Bench models, a colleague's FastChat run) become
ordinary stored answers, so they can be judged, compared and shown next to our own. Everything is
parsed and checked before the store is opened, then written in one transaction: a malformed line
anywhere leaves the store untouched. Rows get synthetic response keys hashed from their content and
`created` = the file's `tstamp`, so importing the same files again changes nothing.

FastChat's rules are kept: the model name is the answer file's stem (not `model_id`), and a later
line for the same question wins. One exception makes export and import a round trip: a file our
export named with a sanitized stem (a label such as `a/b` is no file name) carries the real label
in each line, and that label is used (`engine.interop_names`); two files naming the same model are
refused. For judgments the slot (judge, model, question, turn, game, sample) is the store's primary
key, so a repeated line replaces the earlier one where `show_result` would count both;
`ImportReport.superseded` says how often that happened. Our exported judgment lines also say which
sample they are and who judged (`judge_identity`): both are kept, so two judges that share a label,
or the samples of a repeated judging, stay apart.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from engine.data import QUESTION_ID_MAX, read_jsonl
from engine.errors import DataError
from engine.interop_conflicts import Replaced, check_replacements
from engine.interop_fields import (
    IMPORT_API,
    judge_model_field,
    judge_settings_field,
    sample_field,
)
from engine.interop_names import label_for_stem, refuse_duplicate_labels
from engine.jobs import INSERT_RESPONSE, UPSERT_ANSWER, UPSERT_JUDGMENT_WITH_SETTINGS
from engine.judge import parse_rating, rating_in_range
from engine.store import open_store

__all__ = [
    "ANSWER_DIR",
    "IMPORT_API",
    "JUDGMENT_DIR",
    "FastChatSource",
    "ImportReport",
    "ImportedJudge",
    "ImportedModel",
    "import_fastchat",
    "resolve_fastchat_source",
]

log = logging.getLogger(__name__)

ANSWER_DIR = "model_answer"
JUDGMENT_DIR = "model_judgment"
DATA_FILES = ("judge_prompts.jsonl", "question.jsonl")
PAIR_WINNERS = frozenset({"model_1", "model_2", "tie", "error"})

Params = tuple[Any, ...]
# (judge, judge model, bench, kind, model, opponent, question_id, turn, game, sample): a
# judgment's primary key here
_Slot = tuple[str, str, str, str, str, str, int, int, int, int]


@dataclass(frozen=True, slots=True)
class FastChatSource:
    """Where the files of one import were found."""

    answer_files: tuple[Path, ...]
    judgment_files: tuple[Path, ...]


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


@dataclass(frozen=True, slots=True)
class ImportReport:
    source: FastChatSource
    models: tuple[ImportedModel, ...]
    judges: tuple[ImportedJudge, ...]
    superseded: int  # lines replaced by a later line for the same question or judgment slot
    replaced: Replaced = field(
        default_factory=Replaced
    )  # stored rows with other content, replaced (with force)

    @property
    def answer_rows(self) -> int:
        return sum(m.answers for m in self.models)

    @property
    def judgment_rows(self) -> int:
        return sum(j.single + j.pair for j in self.judges)


@dataclass(slots=True)
class _Batch:
    """Rows parsed from every file, written only once all files have parsed."""

    responses: list[Params] = field(default_factory=list)
    answers: list[Params] = field(default_factory=list)
    judgments: dict[_Slot, tuple[Params, Params]] = field(default_factory=dict)
    superseded: int = 0


def resolve_fastchat_source(source: Path, bench: str) -> FastChatSource:
    """Find the answer and judgment files under any of the three accepted layouts."""
    layouts: list[tuple[Path, Path | None]] = [
        (source / ANSWER_DIR, source / JUDGMENT_DIR),
        (source / bench / ANSWER_DIR, source / bench / JUDGMENT_DIR),
    ]
    # A data dir's own files (judge_prompts.jsonl, question.jsonl) are no answer files.
    if not any((source / name).exists() for name in DATA_FILES):
        layouts.append((source, None))
    if source.is_dir():
        for answer_dir, judgment_dir in layouts:
            found = FastChatSource(_files(answer_dir, "*.jsonl"), _judgment_files(judgment_dir))
            if found.answer_files or found.judgment_files:
                return found
    raise DataError(
        f"{source}: no FastChat answer or judgment files there; give the {ANSWER_DIR} folder "
        f"itself, a folder holding {ANSWER_DIR}/ (and {JUDGMENT_DIR}/), or a FastChat data dir "
        f"holding {bench}/{ANSWER_DIR}/ (and {bench}/{JUDGMENT_DIR}/)"
    )


async def import_fastchat(
    store_path: Path, source: Path, bench: str = "mt_bench", *, force: bool = False
) -> ImportReport:
    """Import every answer and judgment file found at `source` into the store, atomically;
    stored answers or judgments with other content are replaced only with `force`."""
    found = resolve_fastchat_source(Path(source), bench)
    batch = _Batch()
    models = tuple(_parse_answer_file(path, bench, batch) for path in found.answer_files)
    refuse_duplicate_labels(found.answer_files, [m.model for m in models])
    for path in found.judgment_files:
        _parse_judgment_file(path, bench, batch)
    store = await open_store(Path(store_path), write=True)
    try:
        replaced = await _write(store.db, store_path, batch, force=force)
    finally:
        await store.close()
    report = ImportReport(found, models, _judge_counts(batch), batch.superseded, replaced)
    log.info("imported %d answer and %d judgment rows", report.answer_rows, report.judgment_rows)
    return report


async def _write(
    db: aiosqlite.Connection, store_path: Path, batch: _Batch, *, force: bool
) -> Replaced:
    judgment_responses = [response for response, _ in batch.judgments.values()]
    judgments = [judgment for _, judgment in batch.judgments.values()]
    await db.execute("BEGIN IMMEDIATE")
    try:
        replaced = await check_replacements(db, store_path, batch.answers, judgments, force=force)
        await db.executemany(INSERT_RESPONSE, batch.responses + judgment_responses)
        await db.executemany(UPSERT_ANSWER, batch.answers)
        await db.executemany(UPSERT_JUDGMENT_WITH_SETTINGS, judgments)
    except BaseException:
        await db.execute("ROLLBACK")
        raise
    await db.execute("COMMIT")
    return replaced


def _files(folder: Path | None, pattern: str) -> tuple[Path, ...]:
    if folder is None or not folder.is_dir():
        return ()
    return tuple(sorted(p for p in folder.glob(pattern) if p.is_file()))


def _judgment_files(folder: Path | None) -> tuple[Path, ...]:
    return _files(folder, "*_single.jsonl") + _files(folder, "*_pair.jsonl")


def _parse_answer_file(path: Path, bench: str, batch: _Batch) -> ImportedModel:
    latest: dict[int, tuple[int, dict[str, Any], list[str]]] = {}
    lines = read_jsonl(path)
    model = label_for_stem(path.stem, (obj.get("model") for _, obj in lines))
    for number, obj in lines:
        turns = _answer_turns(path, number, obj)
        qid = _question_id(path, number, obj)
        batch.superseded += qid in latest
        latest[qid] = (number, obj, turns)
    fallback_time = path.stat().st_mtime
    rows = 0
    for qid, (number, obj, turns) in sorted(latest.items()):
        model_id = _optional(path, number, obj, "model_id", str) or model
        tstamp = _tstamp(path, number, obj, fallback_time)
        for turn, text in enumerate(turns, start=1):
            identity = {"model": model, "bench": bench, "question_id": qid, "turn": turn}
            key = _digest({"import": "fastchat-answer", **identity, "text": text})
            request = _canonical(
                {
                    "import": "fastchat-answer",
                    **identity,
                    "file": path.name,
                    "answer_id": _optional(path, number, obj, "answer_id", str),
                    "model_id": model_id,
                    "tstamp": tstamp,
                }
            )
            batch.responses.append(_response(key, model, model_id, request, text, tstamp))
            batch.answers.append((model, bench, qid, turn, 0, key, "imported", None, tstamp))
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


def _parse_judgment_file(path: Path, bench: str, batch: _Batch) -> None:
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
            _question_id(path, number, obj),
            _turn(path, number, obj),
            _tstamp(path, number, obj, fallback_time),
            judge_settings_field(path, number, obj),
        )
        if pair:
            model_1 = _get(path, number, obj, "model_1", str)
            model_2 = _get(path, number, obj, "model_2", str)
            for game in (1, 2):
                winner = _get(path, number, obj, f"g{game}_winner", str)
                if winner not in PAIR_WINNERS:
                    raise DataError(
                        f"{path}:{number}: g{game}_winner {winner!r} is not one of "
                        f"{', '.join(sorted(PAIR_WINNERS))}"
                    )
                prompt = _get(path, number, obj, f"g{game}_user_prompt", str)
                text = _get(path, number, obj, f"g{game}_judgment", str)
                status = "missing" if winner == "error" else "ok"
                slot = ("pair", model_1, model_2, game)
                _add_judgment(batch, line, slot, prompt, text, None, winner, status)
        else:
            prompt = _get(path, number, obj, "user_prompt", str)
            text = _get(path, number, obj, "judgment", str)
            score = _get(path, number, obj, "score", (int, float))
            rating = parse_rating(text)
            # The file's score is what FastChat's show_result averages; keep it even if we disagree,
            # and flag it when it is off the 1-10 scale.
            if not rating_in_range(score):
                status = "out_of_range"
            else:
                status = rating.status if rating.score == score else "imported"
            slot = ("single", _get(path, number, obj, "model", str), "", 0)
            _add_judgment(batch, line, slot, prompt, text, float(score), None, status)


def _add_judgment(
    batch: _Batch,
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
    judgment = (
        line.judge, line.judge_model, IMPORT_API, line.bench, kind, model, opponent,
        line.question_id, line.turn, game, line.sample, line.prompt_name, score, winner, status,
        key, None, line.tstamp, line.settings,
    )  # fmt: skip
    where: _Slot = (
        line.judge, line.judge_model, line.bench, kind, model, opponent, line.question_id,
        line.turn, game, line.sample,
    )  # fmt: skip
    if where in batch.judgments:
        batch.superseded += 1
    response = _response(key, line.judge, line.judge_model, request, text, line.tstamp)
    batch.judgments[where] = (response, judgment)


def _judge_counts(batch: _Batch) -> tuple[ImportedJudge, ...]:
    counts: dict[str, list[int]] = {}
    for judge, _, _, kind, *_ in batch.judgments:
        tally = counts.setdefault(judge, [0, 0])
        tally[kind == "pair"] += 1
    return tuple(
        ImportedJudge(judge, single, pair) for judge, (single, pair) in sorted(counts.items())
    )


def _response(
    key: str, label: str, model: str, request: bytes, text: str, created: float
) -> Params:
    return (key, IMPORT_API, label, model, request, text, None, None, None, None, created)


def _canonical(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def _digest(obj: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(obj)).hexdigest()


def _get(
    path: Path, number: int, obj: dict[str, Any], key: str, kind: type | tuple[type, ...]
) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise DataError(f"{path}:{number}: field {key!r} is missing or not {names}")
    return value


def _question_id(path: Path, number: int, obj: dict[str, Any]) -> int:
    qid: int = _get(path, number, obj, "question_id", int)
    if not 0 <= qid <= QUESTION_ID_MAX:
        raise DataError(
            f"{path}:{number}: field 'question_id' = {qid} is out of range; "
            f"use an integer from 0 to {QUESTION_ID_MAX}"
        )
    return qid


def _turn(path: Path, number: int, obj: dict[str, Any]) -> int:
    """FastChat judges turn 1 or 2; any other turn is no MT-Bench judgment."""
    turn: int = _get(path, number, obj, "turn", int)
    if turn not in (1, 2):
        raise DataError(f"{path}:{number}: field 'turn' = {turn}: expected 1 or 2")
    return turn


def _optional(
    path: Path, number: int, obj: dict[str, Any], key: str, kind: type | tuple[type, ...]
) -> Any:
    return None if obj.get(key) is None else _get(path, number, obj, key, kind)


def _tstamp(path: Path, number: int, obj: dict[str, Any], fallback: float) -> float:
    # Without a tstamp the file's mtime keeps re-imports of the same file identical.
    value = _optional(path, number, obj, "tstamp", (int, float))
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
