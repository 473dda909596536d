"""Run `mtbench` as a real subprocess, for tests that kill or signal it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ended", "integrity", "start_engine", "wait_until"]


def start_engine(*argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`mtbench argv` in a process of its own; `env` adds to (or overrides) this one's."""
    return subprocess.Popen(
        [sys.executable, "-m", "engine", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )


def ended(process: subprocess.Popen[str], *, timeout: float) -> tuple[str, str]:
    """(stdout, stderr) of an engine that must end by itself within `timeout` seconds.

    One that does not is killed, so a hang fails its test instead of outliving it.
    """
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"the engine did not end within {timeout}s; stderr: {err}") from None


def wait_until(check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.01) -> Any:
    """Poll `check` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def integrity(store: Path) -> str:
    with sqlite3.connect(store) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
