"""The CLI's progress views: a live table on a terminal, a log line per phase, or JSON lines.

`--progress auto` is a rich live table when stdout is a terminal and a plain line every few seconds
when it is not; `json` writes one object per tick on stderr (with `--json`, every line on stderr is
JSON). Names are escaped for the terminal, and never read as rich markup. A view that fails is
reported once by `GuardedView`, and the run goes on without it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict

import orjson

from engine.display import format_dollars, terminal_text
from engine.run.progress import ProgressView, Snapshot

__all__ = [
    "PROGRESS_MODES",
    "GuardedView",
    "JsonView",
    "PlainView",
    "RichView",
    "make_view",
    "progress_view",
]

PROGRESS_MODES = ("auto", "rich", "plain", "json", "quiet")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def plain_line(snapshot: Snapshot) -> str:
    line = (
        f"{terminal_text(snapshot.name, name=True)}: {snapshot.finished}/{snapshot.jobs} done "
        f"({snapshot.cached} cached, {snapshot.failed} failed), "
        f"{snapshot.requests_per_s:.1f} req/s, {snapshot.tokens_per_s:.0f} tok/s, "
        f"{snapshot.retries} retries, {snapshot.rate_limited} 429s, "
        f"ETA {_clock(snapshot.eta)}, cost {format_dollars(snapshot.cost)}"
    )
    if snapshot.hedged or snapshot.stalled:
        line += f", {snapshot.hedged} hedged, {snapshot.stalled} stalled"
    return line


def pause_line(snapshot: Snapshot) -> str | None:
    """`judge: paused until 23:14:05 (rate limited: ...)`, while a 429 pause is on."""
    if snapshot.paused_until is None:
        return None
    until = time.strftime("%H:%M:%S", time.localtime(snapshot.paused_until))
    name = terminal_text(snapshot.name, name=True)
    return f"{name}: paused until {until} (rate limited: the server asked to wait)"


class PlainView:
    """A log line per phase every `interval` seconds, for logs and pipes."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    def show(self, snapshots: list[Snapshot]) -> None:
        for snapshot in snapshots:
            if snapshot.role == "phase":
                print(f"progress {plain_line(snapshot)}", file=sys.stderr, flush=True)
            elif (paused := pause_line(snapshot)) is not None:
                print(f"progress {paused}", file=sys.stderr, flush=True)
            if snapshot.server is not None:
                name = terminal_text(snapshot.name, name=True)
                server = terminal_text(snapshot.server)
                print(f"progress {name}: server {server}", file=sys.stderr, flush=True)

    def close(self, snapshots: list[Snapshot]) -> None:
        self.show(snapshots)


class JsonView:
    """One JSON object per tick on stderr: {"progress": [snapshot, ...]}."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    def show(self, snapshots: list[Snapshot]) -> None:
        line = orjson.dumps({"progress": [asdict(s) for s in snapshots]}).decode()
        print(line, file=sys.stderr, flush=True)

    def close(self, snapshots: list[Snapshot]) -> None:
        self.show(snapshots)


class RichView:
    """A live table with one bar per phase and per endpoint, redrawn in place.

    Started by its first snapshot: the table takes over the terminal only once the run sends."""

    def __init__(self, interval: float) -> None:
        from rich.console import Console
        from rich.live import Live

        self.interval = interval
        self._live = Live(console=Console(), auto_refresh=False, transient=False)

    def _table(self, snapshots: list[Snapshot]) -> object:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False)
        for header in ("", "", "done", "cached", "req/s", "tok/s", "retries", "429s", "failed"):
            table.add_column(header, justify="right" if header else "left")
        table.add_column("ETA", justify="right")
        table.add_column("cost", justify="right")
        table.add_column("")
        for s in snapshots:
            # Text, not a markup string: a name like "[red]x" is shown as it is.
            name = terminal_text(s.name, name=True)
            table.add_row(
                Text(name, style="bold") if s.role == "phase" else Text(f"  {name}"),
                ProgressBar(total=max(1, s.jobs), completed=s.finished, width=24),
                f"{s.finished}/{s.jobs}",
                str(s.cached),
                f"{s.requests_per_s:.1f}",
                f"{s.tokens_per_s:.0f}",
                str(s.retries),
                str(s.rate_limited),
                str(s.failed),
                _clock(s.eta),
                format_dollars(s.cost),
                _status(s),
            )
        return table

    def show(self, snapshots: list[Snapshot]) -> None:
        if not self._live.is_started:
            self._live.start()
        self._live.update(self._table(snapshots), refresh=True)  # type: ignore[arg-type]

    def close(self, snapshots: list[Snapshot]) -> None:
        self.show(snapshots)
        self._live.stop()


def _status(snapshot: Snapshot) -> str:
    """What the numbers do not say: a 429 pause, twins sent for silent attempts, stalls cut."""
    notes = [] if snapshot.server is None else [f"server {terminal_text(snapshot.server)}"]
    if snapshot.paused_until is not None:
        notes.append(
            f"paused until {time.strftime('%H:%M:%S', time.localtime(snapshot.paused_until))}"
        )
    if snapshot.hedged:
        notes.append(f"{snapshot.hedged} hedged")
    if snapshot.stalled:
        notes.append(f"{snapshot.stalled} stalled")
    return ", ".join(notes)


def make_view(mode: str, *, interval: float | None = None) -> ProgressView | None:
    """The view for a mode; 'auto' is rich on a terminal, plain lines otherwise."""
    if mode == "auto":
        mode = "rich" if sys.stdout.isatty() else "plain"
    if mode == "quiet":
        return None
    if mode == "rich":
        return RichView(interval or 0.5)
    if mode == "json":
        return JsonView(interval or 5.0)
    return PlainView(interval or 5.0)


class GuardedView:
    """A view whose first failure is said once on stderr; after it, the run shows nothing."""

    def __init__(self, view: ProgressView) -> None:
        self.view = view
        self.interval = view.interval
        self.failed = False

    def show(self, snapshots: list[Snapshot]) -> None:
        self._guarded(self.view.show, snapshots)

    def close(self, snapshots: list[Snapshot]) -> None:
        self._guarded(self.view.close, snapshots)

    def _guarded(self, step: Callable[[list[Snapshot]], None], snapshots: list[Snapshot]) -> None:
        if self.failed:
            return
        try:
            step(snapshots)
        except Exception as error:
            self.failed = True
            progress_failed(error)


def progress_failed(error: Exception) -> None:
    with suppress(OSError, ValueError):  # stderr itself may be what broke
        print(
            f"mtbench: progress display failed ({type(error).__name__}: {error}); "
            "the run goes on without it",
            file=sys.stderr,
            flush=True,
        )


def progress_view(mode: str, interval: float | None) -> ProgressView | None:
    """The view `--progress` asks for, guarded; None for `quiet` or a view that cannot start."""
    try:
        view = make_view(mode, interval=interval)
    except Exception as error:
        progress_failed(error)
        return None
    return None if view is None else GuardedView(view)
