"""The store failing during a run (disk full, lock timeout, damage): exit 3, one line, nothing
committed lost, and a rerun after the cause is gone resumes.

Disk full is real: the store lives on a small tmpfs (we mount one when we may) that a run fills;
without the right to mount, SQLite's own `max_page_count` limit on the writer plays the full disk.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.engineproc import ended, integrity, start_engine
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

RUN_SECONDS = 60
TMPFS_BYTES = 4 * 1024 * 1024  # a run of two models and a judge needs more than this
PAGE_LIMIT = 250  # pages: about half of what the run stores, when the page count is the limit


def snapshot(store: Path) -> dict[tuple, str]:
    """Every stored answer and judgment: slot -> response key."""
    with sqlite3.connect(store) as db:
        answers = db.execute("SELECT model, question_id, turn, response_key FROM answers")
        found = {("answer", m, q, t): k for m, q, t, k in answers}
        judgments = db.execute("SELECT model, question_id, turn, response_key FROM judgments")
        found.update({("judgment", m, q, t): k for m, q, t, k in judgments})
    return found


def config_for(directory: Path, store: Path, fake: FakeServer) -> Path:
    models = [model(name, fake.base_url, concurrency=4) for name in ("alpha", "beta")]
    judge = {"name": "judge-a", "base_url": fake.base_url, "concurrency": 8}
    return write_config(directory, models=models, judge=judge, store=str(store))


class Tmpfs:
    """A tmpfs mounted for one test: a disk that really fills up."""

    def __init__(self, mountpoint: Path, size: int = TMPFS_BYTES) -> None:
        self.mountpoint = mountpoint
        self.size = size

    def mount(self) -> bool:
        if os.geteuid() != 0:
            return False
        self.mountpoint.mkdir()
        command = ["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs"]
        return subprocess.run([*command, str(self.mountpoint)], capture_output=True).returncode == 0

    def free_space(self) -> None:
        size = TMPFS_BYTES * 16
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.mountpoint)], check=True)

    def unmount(self) -> None:
        if subprocess.run(["umount", str(self.mountpoint)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path | None]:
    """A directory on a 4 MiB tmpfs, or None where mounting is not allowed: then the writer's
    connection gets `PRAGMA max_page_count` instead (in-process runs), until `monkeypatch.undo`."""
    disk = Tmpfs(tmp_path / "disk")
    if disk.mount():
        try:
            yield disk.mountpoint
        finally:
            disk.unmount()
        return
    import engine.store.writer

    original = engine.store.writer.configure_connection

    def limited(db: sqlite3.Connection) -> None:
        original(db)
        db.execute(f"PRAGMA max_page_count = {PAGE_LIMIT}")

    monkeypatch.setattr(engine.store.writer, "configure_connection", limited)
    yield None


def run_engine(capsys: pytest.CaptureFixture[str], config: Path, *, in_process: bool) -> tuple:
    """(exit code, stdout, stderr) of `mtbench run`, bounded in time either way."""
    started = time.monotonic()
    if in_process:
        code, out, err = mtbench(capsys, "run", "-c", str(config), "--quiet")
    else:
        process = start_engine("run", "-c", str(config), "--quiet")
        out, err = ended(process, timeout=RUN_SECONDS)
        code = process.returncode
    assert time.monotonic() - started < RUN_SECONDS
    return code, out, err


def test_a_full_disk_ends_the_run_with_exit_3_and_a_rerun_after_freeing_space_resumes(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    small_disk: Path | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = small_disk or tmp_path
    store = directory / "store.sqlite"
    config = config_for(tmp_path, store, fake)

    code, _, err = run_engine(capsys, config, in_process=small_disk is None)
    assert code == 3, err
    (line,) = err.splitlines()
    assert line.startswith(f"mtbench: error: {store}: the store could not be written (")
    assert "full" in line
    assert f"free space on {directory.resolve()}, then rerun the same command" in line
    assert integrity(store) == "ok"
    before = snapshot(store)
    assert before  # the disk filled mid-run, after answers were committed

    if small_disk is None:
        monkeypatch.undo()
    else:
        Tmpfs(small_disk).free_space()
    code, _, err = run_engine(capsys, config, in_process=small_disk is None)
    assert code == 0, err
    after = snapshot(store)
    assert {slot: after[slot] for slot in before} == before  # nothing committed was lost
    assert len([s for s in after if s[0] == "answer"]) == 320
    assert len([s for s in after if s[0] == "judgment"]) == 320
    assert integrity(store) == "ok"


def test_a_disk_that_fills_while_the_run_records_its_questions_exits_3_before_sending(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    disk = Tmpfs(tmp_path / "disk", size=160 * 1024)  # room for a new store, not its questions
    if not disk.mount():
        pytest.skip(
            "mounting a tmpfs needs root (CAP_SYS_ADMIN); the page-limit fallback "
            "cannot reach the connection that records the questions"
        )
    try:
        store = disk.mountpoint / "store.sqlite"
        config = config_for(tmp_path, store, fake)
        code, _, err = run_engine(capsys, config, in_process=False)
        assert code == 3, err
        (line,) = err.splitlines()
        assert f"{store}: the store could not be written (database or disk is full)" in line
        assert fake.stats(arrivals=False)["requests"] == 0
        assert integrity(store) == "ok"
        disk.free_space()
        code, _, err = run_engine(capsys, config, in_process=False)
        assert code == 0, err
        assert len(snapshot(store)) == 640
    finally:
        disk.unmount()


def test_another_program_holding_the_write_lock_past_the_timeout_ends_the_run_with_exit_3(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import engine.store.store

    monkeypatch.setattr(engine.store.store, "BUSY_TIMEOUT_MS", 300)
    fake.configure(latency_median=0.02)
    store = tmp_path / "store.sqlite"
    config = config_for(tmp_path, store, fake)
    release = threading.Event()

    def hold_the_lock_mid_run() -> None:
        while fake.stats(arrivals=False)["ok"] < 40:
            time.sleep(0.01)
        with sqlite3.connect(store, isolation_level=None) as other:
            other.execute("BEGIN IMMEDIATE")
            release.wait(RUN_SECONDS)
            other.execute("ROLLBACK")

    holder = threading.Thread(target=hold_the_lock_mid_run)
    holder.start()
    try:
        code, _, err = run_engine(capsys, config, in_process=True)
    finally:
        release.set()
        holder.join()
    assert code == 3, err
    (line,) = err.splitlines()
    assert f"{store}: the store could not be written (database is locked)" in line
    assert "another program holds a lock on the store" in line
    before = snapshot(store)
    assert before
    assert integrity(store) == "ok"

    code, _, err = run_engine(capsys, config, in_process=True)
    assert code == 0, err
    after = snapshot(store)
    assert {slot: after[slot] for slot in before} == before
    assert len(after) == 640


def test_a_damaged_store_found_by_a_cache_lookup_ends_the_run_with_exit_3(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store.sqlite"
    config = config_for(tmp_path, store, fake)
    assert run_engine(capsys, config, in_process=False)[0] == 0
    with sqlite3.connect(store) as db:
        leaves = [
            page
            for (page,) in db.execute(
                "SELECT pageno FROM dbstat WHERE name = 'responses' AND pagetype = 'leaf'"
            )
        ]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    with store.open("r+b") as handle:  # the cache's rows, not the index or the schema
        for page in leaves:
            handle.seek((page - 1) * page_size)
            handle.write(b"\xa5" * page_size)

    code, _, err = run_engine(capsys, config, in_process=False)
    assert code == 3, err
    (line,) = err.splitlines()
    assert f"{store}: the store could not be written (database disk image is malformed)" in line
    assert "the file is damaged" in line
