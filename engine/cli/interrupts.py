"""SIGINT and SIGTERM (and SIGHUP) outside a run's graceful stop: one line and exit 130 / 143 (129),
at any moment.

While a run sends requests, a signal stops it gracefully (`engine.cli.signals`). Before that (the
engine importing, reading config and data, opening the store), after it (teardown, printing) and in
every other command, the command ends with one line and 128 + the signal number, never a traceback
or a silent death. Python's own handling raises KeyboardInterrupt wherever the signal lands, and two
places cannot take that:

- inside an import, raising can crash a C extension's initialisation (orjson's segfaults), so the
  signal is sent again a moment later, once the import is done;
- inside the event loop, raising can leave the loop half-stopped (uvloop runs Python-level handlers
  in a callback that logs and drops the exception), so the signal cancels the command's task
  instead, and SignalExit is raised once the loop has unwound. Only a `critical` stretch (opening
  or closing a database connection, which a cancellation would leave half-done, with aiosqlite's
  thread then writing a traceback) holds a first signal until it ends; a second one does not
  wait. A loop that has not taken a cancellation for STUCK_SECONDS is stuck in a system call (a
  pipe with no writer, a hung disk) and would never take it: the next signal raises SignalExit
  right there, where the system call is retried.

Once the command's result is decided, `exit_with` keeps the interpreter's exit from answering a
signal with a traceback or a silent death too. Only the interpreter's own start-up, before the
engine's first line runs, is out of reach.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import time
from collections.abc import Coroutine, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

from engine.critical import critical, in_critical, when_critical_ends

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "STOP_SIGNALS",
    "SignalExit",
    "critical",
    "exit_with",
    "run_async",
    "signals_end_the_command",
    "take_pending_signal",
]

IMPORT_RETRY_SECONDS = 0.01
STUCK_SECONDS = 0.5  # a loop this late to run a cancellation is blocked in a system call


def _stop_signals() -> tuple[int, ...]:
    """SIGINT, SIGTERM and SIGHUP: a watcher started over ssh without nohup or tmux gets SIGHUP
    when the connection drops, and its default is a death without a word, answers in flight and
    all. One ignored when the engine starts (`nohup mtbench ...`) stays ignored."""
    hangup = getattr(signal, "SIGHUP", None)
    if hangup is None or signal.getsignal(hangup) is signal.SIG_IGN:
        return (signal.SIGINT, signal.SIGTERM)
    return (signal.SIGINT, signal.SIGTERM, hangup)


STOP_SIGNALS = _stop_signals()
_SIGNALS = STOP_SIGNALS
_RETRY_SIGNAL = (signal.SIGALRM,) if hasattr(signal, "setitimer") else ()


class SignalExit(KeyboardInterrupt):
    """SIGINT or SIGTERM ended the command; the exit code is 128 + `signum`.

    A KeyboardInterrupt, so that no `except Exception` on the way up can swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_deferred: int | None = None  # arrived during an import; sent again in a moment
_pending: int | None = None  # arrived in the event loop; taken at the next safe point
_in_event_loop = False  # inside `run_async`
_main_task: asyncio.Task[Any] | None = None
_cancel_sent_at: float | None = None  # when the loop was handed a cancellation it has not run


@contextlib.contextmanager
def signals_end_the_command() -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM end the command with SignalExit (as the module
    docstring says); the handlers that were there before come back after it."""
    before = {signum: signal.getsignal(signum) for signum in (*_SIGNALS, *_RETRY_SIGNAL)}
    with contextlib.suppress(ValueError):  # not the main thread: signals are not ours to take
        for signum in _SIGNALS:
            signal.signal(signum, _on_signal)
    when_critical_ends(_critical_ended)
    try:
        yield
        _raise_pending()
    finally:
        when_critical_ends(None)
        _give_back(before)


def _critical_ended() -> None:
    """A signal held while the store opened or closed a connection takes effect now."""
    if _pending is not None:
        _cancel_main_task()


def take_pending_signal() -> int | None:
    """The signal that arrived but has not ended anything yet, if any; it is now the caller's."""
    global _deferred, _pending
    signum = _pending or _deferred
    _deferred = _pending = None
    return signum


def run_async(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """`asyncio.run(coroutine)`; a signal meanwhile raises SignalExit once the loop is done."""
    global _in_event_loop, _cancel_sent_at
    import asyncio
    import inspect

    _in_event_loop = True
    try:
        return asyncio.run(_as_main_task(coroutine))
    except asyncio.CancelledError:
        if _pending is None:
            raise
        return None  # _raise_pending below says why
    finally:
        _in_event_loop = False
        _cancel_sent_at = None  # the loop is gone: a cancellation it never ran is not news
        if inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED:
            coroutine.close()  # never started: no "never awaited" warning
        _raise_pending()


async def _as_main_task(coroutine: Coroutine[Any, Any, Any]) -> Any:
    global _main_task
    import asyncio

    _main_task = asyncio.current_task()
    try:
        if _pending is not None or _deferred is not None:
            return None  # a signal came before the loop ran: do not start
        return await coroutine
    finally:
        _main_task = None


def _raise_pending() -> None:
    signum = take_pending_signal()
    if signum is not None:
        raise SignalExit(signum)


def exit_with(code: int) -> NoReturn:
    """End the process with `code`, the command's result.

    While Python waits for threads to end, a signal ends the process at once (one line, 128 + n):
    a thread that never ends must not make Ctrl-C useless. From the exit functions on, signals are
    ignored: what is left is quick, and Python would otherwise reset the handlers to the defaults
    (SIGTERM: die without a word) for its last tens of milliseconds.
    """
    with contextlib.suppress(ValueError):
        for signum in _SIGNALS:
            signal.signal(signum, _exit_now)
    atexit.register(_ignore_signals)  # exit functions run last-registered first: this one first
    sys.exit(code)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _deferred, _pending
    if _importing(frame) and _RETRY_SIGNAL:
        _deferred = signum
        signal.signal(signal.SIGALRM, _send_deferred)
        signal.setitimer(signal.ITIMER_REAL, IMPORT_RETRY_SECONDS)
        return
    _deferred = None
    if not _in_event_loop:
        _pending = None
        raise SignalExit(signum)
    if _loop_stuck():
        raise SignalExit(signum)  # _pending stays: if this is dropped, the cancellation is not
    first = _pending is None
    if first:
        _pending = signum
    if not first or not in_critical():  # a second signal does not wait for a critical stretch
        _cancel_main_task()


def _cancel_main_task() -> None:
    global _cancel_sent_at
    task = _main_task
    if task is not None and not task.done():
        if _cancel_sent_at is None:
            _cancel_sent_at = time.monotonic()
        task.get_loop().call_soon_threadsafe(_deliver_cancel, task)


def _loop_stuck() -> bool:
    return _cancel_sent_at is not None and time.monotonic() - _cancel_sent_at > STUCK_SECONDS


def _deliver_cancel(task: asyncio.Task[Any]) -> None:
    """Cancel, unless the signal was taken meanwhile (a run starting takes it, to stop well)."""
    global _cancel_sent_at
    _cancel_sent_at = None
    if _pending is not None and not task.done():
        task.cancel()


def _send_deferred(alarm: int, frame: FrameType | None) -> None:
    if _deferred is not None:
        signal.raise_signal(_deferred)


def _importing(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _give_back(before: dict[int, Any]) -> None:
    with contextlib.suppress(ValueError):
        if _RETRY_SIGNAL:
            signal.setitimer(signal.ITIMER_REAL, 0)  # a deferred signal was raised above
        for signum, handler in before.items():
            if handler is not None:
                signal.signal(signum, handler)


def _ignore_signals() -> None:
    with contextlib.suppress(ValueError):
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    with contextlib.suppress(Exception):
        print(f"mtbench: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(128 + signum)
