"""JSON Lines files (FastChat's format for questions, prompts, answers and judgments) and their
fields, every problem reported as `file:line` so the user can fix the line by hand.

Question sets, judge prompts and references (`engine.bench.data`) and FastChat answer and judgment
files (`engine.interop.importing`) are read through the same checks: a field that is missing or of
the wrong type, or a question id SQLite cannot store, is one `DataError` naming file, line and
field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from engine.errors import DataError

__all__ = ["QUESTION_ID_MAX", "field", "optional_field", "question_id_field", "read_jsonl"]

QUESTION_ID_MAX = 2**63 - 1  # question ids are SQLite integers

Kind = type | tuple[type, ...]


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Parse a JSONL file into (line number, object) pairs; blank lines are skipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the data dir") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    rows = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{number}: not valid JSON ({exc}); fix or remove the line"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        rows.append((number, obj))
    return rows


def field(path: Path, number: int, obj: dict[str, Any], key: str, kind: Kind) -> Any:
    """`obj[key]`, which must be of `kind` (a boolean is no number)."""
    value = obj.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError(f"{path}:{number}: field {key!r} is missing or not {_kind_name(kind)}")
    return value


def optional_field(path: Path, number: int, obj: dict[str, Any], key: str, kind: Kind) -> Any:
    """`obj[key]` of `kind`, or None when it is absent or null."""
    return None if obj.get(key) is None else field(path, number, obj, key, kind)


def question_id_field(path: Path, number: int, obj: dict[str, Any]) -> int:
    qid: int = field(path, number, obj, "question_id", int)
    if not 0 <= qid <= QUESTION_ID_MAX:
        raise DataError(
            f"{path}:{number}: field 'question_id' = {qid} is out of range; "
            f"use an integer from 0 to {QUESTION_ID_MAX}"
        )
    return qid


def _kind_name(kind: Kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)
