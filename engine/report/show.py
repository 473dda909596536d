"""`mtbench show`: leaderboards from the store, FastChat's numbers first, then what it leaves out.

One leaderboard per judge identity in the store (or the one `--judge` names), in the mode asked for
or else the one its judgments were played in (`engine.report.judged_views`): single grading (turn 1,
turn 2, overall, per category, -1 counts, ratings outside 1-10, bootstrap CI) or pairwise (win /
loss / tie and FastChat's three rates, against a baseline or all pairs). A judge, mode or baseline
the store does not hold is refused with what it does hold; a judge left out because it lacks the
mode asked for is named under the tables. Names are escaped for the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.display import format_dollars, format_number, format_table, terminal_text
from engine.errors import InputError
from engine.reasoning import stored_settings
from engine.report.board_rows import pairwise_json, single_json
from engine.report.bt_table import bt_json, bt_text, pairwise_all_ratings
from engine.report.judged_views import (
    JudgeViews,
    View,
    out_of_range_counts,
    select_judges,
    unavailable,
)
from engine.report.notes import ci_text, judge_details, last_run_failures
from engine.report.panel_data import PanelBoard, adhoc_panel, panel_boards
from engine.report.panel_show import format_panel, panel_json
from engine.report.results import (
    LastRun,
    StoredJudge,
    expected_single_judgments,
    generation_costs,
    generation_reasoning_tokens,
    judge_cost,
    judge_reasoning_tokens,
    last_run,
    load_pair_matches,
    load_single_samples,
    load_single_scores,
)
from engine.scoring.bradley_terry import BradleyTerryBoard
from engine.scoring.summaries import (
    PairModelSummary,
    SampleSpread,
    SingleModelSummary,
    category_names,
    rank_by_turn,
    sample_spread,
    summarize_pairwise,
    summarize_single,
)
from engine.store.store import JudgeIdentity, open_store

__all__ = [
    "Leaderboard",
    "Scoreboard",
    "format_scoreboard",
    "leaderboards",
    "scoreboard_json",
]

PAIR_HEADERS = (
    "model", "win", "loss", "tie", "win_rate", "loss_rate", "win_rate_adjusted", "95% CI", "errors"
)  # fmt: skip
Column = tuple[str, Callable[[SingleModelSummary], object]]  # a header and how to fill its cells


@dataclass(frozen=True, slots=True)
class Leaderboard:
    judge: JudgeIdentity
    mode: str
    baseline: str | None
    single: tuple[SingleModelSummary, ...] = ()
    pairwise: tuple[PairModelSummary, ...] = ()
    expected: int | None = None  # single: judgments each model should have
    prompts: tuple[str, ...] = ()  # judge prompt names behind these scores
    samples: int = 1  # judge samples per item (scores are medians when > 1)
    spread: tuple[SampleSpread, ...] = ()  # single, samples > 1: per-sample overall scores
    judge_cost: float | None = None  # dollars paid for these judgments, when priced
    generation_cost: tuple[tuple[str, float], ...] = ()  # model -> dollars for its answers
    out_of_range: tuple[tuple[str, int], ...] = ()  # single: model -> ratings outside 1-10
    settings: tuple[str, ...] = ()  # the judge's reasoning settings (JSON), part of who judged
    judge_reasoning: int | None = None  # reasoning tokens of these judgments, where reported
    generation_reasoning: tuple[tuple[str, int], ...] = ()  # model -> its answers' reasoning
    bradley_terry: BradleyTerryBoard | None = None  # pairwise-all: ratings from every game

    def cost_of(self, model: str) -> float | None:
        return dict(self.generation_cost).get(model)

    def reasoning_of(self, model: str) -> int | None:
        return dict(self.generation_reasoning).get(model)

    def out_of_range_of(self, model: str) -> int:
        return dict(self.out_of_range).get(model, 0)

    def spread_of(self, model: str) -> SampleSpread | None:
        return next((s for s in self.spread if s.model == model), None)

    def unjudged(self, summary: SingleModelSummary) -> int | None:
        """Judgments missing for a model: failed requests, or answers that never came."""
        return summary.unjudged(self.expected)


@dataclass(frozen=True, slots=True)
class Scoreboard:
    boards: tuple[Leaderboard, ...]
    last_run: LastRun | None
    skipped: tuple[str, ...] = ()  # judges without the mode asked for, and what they have
    panels: tuple[PanelBoard, ...] = ()  # judge panels' boards (`engine.report.panel_data`)

    def as_dict(self) -> dict[str, Any]:
        """What `mtbench show --json` prints."""
        return scoreboard_json(self)


async def leaderboards(
    store_path: Path,
    bench: str,
    *,
    judge: str | None = None,
    mode: str | None = None,
    baseline: str | None = None,
    panel: str | Sequence[str] | None = None,
    aggregate: str | None = None,
) -> Scoreboard:
    if baseline is not None and mode not in (None, "pairwise-baseline"):
        raise InputError(f"--baseline goes with --mode pairwise-baseline, not --mode {mode}")
    adhoc = adhoc_panel(panel, aggregate)
    store = await open_store(store_path, write=False)
    try:
        judges = await select_judges(store, store_path, bench, judge)
        chosen = [(views, views.choose(mode, baseline)) for views in judges]
        if all(view is None for _, view in chosen):
            raise InputError(f"{store_path}: {unavailable(judges, mode, baseline)}")
        answer_costs = tuple(sorted((await generation_costs(store, bench)).items()))
        reasoning = tuple(sorted((await generation_reasoning_tokens(store, bench)).items()))
        boards = []
        for views, view in chosen:
            if view is None:
                continue
            board = await _leaderboard(store, bench, views.judge, view)
            identity = views.judge.identity
            boards.append(
                replace(
                    board,
                    judge_cost=await judge_cost(store, bench, identity),
                    generation_cost=answer_costs,
                    settings=views.judge.settings,
                    judge_reasoning=await judge_reasoning_tokens(store, bench, identity),
                    generation_reasoning=reasoning,
                )
            )
        latest = await last_run(store)
        panels = await panel_boards(
            store, store_path, bench, judge=judge, adhoc=adhoc, mode=mode, baseline=baseline
        )
    finally:
        await store.close()
    skipped = tuple(_skipped(views, mode, baseline) for views, view in chosen if view is None)
    return Scoreboard(tuple(boards), latest, (*skipped, *panels.not_shown), panels.boards)


def _skipped(views: JudgeViews, mode: str | None, baseline: str | None) -> str:
    return f"not shown: {unavailable([views], mode, baseline)}"


async def _leaderboard(store: Any, bench: str, stored: StoredJudge, view: View) -> Leaderboard:
    identity = stored.identity
    mode = view.mode
    if mode == "single":
        rows = await load_single_scores(store, bench, identity)
        expected = await expected_single_judgments(store, bench)
        spread: tuple[SampleSpread, ...] = ()
        if stored.samples > 1:
            spread = sample_spread(await load_single_samples(store, bench, identity))
        return Leaderboard(
            identity,
            mode,
            None,
            single=summarize_single(rows),
            expected=expected,
            prompts=stored.prompts["single"],
            samples=stored.samples,
            spread=spread,
            out_of_range=tuple(sorted((await out_of_range_counts(store, bench, identity)).items())),
        )
    matches = await load_pair_matches(store, bench, identity)
    chosen = view.baseline
    return Leaderboard(
        identity,
        mode,
        chosen,
        pairwise=summarize_pairwise(matches, baseline=chosen),
        prompts=stored.prompts["pair"],
        samples=stored.samples,
        bradley_terry=pairwise_all_ratings(matches) if mode == "pairwise-all" else None,
    )


def _num(value: float | None) -> str:
    return format_number(value, 6)


def _name(value: str) -> str:
    return terminal_text(value, name=True)


def _title(board: Leaderboard) -> str:
    judge = board.judge
    against = f", baseline {_name(board.baseline)}" if board.baseline else ""
    samples = f", median of {board.samples} samples" if board.samples > 1 else ""
    cost = "" if board.judge_cost is None else f", cost {format_dollars(board.judge_cost)}"
    if board.judge_reasoning is not None:
        cost += f", {board.judge_reasoning} reasoning tokens"
    prompts = ", ".join(_name(prompt) for prompt in board.prompts)
    details = _name(judge_details(judge, board.settings))
    return (
        f"Judge {_name(judge.name)} ({details}, prompts {prompts}{samples}{cost}) · "
        f"mode {board.mode}{against}"
    )


def format_scoreboard(scoreboard: Scoreboard) -> str:
    text = "\n\n".join(
        [*map(_format_board, scoreboard.boards), *map(format_panel, scoreboard.panels)]
    )
    for note in scoreboard.skipped:
        text += f"\n\n{terminal_text(note)}"
    failures = last_run_failures(scoreboard.last_run, _name)
    return text if failures is None else f"{text}\n\n{failures}"


def _format_board(board: Leaderboard) -> str:
    if board.mode != "single":
        return f"{_title(board)}\n{_pair_table(board)}{bt_text(board.bradley_terry)}"
    turn_order = ", ".join(_name(s.model) for s in rank_by_turn(board.single, 1))
    return (
        f"{_title(board)}\n{_single_table(board)}{_out_of_range_note(board)}\n\n"
        f"Per category (mean score)\n{_category_table(board)}\n\nturn 1 ranking: {turn_order}"
    )


def _pair_table(board: Leaderboard) -> str:
    rows = [
        [s.model, s.win, s.loss, s.tie, _num(s.win_rate), _num(s.loss_rate),
         _num(s.win_rate_adjusted), ci_text(s), s.errors]
        for s in board.pairwise
    ]  # fmt: skip
    return format_table(PAIR_HEADERS, rows)


def _single_table(board: Leaderboard) -> str:
    columns = _single_columns(board)
    rows = [[cell(s) for _, cell in columns] for s in board.single]
    return format_table([header for header, _ in columns], rows)


def _single_columns(board: Leaderboard) -> list[Column]:
    """The single table's columns; a sample spread, ratings outside 1-10, answer costs and
    reasoning tokens only where the board has any."""
    columns: list[Column] = [
        ("model", lambda s: s.model),
        ("turn 1", lambda s: _num(s.turn_1)),
        ("turn 2", lambda s: _num(s.turn_2)),
        ("overall", lambda s: _num(s.score)),
        ("95% CI", ci_text),
    ]
    if board.spread:
        columns.append(("sample std", lambda s: _spread(board.spread_of(s.model))))
    columns.append(("-1s", lambda s: s.missing))
    if _out_of_range(board):
        columns.append(("not 1-10", lambda s: board.out_of_range_of(s.model)))
    columns += [("unjudged", board.unjudged), ("rows", lambda s: s.rows)]
    if board.generation_cost:
        columns.append(("answer cost", lambda s: format_dollars(board.cost_of(s.model))))
    if board.generation_reasoning:
        columns.append(("reasoning tokens", lambda s: board.reasoning_of(s.model)))
    return columns


def _out_of_range(board: Leaderboard) -> int:
    return sum(count for _, count in board.out_of_range)


def _out_of_range_note(board: Leaderboard) -> str:
    flagged = _out_of_range(board)
    if not flagged:
        return ""
    return (
        f"\n{flagged} ratings outside 1-10 (parse status out_of_range) are averaged as given, "
        "as FastChat does: check the judge's replies"
    )


def _category_table(board: Leaderboard) -> str:
    categories = category_names(board.single)
    rows = [
        [s.model, *[format_number(s.category_score(name), 2) for name in categories]]
        for s in board.single
    ]
    return format_table(["model", *categories], rows)


def _spread(spread: SampleSpread | None) -> str:
    return format_number(None if spread is None else spread.std, 3)


def _spread_json(spread: SampleSpread | None) -> dict[str, Any]:
    if spread is None:
        return {}
    return {"sample_scores": list(spread.scores), "sample_std": spread.std}


def scoreboard_json(scoreboard: Scoreboard) -> dict[str, Any]:
    run = scoreboard.last_run
    return {
        "leaderboards": [_board_json(board) for board in scoreboard.boards],
        "panels": [panel_json(board) for board in scoreboard.panels],
        "not_shown": list(scoreboard.skipped),
        "last_run": None
        if run is None
        else {"id": run.id, "command": run.command, "status": run.status, "failures": run.failures},
    }


def _board_json(board: Leaderboard) -> dict[str, Any]:
    judge = {
        "name": board.judge.name,
        "model": board.judge.model,
        "api": board.judge.api,
        "prompts": list(board.prompts),
        "samples": board.samples,
        "settings": [stored_settings(settings) for settings in board.settings],
        "cost": board.judge_cost,
        "reasoning_tokens": board.judge_reasoning,
    }
    head: dict[str, Any] = {"judge": judge, "mode": board.mode, "baseline": board.baseline}
    if board.mode == "single":
        head["models"] = [
            {
                **single_json(s),
                "missing": s.missing,
                "out_of_range": board.out_of_range_of(s.model),
                "unjudged": board.unjudged(s),
                "rows": s.rows,
                "answer_cost": board.cost_of(s.model),
                "reasoning_tokens": board.reasoning_of(s.model),
                **_spread_json(board.spread_of(s.model)),
                "categories": {c.category: c.score for c in s.categories},
            }
            for s in board.single
        ]
    else:
        head["models"] = [
            {
                **pairwise_json(s),
                "errors": s.errors,
            }
            for s in board.pairwise
        ]
        if board.mode == "pairwise-all":
            head["bradley_terry"] = bt_json(board.bradley_terry)
    return head
