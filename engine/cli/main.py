"""The `mtbench` command line: parse arguments, run the command, print, pick the exit code.

Exit codes: 0 every job succeeded; 1 some jobs failed (summary printed), or the engine failed
internally (one line); 2 bad config, data or store (one line, nothing sent, nothing stored
touched); 3 the store could not be written during a run (one line; everything committed is kept,
rerunning resumes); 130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP.

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
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import NoReturn

from engine.cli.interrupts import SignalExit, exit_with, signals_end_the_command
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


def _install_loop_policy() -> None:
    import asyncio

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


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
    from engine.cli.parser import parser
    from engine.display import JsonLinesStderr, error_line

    try:
        args = parser(__doc__.splitlines()[0]).parse_args(argv)
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
