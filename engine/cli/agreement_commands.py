"""`mtbench show --agreement [--judge A --judge B ...] [--against LABEL]`: judges compared.

`show` takes `--judge` more than once only for agreement: a leaderboard or a sweep shows one judge
label or all of them. Flags that belong to other forms of `show` are refused with one line before
the store is opened.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.commands import run_result
from engine.errors import InputError

__all__ = ["cmd_show_agreement", "single_judge", "wants_agreement"]


def wants_agreement(args: argparse.Namespace) -> bool:
    """`show` with --agreement, or with --against, which only --agreement takes (then refused)."""
    return bool(args.agreement or args.against is not None)


def single_judge(judges: list[str] | None) -> str | None:
    """The one `--judge` of a leaderboard or sweep; several are for --agreement only."""
    if not judges:
        return None
    if len(set(judges)) > 1:
        raise InputError("mtbench show: give --judge once (several go with --agreement)")
    return judges[0]


def cmd_show_agreement(args: argparse.Namespace) -> int:
    import orjson

    from engine.report.agreement_data import judge_agreement
    from engine.report.agreement_show import agreement_json, format_agreement

    if not args.agreement:
        raise InputError("mtbench show: --against goes with --agreement")
    if args.mode is not None or args.baseline is not None:
        raise InputError(
            "mtbench show: --agreement compares every mode the judges share; drop --mode/--baseline"
        )
    if args.panel is not None or args.aggregate is not None:
        raise InputError(
            "mtbench show: --agreement compares judges one pair at a time; drop --panel/--aggregate"
            " (name the judges with --judge A --judge B)"
        )
    if args.sweep or args.csv or args.config:
        raise InputError("mtbench show: --agreement does not go with --sweep, --csv or -c")
    agreement = run_result(
        judge_agreement(Path(args.store), args.bench, judges=args.judge or (), against=args.against)
    )
    if args.json:
        print(orjson.dumps(agreement_json(agreement), option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_agreement(agreement))
    return 0
