"""Where a signal may not simply raise: inside an import, inside the event loop.

Each case runs in a child process that signals itself at a chosen point, so the point is exact.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX signals")


def run_child(code: str, directory: Path, *, stderr: str = "") -> str:
    """Run `code` in a child process; its stdout (its stderr must be `stderr`)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=directory,
    )
    assert done.returncode == 0 and done.stderr == stderr, done.stderr
    return done.stdout.strip()


def test_a_signal_during_an_import_ends_the_command_once_the_import_is_done(
    tmp_path: Path,
) -> None:
    (tmp_path / "signals_itself.py").write_text(
        "import os, signal, time\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(0.1)  # the handler runs here, inside the import\n"
        "finished = True\n"
    )
    output = run_child(
        """
        import sys, time
        sys.path.insert(0, ".")
        from engine.cli.interrupts import SignalExit, signals_end_the_command
        try:
            with signals_end_the_command():
                import signals_itself
                time.sleep(5)
            print("not interrupted")
        except SignalExit as stop:
            print("interrupted", stop.signum, sys.modules["signals_itself"].finished)
        """,
        tmp_path,
    )
    assert output == "interrupted 15 True"


def test_a_first_signal_in_the_event_loop_cancels_the_command(tmp_path: Path) -> None:
    output = run_child(
        """
        import asyncio, os, signal
        from engine.cli.interrupts import SignalExit, run_async, signals_end_the_command
        steps = []
        async def command():
            os.kill(os.getpid(), signal.SIGINT)
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                steps.append("cancelled")
                raise
        try:
            with signals_end_the_command():
                run_async(command())
        except SignalExit as stop:
            print("interrupted", stop.signum, steps)
        """,
        tmp_path,
    )
    assert output == "interrupted 2 ['cancelled']"


def test_a_first_signal_lets_a_critical_stretch_finish_then_cancels_the_command(
    tmp_path: Path,
) -> None:
    output = run_child(
        """
        import asyncio, os, signal
        from engine.cli.interrupts import SignalExit, critical, run_async, signals_end_the_command
        steps = []
        async def command():
            with critical():  # e.g. a database connection being opened
                os.kill(os.getpid(), signal.SIGINT)
                await asyncio.sleep(0.2)
                steps.append("finished")
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                steps.append("cancelled")
                raise
        try:
            with signals_end_the_command():
                run_async(command())
        except SignalExit as stop:
            print("interrupted", stop.signum, steps)
        """,
        tmp_path,
    )
    assert output == "interrupted 2 ['finished', 'cancelled']"


def test_a_second_signal_cancels_the_command_even_in_a_critical_stretch(tmp_path: Path) -> None:
    output = run_child(
        """
        import asyncio, os, signal
        from engine.cli.interrupts import SignalExit, critical, run_async, signals_end_the_command
        steps = []
        async def command():
            with critical():
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.sleep(0.05)
                os.kill(os.getpid(), signal.SIGTERM)
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    steps.append("cancelled")
                    raise
        try:
            with signals_end_the_command():
                run_async(command())
        except SignalExit as stop:
            print("interrupted", stop.signum, steps)
        """,
        tmp_path,
    )
    assert output == "interrupted 15 ['cancelled']"


def test_a_second_signal_ends_a_command_whose_loop_is_stuck_in_a_system_call(
    tmp_path: Path,
) -> None:
    """A blocking call on the loop (opening a pipe nobody writes, a hung disk) never lets the
    loop run the first signal's cancellation; the second signal must end the command anyway."""
    output = run_child(
        """
        import os, signal, threading, time
        from engine.cli.interrupts import SignalExit, run_async, signals_end_the_command
        pid = os.getpid()
        async def command():
            for delay in (0.1, 1.0):
                threading.Timer(delay, os.kill, (pid, signal.SIGINT)).start()
            time.sleep(20)  # resumed after each handler that returns, as open(2) of a pipe is
        started = time.monotonic()
        try:
            with signals_end_the_command():
                run_async(command())
        except SignalExit as stop:
            print("interrupted", stop.signum, time.monotonic() - started < 10)
        """,
        tmp_path,
    )
    assert output == "interrupted 2 True"


def test_handlers_that_were_there_before_come_back_after_the_command(tmp_path: Path) -> None:
    output = run_child(
        """
        import signal
        from engine.cli.interrupts import signals_end_the_command
        before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        with signals_end_the_command():
            during = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        after = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        print(after == before, during != before)
        """,
        tmp_path,
    )
    assert output == "True True"


def test_a_signal_that_came_while_a_run_was_prepared_stops_it_as_it_starts(
    tmp_path: Path,
) -> None:
    output = run_child(
        """
        import asyncio, os, signal
        from engine.cli.interrupts import SignalExit, critical, run_async, signals_end_the_command
        from engine.cli.signals import StopSignals
        steps = []
        async def run():
            with critical():  # the store being opened as the run is prepared
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.sleep(0.05)
            stop = StopSignals()
            stop.on_stop = lambda: steps.append("stopped before sending")
            with stop:
                steps.append(f"run received {stop.received}")
        with signals_end_the_command():
            run_async(run())
        print(steps)
        """,
        tmp_path,
        stderr="\nSIGTERM: stopping; finishing the requests in flight for up to 20 s (press "
        "Ctrl-C again to abort them)\n",
    )
    assert output == "['stopped before sending', 'run received 15']"


def test_a_runs_graceful_handlers_give_the_signals_back_when_it_ends(tmp_path: Path) -> None:
    output = run_child(
        """
        import asyncio, signal
        from engine.cli.interrupts import run_async, signals_end_the_command
        from engine.cli.signals import StopSignals
        async def run():
            with StopSignals():
                pass
            return signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        with signals_end_the_command():
            ours = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
            print(run_async(run()) == ours)
        """,
        tmp_path,
    )
    assert output == "True"
