"""The report's sweep section: score against training step for every sweep in the store.

Per sweep and judge: the overall score against step with its 95% band and the best checkpoint
marked, one small chart per category, and the paired-difference table that says which
checkpoints are distinguishable from the best (the numbers of `show --sweep`, from the same
`SweepBoard`s). Every name is escaped here; the section adds no script.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from engine.display import format_number
from engine.report.sweep_data import SweepBoard
from engine.report.sweep_svg import StepPoint, step_chart
from engine.scoring.sweep import CheckpointSummary, Estimate, SweepSummary

__all__ = ["SWEEP_ANCHOR", "sweep_section"]

SWEEP_ANCHOR = "sweeps"
# Small multiples sit side by side; the section's only styling.
_STYLE = (
    "<style>.multiples{display:flex;flex-wrap:wrap;gap:8px 18px}"
    ".step-chart .chart-title{font-size:12px;font-weight:600}"
    "tr.best-row td{font-weight:600}td.yes{color:#2f855a}td.no{color:#5d6678}</style>"
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def sweep_section(boards: Sequence[SweepBoard]) -> str:
    """The whole section, or "" when the store holds no sweep."""
    if not boards:
        return ""
    parts = [
        f'<section id="{SWEEP_ANCHOR}"><h2>Score against training step</h2>{_STYLE}',
        '<p class="note">Checkpoints whose labels differ only in their step (step-100, '
        "step-200) form a sweep. The band is each checkpoint's 95% bootstrap interval over "
        "questions; the red point is the best checkpoint (highest overall among the fully "
        "judged). <b>Distinguishable</b> means a paired bootstrap over the questions both "
        "checkpoints were graded on puts the difference's 95% interval away from 0: the same "
        "questions and judge, so judge noise and hard questions cancel.</p>",
    ]
    parts += [_board(board) for board in boards]
    parts.append("</section>")
    return "".join(parts)


def _board(board: SweepBoard) -> str:
    summary = board.summary
    judge = board.judge
    title = f"Sweep {board.sweep} · judge {judge.name} (model {judge.model}, api {judge.api})"
    multiples = "".join(
        step_chart(_points(summary, _category(name)), title=name, small=True)
        for name in summary.categories
    )
    return (
        f'<div class="sweep" data-sweep="{_e(board.sweep)}"><h3>{_e(title)}</h3>'
        + step_chart(_points(summary, lambda c: c.overall), title="overall")
        + f'<h4>Per category</h4><div class="multiples">{multiples}</div>'
        + "<h4>Against the best checkpoint (paired)</h4>"
        + _difference_table(summary)
        + "</div>"
    )


def _category(name: str) -> Callable[[CheckpointSummary], Estimate | None]:
    return lambda checkpoint: checkpoint.category(name)


def _points(
    summary: SweepSummary, pick: Callable[[CheckpointSummary], Estimate | None]
) -> list[StepPoint]:
    points = []
    for checkpoint in summary.checkpoints:
        estimate = pick(checkpoint)
        if estimate is None or estimate.score is None:
            continue
        ci = estimate.ci
        points.append(
            StepPoint(
                checkpoint.label,
                checkpoint.step,
                estimate.score,
                None if ci is None else ci.low,
                None if ci is None else ci.high,
                best=checkpoint.label == summary.best,
            )
        )
    return points


def _difference_table(summary: SweepSummary) -> str:
    headers = ["step", "checkpoint", "overall", "95% CI", "vs best", "95% CI (paired)"]
    headers += ["questions", "distinguishable"]
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    rows = "".join(_difference_row(c, summary) for c in summary.checkpoints)
    return (
        f'<div class="scroll"><table class="sweep-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _difference_row(checkpoint: CheckpointSummary, summary: SweepSummary) -> str:
    overall = checkpoint.overall
    best = checkpoint.label == summary.best
    partial = "" if summary.complete(checkpoint) else " (partial)"
    cells = [
        str(checkpoint.step),
        _e(checkpoint.label) + (" ★" if best else "") + partial,
        format_number(overall.score, 2),
        _interval(overall),
    ]
    paired = checkpoint.versus_best
    if best:
        cells += ["best", "", "", ""]
    elif paired is None:
        cells += ["-", "-", "-", "-"]
    else:
        ci = paired.ci
        cells += [
            f"{paired.difference:+.2f}",
            "-" if ci is None else f"[{ci.low:+.2f}, {ci.high:+.2f}]",
            str(paired.questions),
        ]
    body = "".join(f"<td>{cell}</td>" for cell in cells)
    if not best and paired is not None:
        verdict = "yes" if paired.distinguishable else "no"
        body += f'<td class="{verdict}">{verdict}</td>'
    row_class = ' class="best-row"' if best else ""
    return f'<tr{row_class} data-label="{_e(checkpoint.label)}">{body}</tr>'


def _interval(estimate: Estimate) -> str:
    ci = estimate.ci
    return "-" if ci is None else f"[{format_number(ci.low, 2)}, {format_number(ci.high, 2)}]"
