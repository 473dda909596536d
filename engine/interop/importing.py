"""FastChat `llm_judge` answer and judgment files into the store, all or nothing.

Answers produced elsewhere (the 31 published MT-Bench models, a colleague's FastChat run) become
ordinary stored answers, so they can be judged, compared and shown next to our own. Everything is
parsed and checked before the store is opened, then written in one transaction: a malformed line
anywhere leaves the store untouched. Rows get synthetic response keys hashed from their content and
`created` = the file's `tstamp`, so importing the same files again changes nothing.

FastChat's rules are kept: the model name is the answer file's stem (not `model_id`), and a later
line for the same question wins. One exception makes export and import a round trip: a file our
export named with a sanitized stem (a label such as `a/b` is no file name) carries the real label
in each line, and that label is used (`engine.interop.names`); two files naming the same model are
refused. For judgments the slot (judge, model, question, turn, game, sample) is the store's primary
key, so a repeated line replaces the earlier one where `show_result` would count both;
`ImportReport.superseded` says how often that happened. Our exported judgment lines also say which
sample they are and who judged (`judge_identity`): both are kept, so two judges that share a label,
or the samples of a repeated judging, stay apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import DataError
from engine.interop.conflicts import Replaced, check_replacements
from engine.interop.fields import IMPORT_API
from engine.interop.names import refuse_duplicate_labels
from engine.interop.parse import (
    Batch,
    ImportedJudge,
    ImportedModel,
    judge_counts,
    parse_answer_file,
    parse_judgment_file,
)
from engine.store import rows
from engine.store.store import Store, open_store

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


@dataclass(frozen=True, slots=True)
class FastChatSource:
    """Where the files of one import were found."""

    answer_files: tuple[Path, ...]
    judgment_files: tuple[Path, ...]


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
    batch = Batch()
    models = tuple(parse_answer_file(path, bench, batch) for path in found.answer_files)
    refuse_duplicate_labels(found.answer_files, [m.model for m in models])
    for path in found.judgment_files:
        parse_judgment_file(path, bench, batch)
    store = await open_store(Path(store_path), write=True)
    try:
        replaced = await _write(store, store_path, batch, force=force)
    finally:
        await store.close()
    report = ImportReport(found, models, judge_counts(batch), batch.superseded, replaced)
    log.info("imported %d answer and %d judgment rows", report.answer_rows, report.judgment_rows)
    return report


async def _write(store: Store, store_path: Path, batch: Batch, *, force: bool) -> Replaced:
    judgment_responses = [response for response, _ in batch.judgments.values()]
    judgments = [judgment for _, judgment in batch.judgments.values()]
    db = store.db
    async with store.transaction("BEGIN IMMEDIATE"):
        replaced = await check_replacements(
            store, store_path, batch.answers, judgments, force=force
        )
        responses = [rows.params(row) for row in (*batch.responses, *judgment_responses)]
        await db.executemany(rows.INSERT_RESPONSE, responses)
        await db.executemany(rows.UPSERT_ANSWER, [rows.params(row) for row in batch.answers])
        await db.executemany(rows.UPSERT_JUDGMENT, [rows.params(row) for row in judgments])
    return replaced


def _files(folder: Path | None, pattern: str) -> tuple[Path, ...]:
    if folder is None or not folder.is_dir():
        return ()
    return tuple(sorted(p for p in folder.glob(pattern) if p.is_file()))


def _judgment_files(folder: Path | None) -> tuple[Path, ...]:
    return _files(folder, "*_single.jsonl") + _files(folder, "*_pair.jsonl")
