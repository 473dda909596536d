"""The store out as FastChat `llm_judge` files, so FastChat's own tools read our results.

`show_result.py` pointed at the exported `model_judgment/<judge>_single.jsonl` or `_pair.jsonl`
prints the numbers `mtbench show` prints; `model_answer/<model>.jsonl` can be judged by FastChat's
`gen_judgment.py`. Lines are written the way FastChat writes them (`json.dumps`, same key order),
answers in question order, so imported files come back out equal to what went in. Existing files
are replaced only with `force`, and all files at once (`engine.interop.file_set`).

Choices FastChat's files cannot express are made here, and what is left out is reported. A single
score is written as FastChat's parser typed it (int for "[[6]]", float for "[[5.5]]") when the
stored score is what the judge's text parses to, otherwise as an int if integral, else a float. An
answer line needs every turn of its question (FastChat judges turn 2 from it), so a question a
model answered only in part is left out, per model in `ExportReport.left_out`. A pairwise line
needs both games, so a match with a game missing is left out too (FastChat's show_result drops
matches with an "error" game, so the numbers are the same). A label that is no safe file name gets
a sanitized, hashed stem (`engine.interop.names`) and its real name in each line.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.bench.judge import parse_rating, rating_literal
from engine.bench.thinking import answer_text
from engine.errors import InputError
from engine.interop.file_set import PlannedFile, check_destination, other_files, write_all
from engine.interop.importing import ANSWER_DIR, IMPORT_API, JUDGMENT_DIR
from engine.interop.names import file_stems
from engine.reasoning import stored_settings
from engine.store import rows
from engine.store.judges import no_such_judge
from engine.store.rows import JudgeIdentity
from engine.store.store import Store, open_store

__all__ = ["ExportReport", "ExportedFile", "LeftOut", "export_fastchat"]


@dataclass(frozen=True, slots=True)
class ExportedFile:
    path: Path
    kind: str  # 'answer' | 'single' | 'pair'
    name: str  # model label, or judge label
    lines: int


@dataclass(frozen=True, slots=True)
class LeftOut:
    """What one model's answer file (or one judge's pair file) leaves out, and why."""

    kind: str  # 'answers' | 'matches'
    name: str  # the model, or the judge
    question_ids: tuple[int, ...]  # one entry per question or match left out

    @property
    def reason(self) -> str:
        if self.kind == "answers":
            return "a turn is missing (FastChat's answer lines need every turn)"
        return "a game is missing (a pairwise line needs both games)"


@dataclass(frozen=True, slots=True)
class ExportReport:
    dest: Path
    files: tuple[ExportedFile, ...]
    left_out: tuple[LeftOut, ...] = ()
    replaced: tuple[Path, ...] = ()  # files that existed and were replaced (with force)
    others: tuple[Path, ...] = ()  # .jsonl files already in those folders, not from this export

    @property
    def incomplete_answers(self) -> int:
        """(model, question) pairs left out: a turn is missing."""
        return sum(len(o.question_ids) for o in self.left_out if o.kind == "answers")

    @property
    def incomplete_matches(self) -> int:
        """Pairwise matches left out: a game is missing."""
        return sum(len(o.question_ids) for o in self.left_out if o.kind == "matches")


@dataclass(frozen=True, slots=True)
class _StoredJudgment:
    identity: JudgeIdentity
    kind: str
    model: str
    opponent: str
    question_id: int
    turn: int
    game: int
    prompt_name: str
    score: float | None
    winner: str | None
    created: float
    user_prompt: str
    text: str
    sample: int
    settings: str | None  # the judge's reasoning settings, as stored (JSON)


async def export_fastchat(
    store_path: Path,
    dest: Path,
    bench: str = "mt_bench",
    judge: str | None = None,
    *,
    force: bool = False,
) -> ExportReport:
    """Write the store's answers and judgments (all judges, or the one labelled `judge`)."""
    store = await open_store(Path(store_path), write=False)
    try:
        answers = await _answer_lines(store, bench)
        judgments = await _stored_judgments(store, bench, judge)
        if judge is not None and not judgments:
            found = await store.fetch(rows.JUDGES_OF_BENCH, {"bench": bench})
            raise no_such_judge(store_path, bench, judge, [row[0] for row in found])
    finally:
        await store.close()
    dest = Path(dest)
    files, planned, left_out = _plan_answers(dest, answers)
    for file, content, skipped in _plan_judgments(dest, judgments):
        files.append(file)
        planned.append(PlannedFile(file.path, content))
        left_out.extend(skipped)
    if not planned:
        raise InputError(_nothing_to_export(store_path, bench, left_out))
    replaced = check_destination(dest, planned, force=force)
    write_all(planned)
    others = other_files(planned)
    return ExportReport(dest, tuple(files), tuple(left_out), tuple(replaced), tuple(others))


def _nothing_to_export(store_path: Path, bench: str, left_out: list[LeftOut]) -> str:
    if not left_out:
        return f"{store_path}: no answers or judgments for bench {bench}; nothing to export"
    parts = [f"{len(o.question_ids)} {o.kind} of {o.name!r}" for o in left_out[:3]]
    more = f" and {len(left_out) - 3} more" if len(left_out) > 3 else ""
    return (
        f"{store_path}: nothing to export for bench {bench}: {', '.join(parts)}{more} left out "
        f"because {left_out[0].reason}; finish them (rerun `mtbench run` or `generate`) first"
    )


def _plan_answers(
    dest: Path, answers: _AnswerLines
) -> tuple[list[ExportedFile], list[PlannedFile], list[LeftOut]]:
    stems = file_stems(answers.by_model)
    files, planned = [], []
    for model, lines in sorted(answers.by_model.items()):
        # A label the file name cannot carry travels in each line, for import to take back.
        named = lines if stems[model] == model else [{**line, "model": model} for line in lines]
        path = dest / ANSWER_DIR / f"{stems[model]}.jsonl"
        files.append(ExportedFile(path, "answer", model, len(lines)))
        planned.append(PlannedFile(path, _jsonl(named)))
    left_out = [
        LeftOut("answers", model, tuple(qids)) for model, qids in sorted(answers.incomplete.items())
    ]
    return files, planned, left_out


def _plan_judgments(
    dest: Path, judgments: list[_StoredJudgment]
) -> Iterable[tuple[ExportedFile, bytes, list[LeftOut]]]:
    folder = dest / JUDGMENT_DIR
    for stem, identity, judged in _judge_files(judgments):
        about = _identity_field(identity, judged)
        single = [{**_single_line(row), **about} for row in judged if row.kind == "single"]
        pair, skipped = _pair_lines(row for row in judged if row.kind == "pair")
        pair = [{**line, **about} for line in pair]
        left_out = [LeftOut("matches", identity.name, skipped)] if skipped else []
        if single:
            path = folder / f"{stem}_single.jsonl"
            yield ExportedFile(path, "single", identity.name, len(single)), _jsonl(single), []
        if pair:
            path = folder / f"{stem}_pair.jsonl"
            yield ExportedFile(path, "pair", identity.name, len(pair)), _jsonl(pair), left_out


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")


@dataclass(frozen=True, slots=True)
class _AnswerLines:
    by_model: dict[str, list[dict[str, Any]]]
    incomplete: dict[str, list[int]]  # model -> questions left out: a turn is missing


async def _answer_lines(store: Store, bench: str) -> _AnswerLines:
    found = await store.fetch(rows.ANSWERS_WITH_TEXT, {"bench": bench, "imported": IMPORT_API})
    turn_counts = await _turn_counts(store, bench, found)
    grouped: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for row in found:
        grouped[(row["model"], row["question_id"])].append(row)
    by_model: dict[str, list[dict[str, Any]]] = {}
    incomplete: dict[str, list[int]] = defaultdict(list)
    for (model, qid), turns in grouped.items():
        if [row["turn"] for row in turns] != list(range(1, turn_counts[qid] + 1)):
            incomplete[model].append(qid)
            continue
        by_model.setdefault(model, []).append(
            {
                "question_id": qid,
                "answer_id": _answer_id(turns),
                "model_id": turns[0]["served"],
                # As the judge saw them: without inline thinking (export has no config, so the
                # default of keep_thinking applies).
                "choices": [{"index": 0, "turns": [answer_text(r["text"], False) for r in turns]}],
                "tstamp": max(row["created"] for row in turns),
            }
        )
    return _AnswerLines(by_model, dict(incomplete))


async def _turn_counts(store: Store, bench: str, answers: Iterable[Any]) -> dict[int, int]:
    """Turns per question: from the stored question set, else the most any model answered."""
    counts: dict[int, int] = {}
    for row in answers:
        counts[row["question_id"]] = max(counts.get(row["question_id"], 0), row["turn"])
    known = await store.fetch(rows.QUESTION_TURN_COUNTS, {"bench": bench})
    counts.update({qid: n for qid, n in known if qid in counts})
    return counts


def _answer_id(turns: list[Any]) -> str:
    # An imported line keeps its FastChat answer_id; anything else gets a 22-character id (the
    # length of FastChat's shortuuid) derived from the response keys, stable across exports.
    requests = [row["imported_request"] for row in turns]
    imported = {orjson.loads(request).get("answer_id") for request in requests if request}
    if len(imported) == 1 and all(request is not None for request in requests):
        (answer_id,) = imported
        if isinstance(answer_id, str):
            return answer_id
    keys = "\n".join(row["response_key"] for row in turns)
    return hashlib.sha256(keys.encode()).hexdigest()[:22]


async def _stored_judgments(store: Store, bench: str, judge: str | None) -> list[_StoredJudgment]:
    sql = rows.EXPORTED_JUDGMENTS.format(judge="" if judge is None else "AND j.judge = :judge")
    found = await store.fetch(sql, {"bench": bench, "judge": judge})
    return [
        _StoredJudgment(
            identity=JudgeIdentity(judge_name, judge_model, judge_api),
            kind=kind,
            model=model,
            opponent=opponent,
            question_id=qid,
            turn=turn,
            game=game,
            prompt_name=prompt_name,
            score=score,
            winner=winner,
            created=created,
            user_prompt=_user_prompt(request),
            text=text,
            sample=sample,
            settings=settings,
        )
        for (
            judge_name, judge_model, judge_api, kind, model, opponent, qid, turn, game,
            prompt_name, score, winner, created, request, text, sample, settings,
        ) in found
    ]  # fmt: skip


def _user_prompt(request: bytes | str) -> str:
    """The last user message of a stored request: generated and imported requests both have one."""
    messages = orjson.loads(request).get("messages") or []
    users = [
        m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "user"
    ]
    return users[-1] if users else ""


def _judge_files(
    judgments: list[_StoredJudgment],
) -> list[tuple[str, JudgeIdentity, list[_StoredJudgment]]]:
    """One file stem per judge identity: the label, suffixed when identities share a label."""
    by_identity: dict[JudgeIdentity, list[_StoredJudgment]] = defaultdict(list)
    for row in judgments:
        by_identity[row.identity].append(row)
    labels: dict[str, int] = defaultdict(int)
    for identity in by_identity:
        labels[identity.name] += 1
    names = {
        identity: identity.name
        if labels[identity.name] == 1
        else f"{identity.name}-{identity.model}-{identity.api}"
        for identity in by_identity
    }
    stems = file_stems(names.values())
    return [(stems[names[identity]], identity, judged) for identity, judged in by_identity.items()]


def _identity_field(identity: JudgeIdentity, judged: list[_StoredJudgment]) -> dict[str, Any]:
    """Who judged, beyond FastChat's `judge` pair; FastChat's show_result ignores the extra key."""
    samples = 1 + max(row.sample for row in judged)
    return {
        "judge_identity": {
            "name": identity.name,
            "model": identity.model,
            "api": identity.api,
            "samples": samples,
        }
    }


def _single_line(row: _StoredJudgment) -> dict[str, Any]:
    return {
        "question_id": row.question_id,
        "model": row.model,
        "judge": [row.identity.name, row.prompt_name],
        "user_prompt": row.user_prompt,
        "judgment": row.text,
        "score": _fastchat_score(row.score, row.text),
        "turn": row.turn,
        "tstamp": row.created,
        "sample": row.sample,
        **_settings_field(row),
    }


def _settings_field(row: _StoredJudgment) -> dict[str, Any]:
    """The judge's reasoning settings (they change grades), which import reads back."""
    return {} if row.settings is None else {"judge_settings": stored_settings(row.settings)}


def _fastchat_score(score: float | None, text: str) -> int | float:
    if score is None:
        return -1
    if not math.isfinite(score):
        # A rating too large for a float: FastChat's file holds the int its parser read.
        literal = rating_literal(text)
        return literal if literal is not None else -1
    parsed = parse_rating(text).score
    if float(parsed) == score:  # the stored float of a 23-digit rating: write FastChat's int
        return parsed
    return int(score) if score == int(score) else score


def _pair_lines(judged: Iterable[_StoredJudgment]) -> tuple[list[dict[str, Any]], tuple[int, ...]]:
    matches: dict[tuple[str, str, int, int, int], dict[int, _StoredJudgment]] = defaultdict(dict)
    for row in judged:
        matches[(row.model, row.opponent, row.question_id, row.turn, row.sample)][row.game] = row
    lines = []
    skipped = []
    for (_, _, qid, _, _), games in matches.items():
        if 1 not in games or 2 not in games:
            skipped.append(qid)
            continue
        g1, g2 = games[1], games[2]
        lines.append(
            {
                "question_id": g1.question_id,
                "model_1": g1.model,
                "model_2": g1.opponent,
                "g1_winner": g1.winner or "error",
                "g2_winner": g2.winner or "error",
                "judge": [g1.identity.name, g1.prompt_name],
                "g1_user_prompt": g1.user_prompt,
                "g1_judgment": g1.text,
                "g2_user_prompt": g2.user_prompt,
                "g2_judgment": g2.text,
                "turn": g1.turn,
                "tstamp": max(g1.created, g2.created),
                "sample": g1.sample,
                **_settings_field(g1),
            }
        )
    return lines, tuple(skipped)
