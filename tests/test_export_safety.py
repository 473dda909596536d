"""`export` says what it leaves out, never overwrites without --force, and writes all or nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from engine.interop import import_fastchat, record_questions
from tests.support.paths import FASTCHAT_REFERENCE, MTBENCH_DATA
from tests.support.runconfig import mtbench

ANSWER_FILES = sorted(p.name for p in (FASTCHAT_REFERENCE / "model_answer").glob("*.jsonl"))


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "store.sqlite"
    asyncio.run(import_fastchat(path, FASTCHAT_REFERENCE))
    return path


@pytest.fixture
def store(reference_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store.sqlite"
    shutil.copy(reference_store, copy)
    return copy


def _execute(store: Path, sql: str) -> None:
    with closing(sqlite3.connect(store)) as db, db:
        db.execute(sql)


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too) with its bytes."""
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _export(capsys: pytest.CaptureFixture[str], store: Path, dest: Path, *flags: str):
    return mtbench(capsys, "export", "--store", str(store), "--fastchat", str(dest), *flags)


def test_export_says_which_questions_it_left_out_and_why(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _execute(
        store, "DELETE FROM answers WHERE model = 'fake-beta' AND turn = 2 AND question_id < 84"
    )
    code, out, _ = _export(capsys, store, tmp_path / "out")
    assert code == 0
    assert (
        "left out: 3 answers of fake-beta because a turn is missing (FastChat's answer lines "
        "need every turn) (questions 81, 82, 83)"
    ) in out
    assert "fake-alpha" not in "".join(line for line in out.splitlines() if "left out" in line)


def test_a_store_of_turn_one_answers_is_not_called_empty(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As a run leaves it: the questions recorded (two turns each), only turn 1 answered.
    asyncio.run(record_questions(store, MTBENCH_DATA, "mt_bench"))
    _execute(store, "DELETE FROM answers WHERE turn = 2")
    _execute(store, "DELETE FROM judgments")
    dest = tmp_path / "out"
    code, out, err = _export(capsys, store, dest)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert "nothing to export for bench mt_bench: 80 answers of 'fake-alpha'" in line
    assert "a turn is missing" in line
    assert not dest.exists()


def test_export_refuses_to_replace_files_without_force_then_replaces_them_with_it(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "out"
    assert _export(capsys, store, dest)[0] == 0
    mine = dest / "model_answer" / "fake-alpha.jsonl"
    mine.write_text("my own edits\n")
    before = _tree(dest)
    code, out, err = _export(capsys, store, dest)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert str(dest / "model_answer") in line and "already exists (and" in line
    assert "--force" in line
    assert _tree(dest) == before
    code, out, _ = _export(capsys, store, dest, "--force")
    assert code == 0
    assert f"replaced {len(before)} files that were there (--force)" in out
    assert mine.read_text() != "my own edits\n"
    assert not [p for p in dest.rglob(".*")]  # no temporary file left


def test_a_failed_write_replaces_nothing_and_leaves_no_temporary_file(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "out"
    assert _export(capsys, store, dest)[0] == 0
    (dest / "model_answer" / "fake-alpha.jsonl").write_text("kept\n")
    # The judgment files cannot be written: their folder is a link to nowhere.
    shutil.rmtree(dest / "model_judgment")
    (dest / "model_judgment").symlink_to(tmp_path / "gone")
    before = _tree(dest)
    code, _, err = _export(capsys, store, dest, "--force")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert str(dest / "model_judgment") in line and "cannot write the export" in line
    assert _tree(dest) == before  # the answer files, written first, replaced nothing
    assert sorted(p.name for p in (dest / "model_answer").iterdir()) == ANSWER_FILES


def test_a_folder_where_a_file_belongs_is_one_line_and_nothing_is_written(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "out"
    blocker = dest / "model_judgment" / "gpt-4_single.jsonl"
    blocker.mkdir(parents=True)
    code, _, err = _export(capsys, store, dest, "--force")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert f"{blocker}: is a folder where this export writes a file" in line
    assert _tree(dest) == {} and not (dest / "model_answer").exists()


@pytest.mark.parametrize("where", ["dest", "model_answer"])
def test_a_file_where_a_folder_belongs_is_one_line_and_nothing_is_written(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    dest = tmp_path / "out"
    blocker = dest if where == "dest" else dest / "model_answer"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file\n")
    before = _tree(tmp_path / "out") if where != "dest" else {}
    code, out, err = _export(capsys, store, dest)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"mtbench: error: {blocker}: is a file, not a folder")
    assert blocker.read_text() == "a file\n"
    if where != "dest":
        assert _tree(dest) == before


@pytest.fixture
def unprivileged_dir() -> Iterator[Path]:
    """A folder under /tmp that the user `nobody` can enter (pytest's tmp_path is root's only)."""
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run the engine as an unprivileged user")
    folder = Path(tempfile.mkdtemp(prefix="mtbench-export-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_export_into_a_read_only_directory_is_one_line_and_writes_nothing(
    store: Path, unprivileged_dir: Path
) -> None:
    # The store sits where `nobody` may read it (and create its -shm); the destination does not.
    store_dir = unprivileged_dir / "store"
    store_dir.mkdir(mode=0o777)
    store_dir.chmod(0o777)
    readable = store_dir / "store.sqlite"
    shutil.copy(store, readable)
    readable.chmod(0o644)
    read_only = unprivileged_dir / "read-only"
    read_only.mkdir(mode=0o755)
    for dest in (read_only, read_only / "new"):
        result = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
             sys.executable, "-m", "engine", "export", "--store", str(readable),
             "--fastchat", str(dest)],
            capture_output=True, text=True, cwd=store_dir, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        (line,) = result.stderr.strip().splitlines()
        assert "cannot write the export (Permission denied)" in line
        assert str(dest) in line
        assert list(read_only.iterdir()) == []


def test_import_refuses_to_replace_stored_answers_with_other_text_without_force(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "edited"
    shutil.copytree(FASTCHAT_REFERENCE / "model_answer", source)
    path = source / "fake-alpha.jsonl"
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace('"turns": ["', '"turns": ["EDITED ', 1)
    path.write_text("\n".join(lines) + "\n")
    before = _snapshot(store)
    argv = ["import", "--store", str(store), "--fastchat", str(source)]
    code, out, err = mtbench(capsys, *argv)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert "holds other content for 1 answer turns of model 'fake-alpha'" in line
    assert "--force" in line
    assert _snapshot(store) == before
    code, out, _ = mtbench(capsys, *argv, "--force")
    assert code == 0
    assert "replaced stored 1 answer turns of model 'fake-alpha' (--force)" in out
    # The same files again replace nothing, so they need no --force.
    assert mtbench(capsys, *argv)[0] == 0


def _snapshot(store: Path) -> list[list[tuple[object, ...]]]:
    with closing(sqlite3.connect(store)) as db:
        return [
            sorted(db.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("responses", "answers", "judgments")
        ]
