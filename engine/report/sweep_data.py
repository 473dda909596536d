"""Score against step, per judge and sweep, read from the store once: what `show --sweep`, the
trackers and the report's sweep section all show, so their numbers cannot disagree.

Only single-answer judgments place a checkpoint on a score axis; a judge with pairwise judgments
only is named in the notes. Every model with answers or judgments is a candidate member, so a
checkpoint answered but not judged yet is listed without scores. The store is opened read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.report.judged_views import select_judges
from engine.report.results import StoredJudge, load_single_scores
from engine.report.sweep_members import ConfiguredSweep, Sweep, find_sweeps
from engine.scoring.summaries import SingleScore
from engine.scoring.sweep import SweepSummary, summarize_sweep
from engine.store.rows import JudgeIdentity
from engine.store.store import Store, open_store

__all__ = ["SweepBoard", "SweepBoards", "gather_sweeps", "sweep_boards"]


@dataclass(frozen=True, slots=True)
class SweepBoard:
    """One sweep as one judge graded it."""

    sweep: str
    judge: JudgeIdentity
    samples: int  # judge samples per item (scores are medians when > 1)
    settings: tuple[str, ...]  # the judge's reasoning settings (JSON)
    summary: SweepSummary


@dataclass(frozen=True, slots=True)
class SweepBoards:
    store: Path  # resolved: trackers name their runs after it
    bench: str
    boards: tuple[SweepBoard, ...]
    notes: tuple[str, ...] = ()


async def sweep_boards(
    store_path: Path,
    bench: str,
    *,
    judge: str | None = None,
    configured: tuple[ConfiguredSweep, ...] | None = None,
) -> SweepBoards:
    """Every sweep of every judge (or the one `judge` names); InputError when there is none."""
    store = await open_store(Path(store_path), write=False)
    try:
        boards, notes = await gather_sweeps(store, store_path, bench, judge, configured)
    finally:
        await store.close()
    if not boards:
        raise InputError(f"{store_path}: {_no_sweep(configured, notes)}")
    return SweepBoards(Path(store_path).resolve(), bench, tuple(boards), tuple(notes))


async def gather_sweeps(
    store: Store,
    store_path: Path,
    bench: str,
    judge: str | None,
    configured: tuple[ConfiguredSweep, ...] | None,
) -> tuple[list[SweepBoard], list[str]]:
    """The boards and notes of an open store (the HTML report shares its connection)."""
    boards: list[SweepBoard] = []
    notes: list[str] = []
    labels = set(await store.answered_models(bench))
    for views in await select_judges(store, store_path, bench, judge):
        stored = views.judge
        if "single" not in stored.kinds:
            notes.append(f"not shown: judge {stored.identity.name!r} has no single-answer grades")
            continue
        rows = await load_single_scores(store, bench, stored.identity)
        found = sorted(labels | {row.model for row in rows})
        for sweep in find_sweeps(found, configured):
            if not sweep.members:
                notes.append(f"sweep {sweep.name!r}: no stored model matches it yet")
                continue
            boards.append(_board(sweep, stored, rows))
    return boards, notes


def _board(sweep: Sweep, stored: StoredJudge, rows: list[SingleScore]) -> SweepBoard:
    return SweepBoard(
        sweep=sweep.name,
        judge=stored.identity,
        samples=stored.samples,
        settings=stored.settings,
        summary=summarize_sweep(rows, sweep.members),
    )


def _no_sweep(configured: tuple[ConfiguredSweep, ...] | None, notes: list[str]) -> str:
    if configured is not None:
        return "; ".join(notes) or "no sweep of the config has single-answer grades"
    why = "; ".join(notes)
    return (
        "no sweep: no two models whose labels differ only in their step (step-100, step-200)"
        + (f" ({why})" if why else "")
        + "; give -c CONFIG to name the sweep ([[model]] 'checkpoints' or 'step')"
    )
