"""`mtbench run --watch`: score checkpoints as training writes them, and say what it waits for.

The loop is `engine.run.watch`; this module adds its flags (`--poll`, `--until-idle`,
`--stop-file`), loads the config with the sweeps left unexpanded (a glob may match nothing yet),
shows at every poll what the watcher is waiting for (`watch: 2 scored; waiting: step-1300 (no
config.json yet), step-1400 (settling, 12 s)`, on stderr; a `{"watch": ...}` line with `--json`),
and prints at the end what became of every checkpoint. Exit 0 when every checkpoint it ran was
scored, 1 when one failed for good; Ctrl-C and SIGTERM stop it as they stop a run (130/143).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError, InputError

if TYPE_CHECKING:
    from engine.run.watch import WatchResult, WatchStatus

__all__ = ["add_watch_arguments", "cmd_watch", "status_line", "watched"]

POLL_RANGE = (0.01, 86_400.0)
WAITING_SHOWN = 10  # checkpoints named in a status line (--json lists them all)
_DURATION = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|h|d)?\s*", re.IGNORECASE)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_WATCH_ONLY = ("poll", "until_idle", "stop_file")


def duration(text: str) -> float:
    """`90`, `90s`, `10m`, `2h`, `1d` in seconds (argparse type for --until-idle)."""
    match = _DURATION.fullmatch(text)
    seconds = math.nan
    if match is not None:
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if not (math.isfinite(seconds) and 0 < seconds <= 365 * 86_400):
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 90, 90s, 10m or 2h (up to a year), got {text!r}"
        )
    return seconds


def add_watch_arguments(
    sub: argparse.ArgumentParser, seconds: Callable[[float, float], Callable[[str], float]]
) -> None:
    """The watch flags; `seconds(low, high)` is the parser's type for a number of seconds."""
    sub.add_argument(
        "--watch",
        action="store_true",
        help="keep polling the checkpoints globs and score each checkpoint once it is complete",
    )
    sub.add_argument(
        "--poll",
        type=seconds(*POLL_RANGE),
        help="with --watch: seconds between looks at the globs (default 60)",
    )
    sub.add_argument(
        "--until-idle",
        type=duration,
        metavar="DURATION",
        help="with --watch: stop after this long with no new checkpoint (90s, 10m, 2h)",
    )
    sub.add_argument("--stop-file", metavar="PATH", help="with --watch: stop once this file exists")


def watched(args: argparse.Namespace) -> int | None:
    """The exit code of the watch `args` ask for; None without --watch (an ordinary run).

    --poll, --until-idle and --stop-file mean nothing without --watch: refused, not ignored."""
    if args.watch:
        return cmd_watch(args)
    for name in _WATCH_ONLY:
        if getattr(args, name) is not None:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} is for watch mode; add --watch or remove {flag}")
    return None


def cmd_watch(args: argparse.Namespace) -> int:
    from engine.cli.commands import run_result
    from engine.cli.control import SignalControl
    from engine.cli.progress_views import progress_view
    from engine.config import load_config
    from engine.run.watch import WatchOptions, watch

    mode = "quiet" if args.quiet else args.progress or ("json" if args.json else "auto")
    config = load_config(args.config, watch=True)
    if not config.sweeps:
        raise ConfigError(
            f"{args.config}: --watch needs a [[model]] with 'checkpoints' (a glob to watch)"
        )
    options = WatchOptions(
        poll=60.0 if args.poll is None else args.poll,
        until_idle=args.until_idle,
        stop_file=None if args.stop_file is None else _stop_file(args.stop_file),
    )
    control = SignalControl(resume=f"mtbench {args.command} -c {args.config} --watch")
    result = run_result(
        control.interrupts(
            lambda: watch(
                config,
                args.command,
                options=options,
                data_flag=args.data,
                progress=progress_view(mode, args.progress_interval),
                control=control,
                show=_status_printer(mode),
            )
        )
    )
    _print_result(result, config.store, json_output=args.json)
    return 0 if result.ok else 1


def _stop_file(text: str) -> Path:
    """The --stop-file path, refused (exit 2) if the watcher could never see it appear: an empty
    path (which is `.`, there already: the watcher would stop before it began) or one in a
    directory it may not search."""
    if not text:
        raise InputError("--stop-file needs a path, e.g. --stop-file /ckpts/run-7/DONE")
    path = Path(text)
    try:
        path.stat()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise InputError(
            f"--stop-file {text}: cannot look for it ({error.strerror}); give a path in a "
            "directory this user may search"
        ) from None
    return path


def _status_printer(mode: str) -> Callable[[WatchStatus], None]:
    import orjson

    def show(status: WatchStatus) -> None:
        if mode == "quiet":
            return
        if mode == "json":
            line = orjson.dumps({"watch": _status_json(status)}).decode()
        else:
            line = status_line(status)
        with suppress(OSError, ValueError):  # a display must never stop the watcher
            print(line, file=sys.stderr, flush=True)

    return show


def status_line(status: WatchStatus) -> str:
    """`watch: 2 scored, 1 failed; waiting: step-1300 (no config.json yet), ...`"""
    from engine.display import terminal_text

    done = f"{len(status.scored)} scored"
    if status.failed:
        done += f", {len(status.failed)} failed"
    if status.changed:
        done += f", {len(status.changed)} changed after scoring"
    if not status.waiting:
        return f"watch: {done}; waiting for new checkpoints (idle {status.idle:.0f} s)"
    shown = status.waiting[:WAITING_SHOWN]  # a line per poll, not 40 kB for 1000 checkpoints
    waiting = ", ".join(
        f"{terminal_text(w.label, name=True)} ({terminal_text(w.reason)})" for w in shown
    )
    more = len(status.waiting) - len(shown)
    if more:
        waiting += f", and {more} more"
    return f"watch: {done}; waiting: {waiting}"


def _status_json(status: WatchStatus) -> dict[str, Any]:
    return {
        "scored": list(status.scored),
        "failed": list(status.failed),
        "changed": list(status.changed),
        "waiting": [{"checkpoint": w.label, "reason": w.reason} for w in status.waiting],
        "idle": round(status.idle, 3),
    }


def _print_result(result: WatchResult, store: Path, *, json_output: bool) -> None:
    import orjson

    from engine.cli.summary import tally_json
    from engine.display import format_table, terminal_text

    ended = "no new checkpoint for --until-idle" if result.ended_by == "idle" else "stop file"
    if json_output:
        summary = {
            "command": "run",
            "watch": True,
            "store": str(store),
            "ended_by": result.ended_by,
            "ok": result.ok,
            "checkpoints": [
                {"checkpoint": c.label, "outcome": c.outcome, "attempts": c.attempts}
                | {"reason": c.reason, "path": c.path}
                for c in result.checkpoints
            ],
            "failed_models": list(result.failed_models),
            "runs": [tally_json(run.summary) for run in result.runs],
        }
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return
    rows = [(c.label, c.outcome, c.attempts) for c in result.checkpoints]
    print(f"watch ended ({ended}); runs: {len(result.runs)}")
    table = format_table(("checkpoint", "outcome", "attempts"), rows, left_columns=2)
    header, *lines = table.splitlines()
    print(header)
    for line, checkpoint in zip(lines, result.checkpoints, strict=True):
        said = checkpoint.outcome in ("waiting", "gone") and checkpoint.reason
        print(f"{line}  ({terminal_text(checkpoint.reason)})" if said else line)
    for checkpoint in result.checkpoints:
        if checkpoint.outcome in ("failed", "retrying", "changed"):
            reason = "\n".join(terminal_text(line) for line in checkpoint.reason.splitlines())
            if checkpoint.outcome == "changed":  # its reason names it
                print(reason)
            else:
                print(f"{terminal_text(checkpoint.label, name=True)}: {reason}")
    for model in result.failed_models:
        print(f"{terminal_text(model, name=True)}: failed (see `mtbench show`)")
    print(f"store: {terminal_text(store)}")
