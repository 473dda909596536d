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

from engine.errors import InputError
from engine.store import rows
from engine.store.rows import AnswerRow, JudgmentRow
from engine.store.store import Store

__all__ = ["Replaced", "check_replacements"]


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
    store: Store,
    store_path: object,
    answers: Sequence[AnswerRow],
    judgments: Sequence[JudgmentRow],
    *,
    force: bool,
) -> Replaced:
    """Stored rows the import would overwrite with other content; refused unless `force`."""
    replaced = Replaced(
        await _replaced_answers(store, answers), await _replaced_judgments(store, judgments)
    )
    if replaced and not force:
        raise InputError(
            f"{store_path}: holds other content for {replaced.describe()}; importing would "
            "replace them (and leave their judgments grading text that is gone): pass --force "
            "to replace them, or import under another name (rename the file)"
        )
    return replaced


async def _replaced_answers(store: Store, answers: Sequence[AnswerRow]) -> tuple:
    models = sorted({row.model for row in answers})
    if not models:
        return ()
    stored = await store.fetch(f"{rows.STORED_ANSWER_KEYS}({rows.in_list(len(models))})", models)
    keys = {tuple(row[:5]): row[5] for row in stored}
    counts = Counter(
        row.model
        for row in answers
        if keys.get(_answer_slot(row), row.response_key) != row.response_key
    )
    return tuple(sorted(counts.items()))


def _answer_slot(row: AnswerRow) -> tuple[str, str, int, int, int]:
    return (row.model, row.bench, row.question_id, row.turn, row.sample)


async def _replaced_judgments(store: Store, judgments: Sequence[JudgmentRow]) -> tuple:
    judges = sorted({row.judge for row in judgments})
    if not judges:
        return ()
    sql = f"{rows.STORED_JUDGMENT_KEYS}({rows.in_list(len(judges))})"
    keys = {tuple(row[:11]): row[11] for row in await store.fetch(sql, judges)}
    counts = Counter(
        row.judge for row in judgments if keys.get(row.slot(), row.response_key) != row.response_key
    )
    return tuple(sorted(counts.items()))
