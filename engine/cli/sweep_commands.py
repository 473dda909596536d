"""`mtbench show --sweep` and `mtbench export --wandb / --mlflow`: score against training step.

Both read the same `SweepBoards` (`engine.report.sweep_data`), so a tracker holds exactly the
numbers `show --sweep --json` prints. Flags that belong to other forms of the commands are refused
with one line before the store is opened.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli.commands import run_result
from engine.errors import InputError

if TYPE_CHECKING:
    from engine.report.sweep_data import SweepBoards

__all__ = ["cmd_export_trackers", "cmd_show_sweep", "wants_sweep"]


def wants_sweep(args: argparse.Namespace) -> bool:
    """`show` with --sweep, or with a flag that only --sweep takes (then refused)."""
    return bool(args.sweep or args.csv or args.config)


def _boards(args: argparse.Namespace) -> SweepBoards:
    from engine.report.sweep_data import sweep_boards
    from engine.report.sweep_members import configured_sweeps

    configured = None if args.config is None else configured_sweeps(Path(args.config))
    boards: SweepBoards = run_result(
        sweep_boards(Path(args.store), args.bench, judge=args.judge, configured=configured)
    )
    return boards


def cmd_show_sweep(args: argparse.Namespace) -> int:
    import orjson

    from engine.report.sweep_show import format_sweeps, sweep_boards_json, sweeps_csv

    if not args.sweep:
        flag = "--csv" if args.csv else "-c/--config"
        raise InputError(f"mtbench show: {flag} goes with --sweep")
    if args.mode is not None or args.baseline is not None:
        raise InputError("mtbench show: --sweep shows single-answer grades; drop --mode/--baseline")
    if args.json and args.csv:
        raise InputError("mtbench show: give --json or --csv, not both")
    boards = _boards(args)
    if args.json:
        print(orjson.dumps(sweep_boards_json(boards), option=orjson.OPT_INDENT_2).decode())
    elif args.csv:
        print(sweeps_csv(boards), end="")
    else:
        print(format_sweeps(boards))
    return 0


def cmd_export_trackers(args: argparse.Namespace) -> int:
    """`export --wandb PROJECT` / `--mlflow URI`: one tracker run per sweep and judge."""
    from engine.display import terminal_text
    from engine.interop.trackers import (
        TrackedSweep,
        export_to_mlflow,
        export_to_wandb,
        tracker_problem,
    )

    if args.fastchat is not None:
        raise InputError("mtbench export: -c/--config goes with --wandb or --mlflow")
    tracker = "wandb" if args.wandb is not None else "mlflow"
    if not (args.wandb if tracker == "wandb" else args.mlflow).strip():
        # W&B would log to its default project, MLflow to ./mlflow.db: not what was meant.
        what = "PROJECT" if tracker == "wandb" else "URI"
        raise InputError(f"mtbench export --{tracker}: give a {what}, not an empty string")
    problem = tracker_problem(tracker)
    if problem is not None:
        raise InputError(f"mtbench export --{tracker}: {problem}")
    boards = _boards(args)
    tracked = [
        TrackedSweep(boards.store, boards.bench, b.sweep, b.judge, b.samples, b.settings, b.summary)
        for b in boards.boards
    ]
    if args.wandb is not None:
        exported = export_to_wandb(tracked, args.wandb)
    else:
        exported = export_to_mlflow(tracked, args.mlflow)
    for run in exported:
        print(
            f"{tracker} run {terminal_text(run.run_id)} ({terminal_text(run.sweep)}, judge "
            f"{terminal_text(run.judge)}): {run.logged} checkpoints logged, "
            f"{run.skipped} already there" + _behind(run.behind) + _left_out(run.shared)
        )
    return 0


def _left_out(shared: tuple[str, ...]) -> str:
    from engine.display import terminal_text

    if not shared:
        return ""
    names = ", ".join(terminal_text(label, name=True) for label in shared)
    return f"; left out, sharing a step: {names} (a tracker holds one point per step)"


def _behind(behind: int) -> str:
    if not behind:
        return ""
    return f"; {behind} left out: before the run's last step (W&B takes steps in order)"
