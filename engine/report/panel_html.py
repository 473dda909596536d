"""The report's judge panel sections: each panel's leaderboard, its members and how it pools them.

Built from the same `PanelBoard`s `mtbench show` prints (`engine.report.panel_data`), with the
interval bars the judges' tables have, so a panel reads like one more judge whose make-up is
written above its table. Panels that cannot be shown are named with the reason. Every name is
HTML-escaped: labels come from configs and imported files.
"""

from __future__ import annotations

from engine.report.board_rows import pair_row_start
from engine.report.markup import escape, model_cell, number, table
from engine.report.notes import ci_text, judge_details
from engine.report.panel_data import PanelBoard, PanelBoards
from engine.report.panel_show import left_out_note, pooled_how, unscored_lines
from engine.report.svg import ci_bar

__all__ = ["panel_nav", "panel_section"]


def panel_nav(panels: PanelBoards) -> list[tuple[str, str]]:
    """(anchor, title) of each panel's section, for the page's navigation."""
    return [(f"panel-{i}", f"Panel {board.panel.name}") for i, board in enumerate(panels.boards)]


def panel_section(panels: PanelBoards, colors: dict[str, str]) -> str:
    parts = [_board(i, board, colors) for i, board in enumerate(panels.boards)]
    parts += [f'<p class="note panel-not-shown">{escape(note)}</p>' for note in panels.not_shown]
    return "".join(parts)


def _board(index: int, board: PanelBoard, colors: dict[str, str]) -> str:
    members = "".join(
        f"<li>{escape(judge.name)} ({escape(judge_details(judge, ()))})</li>"
        for judge in board.members
    )
    against = "" if board.baseline is None else f", against {board.baseline}"
    what = "single grading" if board.mode == "single" else f"pairwise{against}"
    unscored = "".join(f"<li>{line}</li>" for line in unscored_lines(board, escape))
    return (
        f'<section class="judge panel" id="panel-{index}">'
        f"<h2>Panel {escape(board.panel.name)}</h2>"
        f'<p class="note">{len(board.members)} judges pooled: {escape(pooled_how(board))}; '
        f"scored only on what every judge judged. The 95% interval is a bootstrap over "
        f'questions (1000 resamples).</p><ul class="panel-judges">{members}</ul>'
        f"<h3>Leaderboard ({escape(what)})</h3>"
        + (_single_table(board, colors) if board.mode == "single" else _pair_table(board, colors))
        + f'<p class="note">{escape(left_out_note(board))}</p>'
        + (f'<ul class="panel-unscored">{unscored}</ul>' if unscored else "")
        + "</section>"
    )


def _single_table(board: PanelBoard, colors: dict[str, str]) -> str:
    rows = []
    for rank, s in enumerate(board.single, 1):
        bar = "" if s.ci is None else ci_bar(s.score, s.ci.low, s.ci.high, (1.0, 10.0))
        rows.append(
            f'<tr data-model="{escape(s.model)}"><td class="rank">{rank}</td>'
            f"{model_cell(s.model, colors)}"
            f'<td class="turn-1">{number(s.turn_1)}</td><td class="turn-2">{number(s.turn_2)}</td>'
            f'<td class="overall">{number(s.score)}</td><td class="ci">{ci_text(s)}</td>'
            f'<td class="ci-cell">{bar}</td><td class="items">{s.rows}</td>'
            f'<td class="left-out">{board.left_out_of(s.model)}</td></tr>'
        )
    headers = ["#", "model", "turn 1", "turn 2", "overall", "95% CI", "CI (1–10)", "items"]
    return table([*headers, "left out"], rows)


def _pair_table(board: PanelBoard, colors: dict[str, str]) -> str:
    rows = []
    for rank, s in enumerate(board.pairwise, 1):
        left_out = board.left_out_of(s.model)
        rows.append(pair_row_start(rank, s, colors) + f'<td class="left-out">{left_out}</td></tr>')
    headers = ["#", "model", "win", "loss", "tie", "win_rate", "loss_rate", "win_rate_adjusted"]
    return table([*headers, "95% CI", "CI (0–1)", "left out"], rows)
