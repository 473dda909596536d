"""What an import would overwrite in the store: answers and judgments it holds with other content.

Importing `alpha.jsonl` into a store where `alpha` was generated (or imported from another file)
replaces those answers, and every judgment already made of them then grades text the store no
longer holds. Re-importing the same files changes nothing (their rows hash to the same keys), so
only rows whose content differs count. The import is refused while there are any, unless the user
says `--force`; then the report says how many were replaced.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from engine.errors import InputError

__all__ = ["Replaced", "check_replacements"]

Params = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Replaced:
    answers: tuple[tuple[str, int], ...] = ()  # (model, stored answer turns replaced)
    judgments: tuple[tuple[str, int], ...] = ()  # (judge, stored judgments replaced)

    def __bool__(self) -> bool:
        return bool(self.answers or self.judgments)

    def describe(self) -> str:
        parts = [f"{count} answer turns of model {model!r}" for model, count in self.answers]
        parts += [f"{count} judgments by judge {judge!r}" for judge, count in self.judgments]
        return ", ".join(parts[:4]) + (f" and {len(parts) - 4} more" if len(parts) > 4 else "")


async def check_replacements(
    db: aiosqlite.Connection,
    store_path: object,
    answers: Sequence[Params],
    judgments: Sequence[Params],
    *,
    force: bool,
) -> Replaced:
    """Stored rows the import would overwrite with other content; refused unless `force`."""
    replaced = Replaced(
        await _replaced_answers(db, answers), await _replaced_judgments(db, judgments)
    )
    if replaced and not force:
        raise InputError(
            f"{store_path}: holds other content for {replaced.describe()}; importing would "
            "replace them (and leave their judgments grading text that is gone): pass --force "
            "to replace them, or import under another name (rename the file)"
        )
    return replaced


async def _replaced_answers(db: aiosqlite.Connection, rows: Sequence[Params]) -> tuple:
    # rows: (model, bench, question_id, turn, sample, response_key, ...)
    models = sorted({row[0] for row in rows})
    if not models:
        return ()
    marks = ",".join("?" * len(models))
    stored = await _fetch(
        db,
        "SELECT model, bench, question_id, turn, sample, response_key FROM answers "
        f"WHERE model IN ({marks})",
        models,
    )
    keys = {tuple(row[:5]): row[5] for row in stored}
    counts = Counter(row[0] for row in rows if keys.get(tuple(row[:5]), row[5]) != row[5])
    return tuple(sorted(counts.items()))


async def _replaced_judgments(db: aiosqlite.Connection, rows: Sequence[Params]) -> tuple:
    # rows: (judge, judge_model, judge_api, bench, kind, model, opponent, question_id, turn,
    # game, sample, prompt_name, score, winner, status, response_key, ...)
    judges = sorted({row[0] for row in rows})
    if not judges:
        return ()
    marks = ",".join("?" * len(judges))
    stored = await _fetch(
        db,
        "SELECT judge, judge_model, judge_api, bench, kind, model, opponent, question_id, turn, "
        f"game, sample, response_key FROM judgments WHERE judge IN ({marks})",
        judges,
    )
    keys = {tuple(row[:11]): row[11] for row in stored}
    counts = Counter(row[0] for row in rows if keys.get(tuple(row[:11]), row[15]) != row[15])
    return tuple(sorted(counts.items()))


async def _fetch(db: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    async with db.execute(sql, params) as cursor:
        return list(await cursor.fetchall())
