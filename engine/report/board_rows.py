"""The columns a judge's leaderboard and a panel's leaderboard share, written once.

A panel reads like one more judge (`engine.report.panel_show`, `panel_html`), so its rows carry the
same model columns as a judge's rows in `show --json` and in the report, and only its last columns
differ (items and left out, where a judge has its failure counts). Keeping the shared columns here
keeps the two tables from drifting apart.
"""

from __future__ import annotations

from typing import Any

from engine.report.markup import escape, model_cell, number
from engine.report.notes import ci_text
from engine.report.svg import ci_bar
from engine.scoring.summaries import PairModelSummary, SingleModelSummary

__all__ = ["pair_row_start", "pairwise_json", "single_json"]


def single_json(s: SingleModelSummary) -> dict[str, Any]:
    """A single-grading row's scores in `--json`: overall, per turn and the 95% interval."""
    return {
        "model": s.model,
        "score": s.score,
        "turn_1": s.turn_1,
        "turn_2": s.turn_2,
        "ci_95": None if s.ci is None else [s.ci.low, s.ci.high],
    }


def pairwise_json(s: PairModelSummary) -> dict[str, Any]:
    """A pairwise row's counts and FastChat's three rates in `--json`, with the 95% interval."""
    return {
        "model": s.model,
        "win": s.win,
        "loss": s.loss,
        "tie": s.tie,
        "win_rate": s.win_rate,
        "loss_rate": s.loss_rate,
        "win_rate_adjusted": s.win_rate_adjusted,
        "ci_95": None if s.ci is None else [s.ci.low, s.ci.high],
    }


def pair_row_start(rank: int, s: PairModelSummary, colors: dict[str, str]) -> str:
    """A pairwise HTML row up to its interval and bar; the caller adds its last cell and `</tr>`."""
    bar = "" if s.ci is None else ci_bar(s.win_rate_adjusted, s.ci.low, s.ci.high, (0.0, 1.0))
    return (
        f'<tr data-model="{escape(s.model)}"><td class="rank">{rank}</td>'
        f"{model_cell(s.model, colors)}"
        f"<td>{s.win}</td><td>{s.loss}</td><td>{s.tie}</td><td>{number(s.win_rate)}</td>"
        f"<td>{number(s.loss_rate)}</td><td>{number(s.win_rate_adjusted)}</td>"
        f'<td class="ci">{ci_text(s)}</td><td class="ci-cell">{bar}</td>'
    )
