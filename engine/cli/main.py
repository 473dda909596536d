"""The `mtbench` command line: parse arguments, call into the engine, print, pick the exit code.

Exit codes: 0 every job succeeded; 1 some jobs failed (summary printed), or the engine failed
internally (one line); 2 bad config, data or store (one line, nothing sent, nothing stored
touched); 3 the store could not be written during a run (one line; everything committed is kept,
rerunning resumes); 130/143 interrupted by SIGINT/SIGTERM.

A signal ends a command with one line and 130/143 from the first line of `main` on, while the engine
is still importing (`engine.cli.interrupts`; a run that is sending stops gracefully instead,
`engine.cli.signals`): so this module imports only what `main` needs before it takes the signals,
and the rest where it is used. Everything written to stdout and stderr has API keys masked, and
everything printed for a human is escaped for the terminal (`engine.display`); with `--json`, every
line on stderr is a JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from engine import __version__
from engine.cli.interrupts import SignalExit, exit_with, run_async, signals_end_the_command
from engine.errors import InputError, MtbenchError
from engine.redact import RedactingStream, redact_log_records

__all__ = ["main", "run"]


def _interrupted(stop: KeyboardInterrupt, json_lines: bool = False) -> int:
    signum = stop.signum if isinstance(stop, SignalExit) else signal.SIGINT
    _say(_line(f"interrupted by {signal.Signals(signum).name}", 128 + signum, json_lines))
    return 128 + signum


class OutputError(MtbenchError):
    """stdout could not take the output (a full disk, a reader that went away): exit 1, one line."""


class _Stdout(RedactingStream):
    """The command's stdout: a write or flush that fails is an OutputError, not an engine bug."""

    def write(self, text: str) -> int:
        try:
            return super().write(text)
        except OSError as error:
            raise _output_error(error) from None

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as error:
            raise _output_error(error) from None


def _output_error(error: OSError) -> OutputError:
    # What could not be written is dropped: Python's own flush at exit would fail again and
    # print "Exception ignored" with exit code 120.
    with contextlib.suppress(OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.__stdout__.fileno() if sys.__stdout__ else 1)
        os.close(null)
    return OutputError(f"cannot write the output to stdout ({error.strerror or error})")


@contextlib.contextmanager
def _redacted_output() -> Iterator[None]:
    """Mask API keys in everything printed, whoever prints it (tables, progress, errors)."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Stdout(stdout), RedactingStream(stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# --progress-interval: below a tenth of a second the display is all the terminal shows.
PROGRESS_INTERVAL_RANGE = (0.1, 86_400.0)


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


def _install_loop_policy() -> None:
    import asyncio

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _cmd_requests(args: argparse.Namespace) -> int:
    import orjson

    from engine.config import load_config
    from engine.display import terminal_text
    from engine.report.tables import format_plan, format_run_summary, tally_json
    from engine.run.runner import ProgressOptions, execute

    if args.json and args.progress in ("rich", "plain"):
        raise InputError(
            f"--progress {args.progress} writes text to stderr, where --json writes JSON lines; "
            "use --progress json or --quiet"
        )
    config = load_config(args.config)
    mode = "quiet" if args.quiet else args.progress or ("json" if args.json else "auto")
    progress = ProgressOptions(mode, args.progress_interval)
    result = _run_result(execute(config, args.command, data_flag=args.data, progress=progress))
    if args.json:
        summary = {"command": args.command, "store": str(result.store), **tally_json(result.tally)}
        summary["notes"] = list(result.notes)
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    elif args.command == "plan":
        print(format_plan(result.tally))
        _print_notes(result.notes)
    else:
        print(format_run_summary(result.tally))
        _print_notes(result.notes)
        print(f"store: {terminal_text(result.store)}")
    if args.command == "plan":
        return 0
    return 0 if result.ok else 1


def _print_notes(notes: Sequence[str]) -> None:
    for note in notes:
        print(f"note: {note}")


def _run_result(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return run_async(coroutine)


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from engine.bench.datafetch import fetch_data
    from engine.display import terminal_text

    report = _run_result(fetch_data(Path(args.dest) if args.dest else None))
    print(
        f"data dir: {terminal_text(report.dest)} "
        f"({len(report.fetched)} fetched, {len(report.verified)} verified)"
    )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    import orjson

    from engine.report.show import format_scoreboard, leaderboards, scoreboard_json

    scoreboard = _run_result(
        leaderboards(
            Path(args.store), args.bench, judge=args.judge, mode=args.mode, baseline=args.baseline
        )
    )
    if args.json:
        print(orjson.dumps(scoreboard_json(scoreboard), option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_scoreboard(scoreboard))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine.report.show import format_scoreboard, leaderboards
    from engine.run.runner import ProgressOptions
    from engine.serving.demo import DISCLAIMER, REAL_JUDGE_CONFIG, DemoOptions, run_demo

    categories = tuple(args.categories.split(",")) if args.categories else None
    options = DemoOptions(
        store=Path(args.store),
        data=args.data,
        per_category=args.per_category,
        categories=categories,
        max_tokens=args.max_tokens,
        progress=ProgressOptions("quiet" if args.quiet else "auto"),
    )
    result = _run_result(run_demo(options))
    print(format_scoreboard(_run_result(leaderboards(result.store, "mt_bench"))))
    print(f"\nstore: {result.store}  (try: mtbench report --store {result.store} -o demo.html)")
    print(f"\n{DISCLAIMER}\n\n{REAL_JUDGE_CONFIG}")
    return 0 if result.ok else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from engine.display import terminal_text
    from engine.report.html import report_page, save_report

    out = Path(args.output)
    page = _run_result(report_page(Path(args.store), out, bench=args.bench, judge=args.judge))
    save_report(out, page)  # off the event loop: a signal ends a wait for a pipe's reader
    print(f"report: {terminal_text(out)}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
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
    report = _run_result(import_fastchat(store, Path(args.fastchat), args.bench, force=args.force))
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
    _run_result(record_questions(store, data_dir, args.bench))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from engine.interop import export_fastchat, format_export

    report = _run_result(
        export_fastchat(
            Path(args.store), Path(args.fastchat), args.bench, judge=args.judge, force=args.force
        )
    )
    print(format_export(report))
    return 0


def _parser() -> argparse.ArgumentParser:
    from engine.config import JUDGE_MODES, MAX_TOKENS
    from engine.run.progress import PROGRESS_MODES

    parser = _Parser(prog="mtbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mtbench-engine {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    helps = {
        "plan": "print the requests a run would send and those already cached; send nothing",
        "generate": "generate every missing answer",
        "run": "generate and judge in one pipelined run",
        "judge": "judge every stored answer not yet judged by this judge",
    }
    for name, text in helps.items():
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("-c", "--config", required=True, help="run config (TOML)")
        sub.add_argument(
            "--data", help="MT-Bench data dir (overrides the config and $MTBENCH_DATA)"
        )
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
        sub.set_defaults(handler=_cmd_requests)
    show = commands.add_parser("show", help="leaderboards from the stored judgments")
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
    show.set_defaults(handler=_cmd_show)
    demo = commands.add_parser(
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
    demo.set_defaults(handler=_cmd_demo)
    report = commands.add_parser("report", help="write a self-contained HTML report")
    report.add_argument("--store", required=True, help="the SQLite store")
    report.add_argument("-o", "--output", required=True, help="the HTML file to write")
    report.add_argument("--bench", default="mt_bench")
    report.add_argument("--judge", help="only this judge label (default: every judge in the store)")
    report.set_defaults(handler=_cmd_report)
    imports = commands.add_parser("import", help="load FastChat answer and judgment files")
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
    imports.set_defaults(handler=_cmd_import)
    export = commands.add_parser("export", help="write FastChat answer and judgment files")
    export.add_argument("--store", required=True, help="the SQLite store")
    export.add_argument(
        "--fastchat", required=True, help="directory to write model_answer/ etc. into"
    )
    export.add_argument("--bench", default="mt_bench")
    export.add_argument("--judge", help="only this judge label")
    export.add_argument(
        "--force", action="store_true", help="replace answer and judgment files already there"
    )
    export.set_defaults(handler=_cmd_export)
    data = commands.add_parser("data", help="MT-Bench data files").add_subparsers(
        dest="data_command", required=True
    )
    fetch = data.add_parser("fetch", help="download FastChat's MT-Bench files (sha256-checked)")
    fetch.add_argument("--dest", help="directory to fill (default: the user cache)")
    fetch.set_defaults(handler=_cmd_data_fetch)
    return parser


def _log_handler(json_lines: bool) -> logging.Handler:
    from engine.display import JsonLogFormatter, TerminalLogFormatter

    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(TerminalLogFormatter(LOG_FORMAT))
    return handler


def _standard_streams_open() -> None:
    """Give a closed stdin, stdout or stderr (`mtbench ... <&-`, a daemon's child) /dev/null.

    Otherwise the next file or socket opened takes its number: the store or a connection would
    receive what is printed, and uvloop aborts the process (SIGABRT, the summary lost) when it
    closes a descriptor numbered 0 to 2.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the process's, closed at exit
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115


def main(argv: Sequence[str] | None = None) -> int:
    _standard_streams_open()
    try:
        with signals_end_the_command(), _redacted_output():
            redact_log_records()
            return _main(argv)
    except KeyboardInterrupt as stop:
        return _interrupted(stop)


def run() -> NoReturn:
    """The `mtbench` console script: `main`, then exit with its code."""
    exit_with(main())


def _main(argv: Sequence[str] | None) -> int:
    from engine.display import JsonLinesStderr, error_line

    try:
        args = _parser().parse_args(argv)
    except InputError as error:  # argparse's refusals: one line, like any other bad input
        _say(error_line(str(error), error.exit_code, json_lines="--json" in (argv or sys.argv)))
        return error.exit_code
    json_lines = bool(getattr(args, "json", False))
    stderr = sys.stderr
    if json_lines:
        # Kept if an unexpected exception escapes: its traceback, printed after `main`, is
        # wrapped into JSON lines too.
        sys.stderr = JsonLinesStderr(stderr)
    _install_loop_policy()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        handlers=[_log_handler(json_lines)],
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # here, where a failure is one line, not in Python's exit
    except MtbenchError as error:
        code = error.exit_code
        _say(error_line(str(error), code, json_lines=json_lines))
    except KeyboardInterrupt as stop:
        code = _interrupted(stop, json_lines)
    except Exception as error:
        if args.verbose:
            traceback.print_exc()
        code = 1
        _say(
            _line(
                f"internal error: {type(error).__name__}: {error}; please report this "
                "(-v prints the traceback)",
                code,
                json_lines,
            )
        )
    finally:
        if json_lines:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            sys.stderr = stderr
    return code


def _line(text: str, exit_code: int, json_lines: bool) -> str:
    """A final line that is not an input error: `mtbench: ...`, or a JSON object with --json."""
    if json_lines:
        return json.dumps({"error": text, "exit_code": exit_code})
    from engine.display import terminal_text

    return f"mtbench: {terminal_text(text)}"


def _say(line: str) -> None:
    """The one line a failure prints (stderr may itself be gone: then the exit code speaks)."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)
