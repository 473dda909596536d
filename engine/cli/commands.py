"""What each `mtbench` command does: call the public API (or a report or interop function), print.

Imports are made where they are used: a signal must be able to end the command from the first line
of `main` on (`engine.cli.interrupts`), so nothing heavy is imported before it takes the signals.
Every coroutine runs through `run_async`, which turns a signal into the command's end.
"""

from __future__ import annotations

import argparse
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from engine.cli.interrupts import run_async
from engine.errors import InputError

__all__ = [
    "cmd_data_fetch",
    "cmd_export",
    "cmd_import",
    "cmd_report",
    "cmd_requests",
    "cmd_show",
    "run_result",
]


def run_result(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return run_async(coroutine)


def cmd_requests(args: argparse.Namespace) -> int:
    """`plan`, `generate`, `run`, `judge`: one call of `engine.evaluate_async`, then its summary."""
    import orjson

    from engine.api import evaluate_async
    from engine.cli.control import SignalControl
    from engine.cli.progress_views import progress_view
    from engine.cli.summary import format_plan, format_run_summary, tally_json
    from engine.display import terminal_text

    if args.json and args.progress in ("rich", "plain"):
        raise InputError(
            f"--progress {args.progress} writes text to stderr, where --json writes JSON lines; "
            "use --progress json or --quiet"
        )
    if hasattr(args, "watch"):  # `run` takes the watch flags
        from engine.cli.watching import watched

        code = watched(args)
        if code is not None:
            return code
    mode = "quiet" if args.quiet else args.progress or ("json" if args.json else "auto")
    control = SignalControl(resume=f"mtbench {args.command} -c {args.config}")
    progress = progress_view(mode, args.progress_interval)
    result = run_result(
        control.interrupts(
            lambda: evaluate_async(
                args.config,
                command=args.command,
                data=args.data,
                progress=progress,
                control=control,
            )
        )
    )
    if args.json:
        summary = {
            "command": args.command,
            "store": str(result.store),
            **tally_json(result.summary),
        }
        summary["notes"] = list(result.notes)
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    elif args.command == "plan":
        print(format_plan(result.summary))
        print_notes(result.notes)
    else:
        print(format_run_summary(result.summary))
        print_notes(result.notes)
        print(f"store: {terminal_text(result.store)}")
    if args.command == "plan":
        return 0
    return 0 if result.ok else 1


def print_notes(notes: Sequence[str]) -> None:
    for note in notes:
        print(f"note: {note}")


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from engine.bench.datafetch import fetch_data
    from engine.display import terminal_text

    report = run_result(fetch_data(Path(args.dest) if args.dest else None))
    print(
        f"data dir: {terminal_text(report.dest)} "
        f"({len(report.fetched)} fetched, {len(report.verified)} verified)"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    import orjson

    from engine.api import scores_async
    from engine.cli.sweep_commands import cmd_show_sweep, wants_sweep
    from engine.report.show import format_scoreboard

    if wants_sweep(args):
        return cmd_show_sweep(args)

    scoreboard = run_result(
        scores_async(
            args.store, judge=args.judge, mode=args.mode, baseline=args.baseline, bench=args.bench
        )
    )
    if args.json:
        print(orjson.dumps(scoreboard.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_scoreboard(scoreboard))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from engine.display import terminal_text
    from engine.report.html import report_page, save_report

    out = Path(args.output)
    page = run_result(
        report_page(
            Path(args.store), out, bench=args.bench, judge=args.judge, texts=not args.no_texts
        )
    )
    save_report(out, page)  # off the event loop: a signal ends a wait for a pipe's reader
    print(f"report: {terminal_text(out)}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from engine.bench.data import load_bench, resolve_data_dir
    from engine.display import terminal_text
    from engine.errors import DataError
    from engine.interop import import_fastchat, record_questions

    store = Path(args.store)
    try:
        data_dir: Path | None = resolve_data_dir(args.data, None)
    except DataError:
        data_dir = None
    if data_dir is not None:  # a mistyped --data is refused before the store is touched
        load_bench(data_dir, args.bench, need_judging=False)
    report = run_result(import_fastchat(store, Path(args.fastchat), args.bench, force=args.force))
    print(
        f"imported {report.answer_rows} answer turns of {len(report.models)} models and "
        f"{report.judgment_rows} judgment rows of {len(report.judges)} judges into "
        f"{terminal_text(store)}"
    )
    if report.superseded:
        print(
            f"{report.superseded} lines replaced an earlier line for the same question or "
            "judgment (a later line wins, as in FastChat)"
        )
    if report.replaced:
        print(f"replaced stored {terminal_text(report.replaced.describe())} (--force)")
    if data_dir is None:
        print("no data dir given: categories will show as 'unknown' until a run records them")
        return 0
    run_result(record_questions(store, data_dir, args.bench))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from engine.cli.sweep_commands import cmd_export_trackers
    from engine.interop import export_fastchat, format_export

    if args.fastchat is None or args.config is not None:
        return cmd_export_trackers(args)

    report = run_result(
        export_fastchat(
            Path(args.store), Path(args.fastchat), args.bench, judge=args.judge, force=args.force
        )
    )
    print(format_export(report))
    return 0
