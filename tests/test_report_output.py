"""Where `mtbench report -o` writes: never over a store, and never in place of a device or pipe.

`-o` naming the store (a typo, a tab completion one word off) used to replace every answer paid
for with HTML, exit 0; `-o /dev/null` as root replaced the system's /dev/null with a regular file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from engine.interop import import_fastchat
from tests.support.engineproc import ended, start_engine, wait_until
from tests.support.paths import FASTCHAT_REFERENCE
from tests.support.runconfig import mtbench


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite"
    asyncio.run(import_fastchat(path, FASTCHAT_REFERENCE))
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["itself", "symlink", "hard link", "lock"])
def test_a_report_over_the_store_by_any_name_is_refused_and_the_store_kept(
    capsys: pytest.CaptureFixture[str], store: Path, name: str
) -> None:
    out = {
        "itself": store,
        "symlink": store.with_name("link.sqlite"),
        "hard link": store.with_name("hard.sqlite"),
        "lock": store.with_name(store.name + ".lock"),
    }[name]
    if name == "symlink":
        out.symlink_to(store.name)
    elif name == "hard link":
        os.link(store, out)
    elif name == "lock":
        out.write_text("1234")
    before = _digest(store)
    code, _, err = mtbench(capsys, "report", "--store", str(store), "-o", str(out))
    assert code == 2, err
    assert err.startswith(f"mtbench: error: {out}: ") and len(err.splitlines()) == 1
    assert _digest(store) == before
    assert mtbench(capsys, "show", "--store", str(store))[0] == 0


def test_a_report_over_another_sqlite_database_is_refused(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    before = _digest(other)
    code, _, err = mtbench(capsys, "report", "--store", str(store), "-o", str(other))
    assert code == 2 and "is a SQLite database" in err
    assert _digest(other) == before


def test_a_report_into_a_pipe_is_written_into_it_not_over_it(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    code, _, err = mtbench(capsys, "report", "--store", str(store), "-o", str(fifo))
    reader.join(timeout=30)
    assert code == 0, err
    assert fifo.is_fifo()  # still a pipe, not a regular file put in its place
    assert received and received[0].startswith(b"<!DOCTYPE html>")


def test_a_report_through_a_symlink_replaces_its_target_and_keeps_the_link(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    target = tmp_path / "reports" / "latest.html"
    target.parent.mkdir()
    target.write_text("old report")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    code, _, err = mtbench(capsys, "report", "--store", str(store), "-o", str(link))
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == target
    assert target.read_text().startswith("<!DOCTYPE html>")


def test_a_report_waiting_for_a_pipe_reader_ends_at_a_signal(store: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    report = start_engine("report", "--store", str(store), "-o", str(fifo))
    started = time.monotonic()
    wait_until(lambda: _waits_for_a_reader(report.pid) or time.monotonic() - started > 5)
    report.send_signal(signal.SIGTERM)
    _, err = ended(report, timeout=30)
    assert report.returncode == 143, err
    assert err == "mtbench: interrupted by SIGTERM\n"
    assert fifo.is_fifo()


def _waits_for_a_reader(pid: int) -> bool:
    """The process sleeps in open(2) of a FIFO (where the kernel shows it; else assume so)."""
    try:
        return "wait_for_partner" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False
