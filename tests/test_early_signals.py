"""SIGINT / SIGTERM at any moment of `mtbench`, from its first line on: one line, exit 130 / 143.

The moments are counted from when the engine has taken the signals over (the first line of `main`,
seen from outside as the process catching SIGTERM in /proc/<pid>/status), because before that the
Python interpreter is still starting and only its defaults can answer. From there the engine is
still importing for a tenth of a second or more, then reads config and data, opens the store and
starts sending: the moments below fall in each of those phases.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.engineproc import integrity
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, write_config

MOMENTS = (0.0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.35)
SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]
# What the installed `mtbench` script runs: its entry point, as pip's generated script calls it.
CONSOLE_SCRIPT = (
    "import sys; from importlib.metadata import entry_points; "
    "(script,) = entry_points(group='console_scripts', name='mtbench'); sys.exit(script.load()())"
)


def catches_sigterm(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def signal_once_engine_started(command: list[str], signum: int, moment: float) -> tuple[int, str]:
    """Start `command`, wait until it handles signals itself, wait `moment` more, send `signum`."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not catches_sigterm(process.pid):
        assert process.poll() is None and time.monotonic() < deadline, "never took the signals"
        time.sleep(0.001)
    time.sleep(moment)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


def run_config(directory: Path, fake: FakeServer) -> Path:
    directory.mkdir()
    judge = {"name": "judge-a", "base_url": fake.base_url}
    models = [model("alpha", fake.base_url)]
    return write_config(directory, models=models, judge=judge, questions=[81, 82, 83])


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="needs /proc to see when the engine has started"
)
@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_a_signal_at_any_early_moment_ends_the_run_with_one_line_and_its_exit_code(
    tmp_path: Path, fake: FakeServer, signum: int, code: int
) -> None:
    # three answers and a judgment in a chain take >= 0.6 s: the last moment (0.35 s) still
    # falls inside the run, whatever the machine's speed
    fake.configure(latency_median=0.2)
    name = signal.Signals(signum).name
    early_exits = 0
    for moment in MOMENTS:
        config = run_config(tmp_path / f"at-{moment}", fake)
        command = [sys.executable, "-m", "engine", "run", "-c", str(config), "--quiet"]
        returncode, err = signal_once_engine_started(command, signum, moment)
        lines = err.splitlines()
        assert returncode == code, (moment, err)
        assert "Traceback" not in err, (moment, err)
        # Before the run sends anything: one line. Once it sends: the graceful stop's two lines.
        assert 1 <= len([line for line in lines if line.strip()]) <= 2, (moment, err)
        assert all(name in line for line in lines if line.strip()), (moment, err)
        early_exits += lines == [f"mtbench: interrupted by {name}"]
        store = config.parent / "store.sqlite"
        if store.exists():  # whatever the moment, the store is whole and the run resumes
            assert integrity(store) == "ok"
            resumed = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert resumed.returncode == 0, (moment, resumed.stderr)
    assert early_exits >= 3  # the first moments did fall before the run (while importing)


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="needs /proc to see when the engine has started"
)
@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_the_console_script_answers_a_signal_while_importing_with_one_line(
    tmp_path: Path, signum: int, code: int
) -> None:
    config = write_config(tmp_path, models=[model("alpha", "http://127.0.0.1:9/v1")])
    command = [sys.executable, "-c", CONSOLE_SCRIPT, "plan", "-c", str(config)]
    returncode, err = signal_once_engine_started(command, signum, 0.0)
    assert (returncode, err) == (code, f"mtbench: interrupted by {signal.Signals(signum).name}\n")
    assert not (tmp_path / "store.sqlite").exists()
