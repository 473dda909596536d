"""A command started with stdin, stdout or stderr closed (`mtbench ... <&-`, a daemon's child)
runs as with /dev/null there: it used to die of SIGABRT in uvloop (exit 134), its summary lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, write_config

RUN_SECONDS = 60


def run_with_closed(fd: int, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *argv],
        preexec_fn=lambda: os.close(fd),  # after the pipes are in place: this one is closed
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )


@pytest.mark.parametrize("fd", [0, 1, 2], ids=["stdin", "stdout", "stderr"])
def test_a_run_and_show_with_a_standard_stream_closed_end_normally(
    tmp_path: Path, fake: FakeServer, fd: int
) -> None:
    judge = {"name": "judge-a", "base_url": fake.base_url}
    config = write_config(
        tmp_path, models=[model("alpha", fake.base_url)], judge=judge, questions=[81, 82]
    )
    done = run_with_closed(fd, "run", "-c", str(config), "--quiet")
    assert done.returncode == 0, done.stderr
    if fd != 1:
        assert "store: " in done.stdout
    shown = run_with_closed(fd, "show", "--store", str(tmp_path / "store.sqlite"))
    assert shown.returncode == 0, shown.stderr
    if fd != 1:
        assert "alpha" in shown.stdout
