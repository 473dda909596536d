"""`mtbench show --sweep`: score against step as text, JSON or CSV, from `SweepBoards`.

Checkpoints are listed in step order with overall, turn 1, turn 2 and per-category means, each
with its 95% bootstrap interval; the best is marked, and every other checkpoint says whether it is
distinguishable from the best by the paired bootstrap (`engine.scoring.paired`), not by whether
two marginal intervals overlap. Names are escaped for the terminal; JSON carries them as they
are, and CSV too, except that a text cell a spreadsheet would run as a formula (`=HYPERLINK(...)`,
`@SUM(...)`) starts with a `'`, OWASP's defence against CSV injection. The JSON is also what the
trackers log (`engine.interop.trackers`).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from engine.display import format_number, format_table, terminal_text
from engine.reasoning import describe_settings, stored_settings
from engine.report.sweep_data import SweepBoard, SweepBoards
from engine.scoring.paired import PairedDifference
from engine.scoring.summaries import ConfidenceInterval
from engine.scoring.sweep import CheckpointSummary, Estimate, SweepSummary

__all__ = ["format_sweeps", "sweep_board_json", "sweep_boards_json", "sweeps_csv"]

BEST_MARK = "*"


def _name(value: str) -> str:
    return terminal_text(value, name=True)


def _interval(ci: ConfidenceInterval | None, digits: int = 2) -> str:
    if ci is None:
        return "-"
    return f"[{format_number(ci.low, digits)}, {format_number(ci.high, digits)}]"


def _versus(checkpoint: CheckpointSummary, best: str | None) -> list[str]:
    if checkpoint.label == best:
        return ["best", "", ""]
    paired = checkpoint.versus_best
    if paired is None:
        return ["-", "-", "-"]
    verdict = "yes" if paired.distinguishable else "no (noise)"
    return [f"{paired.difference:+.2f}", _interval(paired.ci), verdict]


def _board_title(board: SweepBoard) -> str:
    judge = board.judge
    settings = f", {_name(describe_settings(board.settings))}" if board.settings else ""
    samples = f", median of {board.samples} samples" if board.samples > 1 else ""
    return (
        f"Sweep {_name(board.sweep)} · judge {_name(judge.name)} (model {_name(judge.model)}, "
        f"api {_name(judge.api)}{settings}{samples})"
    )


def _format_board(board: SweepBoard) -> str:
    summary = board.summary
    rows = [
        [
            c.step,
            _name(c.label) + _marks(c, summary),
            format_number(c.turn_1.score, 2),
            format_number(c.turn_2.score, 2),
            format_number(c.overall.score, 2),
            _interval(c.overall.ci),
            *_versus(c, summary.best),
            c.overall.rows,
        ]
        for c in summary.checkpoints
    ]
    headers = ["step", "checkpoint", "turn 1", "turn 2", "overall", "95% CI"]
    headers += ["vs best", "95% CI (paired)", "distinguishable", "rows"]
    category_headers = ["step", "checkpoint", *[_name(n) for n in summary.categories]]
    categories = [  # the label too: two checkpoints can share a step (step-100, step-0100)
        [c.step, _name(c.label), *[_category_cell(c.category(name)) for name in summary.categories]]
        for c in summary.checkpoints
    ]
    return (
        f"{_board_title(board)}\n{format_table(headers, rows)}\n"
        f"{BEST_MARK} best overall; (partial): fewer judgments than the sweep's most-judged "
        "checkpoint; 'distinguishable': the paired bootstrap over the questions both were "
        "graded on puts the difference's 95% CI away from 0\n\n"
        "Per category (mean [95% CI])\n"
        f"{format_table(category_headers, categories)}"
    )


def _marks(checkpoint: CheckpointSummary, summary: SweepSummary) -> str:
    best = f" {BEST_MARK}" if checkpoint.label == summary.best else ""
    return best + ("" if summary.complete(checkpoint) else " (partial)")


def _category_cell(estimate: Estimate | None) -> str:
    if estimate is None or estimate.score is None:
        return "-"
    return f"{format_number(estimate.score, 2)} {_interval(estimate.ci, 1)}"


def format_sweeps(boards: SweepBoards) -> str:
    text = "\n\n".join(_format_board(board) for board in boards.boards)
    for note in boards.notes:
        text += f"\n\n{terminal_text(note)}"
    return text


def _ci_json(ci: ConfidenceInterval | None) -> list[float] | None:
    return None if ci is None else [ci.low, ci.high]


def _estimate_json(estimate: Estimate) -> dict[str, Any]:
    return {"score": estimate.score, "ci_95": _ci_json(estimate.ci), "rows": estimate.rows}


def _paired_json(paired: PairedDifference | None) -> dict[str, Any] | None:
    if paired is None:
        return None
    return {
        "difference": paired.difference,
        "ci_95": _ci_json(paired.ci),
        "questions": paired.questions,
        "distinguishable": paired.distinguishable,
    }


def _checkpoint_json(
    checkpoint: CheckpointSummary, best: str | None, complete: bool
) -> dict[str, Any]:
    return {
        "label": checkpoint.label,
        "step": checkpoint.step,
        "best": checkpoint.label == best,
        "complete": complete,
        "overall": _estimate_json(checkpoint.overall),
        "turn_1": _estimate_json(checkpoint.turn_1),
        "turn_2": _estimate_json(checkpoint.turn_2),
        "categories": {name: _estimate_json(e) for name, e in checkpoint.categories},
        "missing": checkpoint.missing,
        "versus_best": _paired_json(checkpoint.versus_best),
    }


def sweep_board_json(board: SweepBoard) -> dict[str, Any]:
    summary = board.summary
    return {
        "sweep": board.sweep,
        "judge": {
            "name": board.judge.name,
            "model": board.judge.model,
            "api": board.judge.api,
            "samples": board.samples,
            "settings": [stored_settings(s) for s in board.settings],
        },
        "best": summary.best,
        "confidence": summary.confidence,
        "categories": list(summary.categories),
        "checkpoints": [
            _checkpoint_json(c, summary.best, summary.complete(c)) for c in summary.checkpoints
        ],
    }


def sweep_boards_json(boards: SweepBoards) -> dict[str, Any]:
    """What `mtbench show --sweep --json` prints."""
    return {
        "store": str(boards.store),
        "bench": boards.bench,
        "sweeps": [sweep_board_json(board) for board in boards.boards],
        "notes": list(boards.notes),
    }


_ESTIMATES = ("overall", "turn_1", "turn_2")


def sweeps_csv(boards: SweepBoards) -> str:
    """One row per checkpoint and judge; each mean with its interval's bounds beside it."""
    categories = sorted({name for b in boards.boards for name in b.summary.categories})
    header = ["sweep", "judge", "judge_model", "judge_api", "step", "checkpoint", "best"]
    for name in [*_ESTIMATES, *categories]:
        header += [name, f"{name}_ci_low", f"{name}_ci_high"]
    header += ["vs_best", "vs_best_ci_low", "vs_best_ci_high", "distinguishable_from_best"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_inert(header))
    for board in boards.boards:
        for checkpoint in board.summary.checkpoints:
            writer.writerow(_inert(_csv_row(board, checkpoint, categories)))
    return out.getvalue()


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(row: list[Any]) -> list[Any]:
    """Text cells a spreadsheet would evaluate get a leading `'`; numbers stay numbers."""
    return [
        f"'{cell}" if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS) else cell
        for cell in row
    ]


def _csv_row(board: SweepBoard, checkpoint: CheckpointSummary, categories: list[str]) -> list[Any]:
    judge = board.judge
    best = checkpoint.label == board.summary.best
    row: list[Any] = [board.sweep, judge.name, judge.model, judge.api, checkpoint.step]
    row += [checkpoint.label, "yes" if best else "no"]
    estimates = [getattr(checkpoint, name) for name in _ESTIMATES]
    estimates += [checkpoint.category(name) for name in categories]
    for estimate in estimates:
        row += _csv_estimate(None if estimate is None else estimate.score, estimate)
    paired = checkpoint.versus_best
    if paired is None:
        return [*row, "", "", "", ""]
    ci = paired.ci
    bounds = ["", ""] if ci is None else [ci.low, ci.high]
    return [*row, paired.difference, *bounds, "yes" if paired.distinguishable else "no"]


def _csv_estimate(score: float | None, estimate: Estimate | None) -> list[Any]:
    if score is None or estimate is None:
        return ["", "", ""]
    ci = estimate.ci
    return [score, *(["", ""] if ci is None else [ci.low, ci.high])]
