"""FastChat `llm_judge` interop: its answer and judgment files into the store, and back out.

Import lets published or third-party answers sit next to ours (to be judged, compared, shown);
export lets FastChat's own `show_result.py` check our numbers. The two directions live in
`interop_import` and `interop_export`; this module is the one name the rest of the engine uses.
"""

from __future__ import annotations

from pathlib import Path

from engine.data import load_bench
from engine.interop_export import ExportedFile, ExportReport, export_fastchat
from engine.interop_import import (
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
    "export_fastchat",
    "import_fastchat",
    "record_questions",
    "resolve_fastchat_source",
]


async def record_questions(store_path: Path, data_dir: Path, bench: str) -> None:
    """Store the bench's questions next to imported answers, so `show` knows their categories."""
    from engine.store import open_store

    questions = load_bench(data_dir, bench, need_judging=False)
    store = await open_store(store_path, write=True)
    try:
        await store.record_questions(questions)
    finally:
        await store.close()
