"""stdout that cannot take the output (a full disk, `| head` gone before the table) is one line
and exit 1: it was Python's "Exception ignored ... OSError" and exit 120, or "internal error:
BrokenPipeError ... please report this"."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.interop import import_fastchat
from tests.support.paths import FASTCHAT_REFERENCE

DEV_FULL = Path("/dev/full")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stdout") / "store.sqlite"
    asyncio.run(import_fastchat(path, FASTCHAT_REFERENCE))
    return path


def show(store: Path, stdout: int, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as most users run
    return subprocess.run(
        [sys.executable, "-m", "engine", "show", "--store", str(store), *flags],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize("flags", [(), ("--json",)], ids=["text", "json"])
def test_output_to_a_full_disk_is_one_line_and_exit_1(store: Path, flags: tuple[str, ...]) -> None:
    with DEV_FULL.open("w") as full:
        done = show(store, full.fileno(), *flags)
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.splitlines()
    assert "cannot write the output to stdout (No space left on device)" in line
    assert "Exception ignored" not in done.stderr and "internal error" not in done.stderr


def test_output_to_a_pipe_its_reader_closed_is_one_line_and_exit_1(store: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = show(store, write_end, "--json")
    finally:
        os.close(write_end)
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.splitlines()
    assert "cannot write the output to stdout (Broken pipe)" in line
