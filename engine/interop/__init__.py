"""FastChat `llm_judge` interop: its answer and judgment files into the store, and back out.

Import lets published or third-party answers sit next to ours (to be judged, compared, shown);
export lets FastChat's own `show_result.py` check our numbers. The two directions live in
`interop_import` and `interop_export`; this module is the one name the rest of the engine uses.
"""

from __future__ import annotations

from pathlib import Path

from engine.bench.data import load_bench
from engine.display import terminal_text
from engine.interop.exporting import ExportedFile, ExportReport, LeftOut, export_fastchat
from engine.interop.importing import (
    FastChatSource,
    ImportedJudge,
    ImportedModel,
    ImportReport,
    import_fastchat,
    resolve_fastchat_source,
)

__all__ = [
    "ExportReport",
    "ExportedFile",
    "FastChatSource",
    "ImportReport",
    "ImportedJudge",
    "ImportedModel",
    "LeftOut",
    "export_fastchat",
    "format_export",
    "import_fastchat",
    "record_questions",
    "resolve_fastchat_source",
]

SHOWN_IDS = 8  # question ids named per model in an export's "left out" line


async def record_questions(store_path: Path, data_dir: Path, bench: str) -> None:
    """Store the bench's questions next to imported answers, so `show` knows their categories."""
    from engine.store.store import open_store

    questions = load_bench(data_dir, bench, need_judging=False)
    store = await open_store(store_path, write=True)
    try:
        await store.record_questions(questions)
    finally:
        await store.close()


def format_export(report: ExportReport) -> str:
    """What an export wrote, replaced and left out (and why), for the terminal."""
    lines = [f"{terminal_text(file.path)} ({file.lines} lines)" for file in report.files]
    if report.replaced:
        lines.append(f"replaced {len(report.replaced)} files that were there (--force)")
    for left in report.left_out:
        shown = ", ".join(str(qid) for qid in sorted(set(left.question_ids))[:SHOWN_IDS])
        more = ", ..." if len(set(left.question_ids)) > SHOWN_IDS else ""
        lines.append(
            f"left out: {len(left.question_ids)} {left.kind} of "
            f"{terminal_text(left.name, name=True)} because {left.reason} "
            f"(questions {shown}{more})"
        )
    if report.others:
        lines.append(
            f"note: {len(report.others)} other .jsonl files there were not written by this "
            f"export (first: {terminal_text(report.others[0].name)}); importing the folder "
            "would import them too"
        )
    return "\n".join(lines)
