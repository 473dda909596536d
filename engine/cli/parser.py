"""The `mtbench` command line's grammar: commands, their arguments, and one-line refusals.

argparse's own refusals print usage and exit; here they raise `UsageError` (an InputError), so a
mistyped flag ends the command like any other bad input: one line, exit 2. Each command's handler
is in `engine.cli.commands`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn, TypeAlias

from engine import __version__
from engine.cli import commands
from engine.errors import InputError

__all__ = ["PROGRESS_INTERVAL_RANGE", "UsageError", "parser"]

# --progress-interval: below a tenth of a second the display is all the terminal shows.
PROGRESS_INTERVAL_RANGE = (0.1, 86_400.0)
_REQUEST_COMMANDS = {
    "plan": "print the requests a run would send and those already cached; send nothing",
    "generate": "generate every missing answer",
    "run": "generate and judge in one pipelined run",
    "judge": "judge every stored answer not yet judged by this judge",
}
_Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"


class UsageError(InputError):
    """A command line argparse refuses: one line and exit 2, like any other bad input."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _seconds_between(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(
                f"expected a number of seconds from {low:g} to {high:g}, got {text!r}"
            )
        return value

    return parse


def _integer_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected an integer from {low} to {high}, got {text!r}"
            )
        return value

    return parse


def parser(description: str) -> argparse.ArgumentParser:
    top = _Parser(prog="mtbench", description=description)
    top.add_argument("--version", action="version", version=f"mtbench-engine {__version__}")
    top.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subcommands = top.add_subparsers(dest="command", required=True)
    for name, text in _REQUEST_COMMANDS.items():
        _request_command(subcommands.add_parser(name, help=text, description=text))
    _show(subcommands)
    _demo(subcommands)
    _report(subcommands)
    _import(subcommands)
    _export(subcommands)
    _data(subcommands)
    return top


def _request_command(sub: argparse.ArgumentParser) -> None:
    from engine.cli.progress_views import PROGRESS_MODES

    sub.add_argument("-c", "--config", required=True, help="run config (TOML)")
    sub.add_argument("--data", help="MT-Bench data dir (overrides the config and $MTBENCH_DATA)")
    sub.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON (and progress as JSON lines on stderr)",
    )
    sub.add_argument("--quiet", action="store_true", help="no progress display")
    sub.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        help="auto (default): a live table on a terminal, else a log line every 5 s",
    )
    sub.add_argument(
        "--progress-interval",
        type=_seconds_between(*PROGRESS_INTERVAL_RANGE),
        help="seconds between progress updates (0.1 to 86400)",
    )
    if sub.prog.endswith(" run"):
        from engine.cli.watching import add_watch_arguments

        add_watch_arguments(sub, _seconds_between)
    sub.set_defaults(handler=commands.cmd_requests)


def _show(subcommands: _Commands) -> None:
    from engine.config_schema import JUDGE_MODES

    show = subcommands.add_parser("show", help="leaderboards from the stored judgments")
    show.add_argument("--store", required=True, help="the SQLite store")
    show.add_argument("--bench", default="mt_bench")
    show.add_argument("--judge", help="only this judge label (default: every judge in the store)")
    show.add_argument(
        "--mode",
        choices=JUDGE_MODES,
        help="default: single if judged so, else the pairwise mode the judgments were played in",
    )
    show.add_argument(
        "--baseline", help="for --mode pairwise-baseline (default: the baseline judged against)"
    )
    show.add_argument("--json", action="store_true", help="machine-readable output")
    _sweep_flags(show)
    show.add_argument("--csv", action="store_true", help="--sweep as CSV, for spreadsheets")
    show.set_defaults(handler=commands.cmd_show)


def _sweep_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--sweep",
        action="store_true",
        help="score against training step: every checkpoint of each sweep, the best marked",
    )
    sub.add_argument(
        "-c",
        "--config",
        help="the run config whose [[model]] checkpoints (or step) define the sweeps "
        "(default: labels that differ only in their last integer)",
    )


def _demo(subcommands: _Commands) -> None:
    from engine.cli.demo import cmd_demo
    from engine.config_schema import MAX_TOKENS

    demo = subcommands.add_parser(
        "demo", help="the whole pipeline with a local 135M model: no key, nothing to configure"
    )
    demo.add_argument("--store", default="runs/demo.sqlite", help="default: runs/demo.sqlite")
    demo.add_argument("--data", help="MT-Bench data dir (default: $MTBENCH_DATA or the cache)")
    demo.add_argument(
        "--per-category",
        type=_integer_between(1, 1000),
        default=1,
        help="questions per category",
    )
    demo.add_argument("--categories", help="comma-separated categories (default: all eight)")
    demo.add_argument(
        "--max-tokens",
        type=_integer_between(1, MAX_TOKENS),
        default=200,
        help="answer length cap",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress display")
    demo.set_defaults(handler=cmd_demo)


def _report(subcommands: _Commands) -> None:
    report = subcommands.add_parser("report", help="write a self-contained HTML report")
    report.add_argument("--store", required=True, help="the SQLite store")
    report.add_argument("-o", "--output", required=True, help="the HTML file to write")
    report.add_argument("--bench", default="mt_bench")
    report.add_argument("--judge", help="only this judge label (default: every judge in the store)")
    report.add_argument(
        "--no-texts",
        action="store_true",
        help="leave answers and judge replies out (scores stay): a small file to share",
    )
    report.set_defaults(handler=commands.cmd_report)


def _import(subcommands: _Commands) -> None:
    imports = subcommands.add_parser("import", help="load FastChat answer and judgment files")
    imports.add_argument("--store", required=True, help="the SQLite store (created if missing)")
    imports.add_argument(
        "--fastchat",
        required=True,
        help="a model_answer folder, a folder holding model_answer/, or a FastChat data dir",
    )
    imports.add_argument("--bench", default="mt_bench")
    imports.add_argument("--data", help="MT-Bench data dir, to record question categories")
    imports.add_argument(
        "--force",
        action="store_true",
        help="replace stored answers or judgments that have other content",
    )
    imports.set_defaults(handler=commands.cmd_import)


def _export(subcommands: _Commands) -> None:
    export = subcommands.add_parser(
        "export", help="write FastChat answer and judgment files, or log sweeps to W&B or MLflow"
    )
    export.add_argument("--store", required=True, help="the SQLite store")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--fastchat", help="directory to write model_answer/ etc. into")
    target.add_argument("--wandb", metavar="PROJECT", help="log each sweep to a W&B run")
    target.add_argument("--mlflow", metavar="URI", help="log each sweep to an MLflow run")
    export.add_argument(
        "-c", "--config", help="with --wandb/--mlflow: the run config defining the sweeps"
    )
    export.add_argument("--bench", default="mt_bench")
    export.add_argument("--judge", help="only this judge label")
    export.add_argument(
        "--force", action="store_true", help="replace answer and judgment files already there"
    )
    export.set_defaults(handler=commands.cmd_export)


def _data(subcommands: _Commands) -> None:
    data = subcommands.add_parser("data", help="MT-Bench data files").add_subparsers(
        dest="data_command", required=True
    )
    fetch = data.add_parser("fetch", help="download FastChat's MT-Bench files (sha256-checked)")
    fetch.add_argument("--dest", help="directory to fill (default: the user cache)")
    fetch.set_defaults(handler=commands.cmd_data_fetch)
