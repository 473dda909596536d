"""The Bradley-Terry table beside pairwise-all win rates, in `show`, `--json` and the report.

FastChat's win rates rank each model against the field it happened to meet; Bradley-Terry fits one
strength per model from every game (arena-hard's way, `engine.scoring.bradley_terry`). It is an
extra table only for all-pairs judgments: FastChat's own numbers stay as they are. The bootstrap
is seeded, so the same store gives the same intervals on every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine.display import format_number, format_table, terminal_text
from engine.report.markup import escape, model_cell, number, table
from engine.report.svg import ci_bar
from engine.scoring.bradley_terry import (
    DEFAULT_ROUNDS,
    BradleyTerryBoard,
    BradleyTerryRating,
    battles_from_matches,
    bradley_terry,
)
from engine.scoring.summaries import PairMatch

__all__ = ["BT_NOTE", "bt_html", "bt_json", "bt_text", "pairwise_all_ratings"]

HEADERS = ("#", "model", "rating", "95% CI", "battles")  # ranked, as the report's tables
BT_NOTE = (
    "Bradley-Terry ratings (arena-hard's way): every game is a battle, a tie half a win each; "
    "Elo scale, mean 1000; the 95% interval is a bootstrap over battles "
    f"({DEFAULT_ROUNDS} resamples, seeded). Unlike win rates, a win counts by whom it was against."
)
SEPARATED_NOTE = (
    "Some models won (or lost) every battle against the rest: their ratings rest on a weak prior, "
    "not on the data alone."
)


def pairwise_all_ratings(matches: Iterable[PairMatch]) -> BradleyTerryBoard | None:
    """The ratings from every game of all-pairs matches; None when no game had a verdict."""
    board = bradley_terry(battles_from_matches(matches))
    return board if board.ratings else None


def _ci(rating: BradleyTerryRating) -> str:
    if rating.ci is None:
        return "-"
    return f"[{format_number(rating.ci.low, 1)}, {format_number(rating.ci.high, 1)}]"


def bt_text(board: BradleyTerryBoard | None) -> str:
    """The table for the terminal, with its note; empty without a board."""
    if board is None:
        return ""
    rows = [
        [rank, terminal_text(r.model, name=True), format_number(r.rating, 1), _ci(r), r.battles]
        for rank, r in enumerate(board.ratings, 1)
    ]
    separated = f"\n{SEPARATED_NOTE}" if board.separated else ""
    title = (
        f"Bradley-Terry ratings from {board.battles} games (a tie half a win; Elo scale, "
        f"mean 1000; 95% CI: {board.rounds} bootstrap resamples, seeded)"
    )
    return f"\n\n{title}\n{format_table(HEADERS, rows, left_columns=2)}{separated}"


def bt_json(board: BradleyTerryBoard | None) -> dict[str, Any] | None:
    if board is None:
        return None
    return {
        "battles": board.battles,
        "rounds": board.rounds,
        "separated": board.separated,
        "models": [
            {
                "model": r.model,
                "rating": r.rating,
                "ci_95": None if r.ci is None else [r.ci.low, r.ci.high],
                "battles": r.battles,
            }
            for r in board.ratings
        ],
    }


def bt_html(board: BradleyTerryBoard | None, colors: Mapping[str, str]) -> str:
    """The table for the report, its interval bars on one shared scale."""
    if board is None:
        return ""
    spans = [(r.rating, r.rating) if r.ci is None else (r.ci.low, r.ci.high) for r in board.ratings]
    domain = (min(low for low, _ in spans) - 10.0, max(high for _, high in spans) + 10.0)
    rows = []
    for rank, r in enumerate(board.ratings, 1):
        bar = "" if r.ci is None else ci_bar(r.rating, r.ci.low, r.ci.high, domain)
        rows.append(
            f'<tr data-model="{escape(r.model)}"><td class="rank">{rank}</td>'
            f"{model_cell(r.model, colors)}<td>{number(r.rating, 1)}</td>"
            f'<td>{escape(_ci(r))}</td><td class="ci-cell">{bar}</td><td>{r.battles}</td></tr>'
        )
    separated = f" {SEPARATED_NOTE}" if board.separated else ""
    return (
        f'<div class="bradley-terry"><h3>Bradley-Terry ratings ({board.battles} battles)</h3>'
        f'<p class="note">{escape(BT_NOTE)}{escape(separated)}</p>'
        + table(
            ["#", "model", "rating", "95% CI", f"CI ({domain[0]:.0f}–{domain[1]:.0f})", "battles"],
            rows,
        )
        + "</div>"
    )
