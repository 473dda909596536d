"""A judge panel's leaderboard for `mtbench show`: as text, and as the `--json` it prints.

The panel's board reads like a judge's (FastChat's columns, the bootstrap interval over
questions) with what makes it a panel beside it: its members with their identities, how their
grades were pooled, and per model how many items it rests on and how many were left out because
not every member judged them. Names are escaped for the terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.display import format_number, format_table, terminal_text
from engine.report.board_rows import pairwise_json, single_json
from engine.report.notes import ci_text, judge_details
from engine.report.panel_data import PanelBoard

__all__ = ["format_panel", "left_out_note", "panel_json", "pooled_how", "unscored_lines"]

LEFT_OUT_NOTE = (
    "left out: {what} not every judge of the panel {did} (a judgment missing or failed{more}); "
    "the panel is scored only on {what} all of them {did}"
)


def pooled_how(board: PanelBoard) -> str:
    """`median of the judges' ratings` / `majority verdict per game (no majority: a tie)`."""
    if board.mode == "single":
        return f"{board.panel.aggregate} of the judges' ratings"
    return "majority verdict per game (no majority: a tie)"


def left_out_note(board: PanelBoard) -> str:
    """What 'left out' counts on this board."""
    if board.mode == "single":
        return LEFT_OUT_NOTE.format(what="items", did="rated", more=", or no parsable rating")
    return LEFT_OUT_NOTE.format(what="matches", did="gave a verdict in both games of", more="")


def _name(value: str) -> str:
    return terminal_text(value, name=True)


def _num(value: float | None) -> str:
    return format_number(value, 6)


def _title(board: PanelBoard) -> str:
    members = ", ".join(
        f"{_name(judge.name)} ({_name(judge_details(judge, ()))})" for judge in board.members
    )
    adhoc = "" if board.recorded else "ad hoc, "
    against = f", baseline {_name(board.baseline)}" if board.baseline else ""
    return (
        f"Panel {_name(board.panel.name)} ({adhoc}judges {members}; {pooled_how(board)}) · "
        f"mode {board.mode}{against}"
    )


def format_panel(board: PanelBoard) -> str:
    if board.mode == "single":
        headers = ["model", "turn 1", "turn 2", "overall", "95% CI", "items", "left out"]
        rows = [
            [s.model, _num(s.turn_1), _num(s.turn_2), _num(s.score), ci_text(s), s.rows,
             board.left_out_of(s.model)]
            for s in board.single
        ]  # fmt: skip
    else:
        headers = ["model", "win", "loss", "tie", "win_rate", "loss_rate", "win_rate_adjusted"]
        headers += ["95% CI", "left out"]
        rows = [
            [s.model, s.win, s.loss, s.tie, _num(s.win_rate), _num(s.loss_rate),
             _num(s.win_rate_adjusted), ci_text(s), board.left_out_of(s.model)]
            for s in board.pairwise
        ]  # fmt: skip
    text = f"{_title(board)}\n{format_table(headers, rows)}\n{left_out_note(board)}"
    return text + "".join(f"\n{line}" for line in unscored_lines(board, _name))


def unscored_lines(board: PanelBoard, escape: Callable[[str], str]) -> list[str]:
    """A line per model the board has no row for, every one of its items left out."""
    what = "items" if board.mode == "single" else "matches"
    return [
        f"{escape(model)}: not on the board, all {count} of its {what} left out"
        for model, count in board.unscored()
    ]


def panel_json(board: PanelBoard) -> dict[str, Any]:
    head: dict[str, Any] = {
        "name": board.panel.name,
        "recorded": board.recorded,
        "judges": [{"name": j.name, "model": j.model, "api": j.api} for j in board.members],
        "aggregate": board.panel.aggregate,
        "verdicts": "majority",
        "mode": board.mode,
        "baseline": board.baseline,
        "left_out": dict(board.left_out),
    }
    if board.mode == "single":
        head["models"] = [
            {
                **single_json(s),
                "items": s.rows,
                "left_out": board.left_out_of(s.model),
                "categories": {c.category: c.score for c in s.categories},
            }
            for s in board.single
        ]
    else:
        head["models"] = [
            {
                **pairwise_json(s),
                "left_out": board.left_out_of(s.model),
            }
            for s in board.pairwise
        ]
    return head
