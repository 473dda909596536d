"""A store path that cannot work is refused with one line and exit 2, and nothing is created.

"Nothing" means no store file, no -wal/-shm, no .lock and no directory. Permission cases run the
engine as an unprivileged user (root reads and writes everything), through `setpriv` when the
tests run as root.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import StoreError
from engine.interop import import_fastchat
from engine.store.store import open_store
from tests.support.engineproc import ended, start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.paths import FASTCHAT_REFERENCE, MTBENCH_DATA
from tests.support.runconfig import model, mtbench, write_config

RUN_SECONDS = 60
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def files_under(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def expect_refusal(capsys: pytest.CaptureFixture[str], command: str, config: Path) -> str:
    code, out, err = mtbench(capsys, command, "-c", str(config))
    assert code == 2, out + err
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("mtbench: error: ")
    return line


def test_judge_with_a_mistyped_store_path_exits_2_and_creates_nothing(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    judge = {"name": "judge-a", "base_url": fake.base_url}
    real = write_config(tmp_path, models=[model("alpha", fake.base_url)], name="gen.toml")
    assert mtbench(capsys, "generate", "-c", str(real))[0] == 0
    before = files_under(tmp_path)
    typo = tmp_path / "runs" / "stroe.sqlite"
    config = write_config(tmp_path, judge=judge, store=str(typo), name="judge.toml")
    before.add("judge.toml")
    line = expect_refusal(capsys, "judge", config)
    assert f"no stored answers in {typo}" in line
    assert files_under(tmp_path) == before
    assert fake.stats(arrivals=False)["by_kind"].get("judge", 0) == 0


def test_a_missing_reference_answer_exits_2_before_the_store_or_its_lock_exist(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(MTBENCH_DATA, data)
    references = data / "mt_bench" / "reference_answer" / "gpt-4.jsonl"
    lines = references.read_text().splitlines()
    references.write_text("\n".join(x for x in lines if '"question_id": 111,' not in x) + "\n")
    store = tmp_path / "runs" / "store.sqlite"
    judge = {"name": "judge-a", "base_url": fake.base_url}
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judge=judge,
        store=str(store),
        data=str(data),
    )
    line = expect_refusal(capsys, "run", config)
    assert "111" in line and "reference" in line
    assert not (tmp_path / "runs").exists()
    assert fake.stats(arrivals=False)["requests"] == 0


@pytest.mark.parametrize("kind", ["foreign", "newer"])
def test_a_refused_sqlite_file_is_left_alone_without_a_lock_or_journal(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    store = tmp_path / "other.sqlite"
    db = sqlite3.connect(store)
    db.execute("PRAGMA journal_mode = WAL")  # as a store another tool writes would be
    db.execute("CREATE TABLE notes (text TEXT)")
    if kind == "newer":
        db.execute("PRAGMA user_version = 99")
    db.close()
    content = store.read_bytes()
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], store=str(store))
    line = expect_refusal(capsys, "generate", config)
    assert str(store) in line
    assert files_under(tmp_path) == {"other.sqlite", "run.toml"}
    assert store.read_bytes() == content


def test_a_symlink_to_a_store_shares_its_lock(tmp_path: Path) -> None:
    real = tmp_path / "conc.sqlite"
    link = tmp_path / "link.sqlite"
    link.symlink_to(real.name)

    async def scenario(first: Path, second: Path) -> None:
        held = await open_store(first, write=True)
        try:
            with pytest.raises(StoreError, match=f"pid {os.getpid()}"):
                await open_store(second, write=True)
        finally:
            await held.close()

    asyncio.run(scenario(real, link))
    asyncio.run(scenario(link, real))


def test_a_second_run_through_a_symlink_is_refused_and_sends_nothing(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(latency_median=0.05)
    real = tmp_path / "conc.sqlite"
    (tmp_path / "link.sqlite").symlink_to(real.name)
    models = [model("alpha", fake.base_url, concurrency=4)]
    first = write_config(tmp_path, models=models, store=str(real), name="real.toml")
    second = write_config(tmp_path, models=models, store="link.sqlite", name="link.toml")
    writer = start_engine("generate", "-c", str(first), "--quiet")
    try:
        wait_until(lambda: fake.stats(arrivals=False)["ok"] >= 8)
        sent = fake.stats(arrivals=False)["requests"]
        line = expect_refusal(capsys, "generate", second)
        assert f"another mtbench run is writing to this store (pid {writer.pid})" in line
        assert fake.stats(arrivals=False)["requests"] - sent < 20  # the first run's traffic only
    finally:
        _, err = ended(writer, timeout=RUN_SECONDS)
    assert writer.returncode == 0, err
    assert fake.stats(arrivals=False)["duplicates"] == 0


def test_a_store_with_a_hard_link_is_refused_for_writing_and_sends_nothing(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "conc.sqlite"
    make_store(real)
    os.link(real, tmp_path / "hard.sqlite")
    content = real.read_bytes()
    models = [model("alpha", fake.base_url)]
    for name in ("conc.sqlite", "hard.sqlite"):
        config = write_config(tmp_path, models=models, store=name, name=f"{name}.toml")
        line = expect_refusal(capsys, "generate", config)
        assert "2 names (hard links)" in line
    assert files_under(tmp_path) == {"conc.sqlite", "hard.sqlite", *_configs(tmp_path)}
    assert real.read_bytes() == content
    assert fake.stats(arrivals=False)["requests"] == 0


def _configs(directory: Path) -> set[str]:
    return {path.name for path in directory.glob("*.toml")}


@pytest.mark.parametrize("kind", ["pipe", "device"])
def test_a_store_path_that_is_a_pipe_or_a_device_is_refused_at_once(
    tmp_path: Path, kind: str
) -> None:
    if kind == "pipe":
        store = tmp_path / "store.sqlite"
        os.mkfifo(store)
    else:
        store = Path("/dev/null")
    journal = store.with_name(store.name + "-journal")
    existed = journal.exists()
    config = write_config(
        tmp_path, models=[model("alpha", "http://127.0.0.1:9/v1")], store=str(store)
    )
    for argv in (("generate", "-c", str(config)), ("show", "--store", str(store))):
        process = start_engine(*argv)
        _, err = ended(process, timeout=RUN_SECONDS)  # opening a pipe would wait for ever
        assert process.returncode == 2, err
        assert (
            err == f"mtbench: error: {store}: not a regular file (a device, pipe or socket); "
            "point `store` at a SQLite file or a new path\n"
        )
    assert journal.exists() == existed
    assert not store.with_name(store.name + ".lock").exists()


# A new store as its first run holds it: everything, the schema version too, still in the WAL.
WRITE_INTO_WAL = """
import sqlite3, sys
source, target = sys.argv[1:]
db = sqlite3.connect(target, isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA wal_autocheckpoint = 0")
db.execute("ATTACH ? AS source", (source,))
db.execute("BEGIN")
schema = "SELECT type, name, sql FROM source.sqlite_master WHERE name NOT LIKE 'sqlite_%'"
for kind, name, sql in db.execute(schema).fetchall():
    db.execute(sql)
    if kind == "table":
        db.execute(f"INSERT INTO main.{name} SELECT * FROM source.{name}")
version = db.execute("PRAGMA source.user_version").fetchone()[0]
db.execute(f"PRAGMA main.user_version = {version}")
db.execute("COMMIT")
print("held", flush=True)
sys.stdin.read()
"""


def test_show_through_a_symlink_reads_a_store_a_run_is_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "imported.sqlite"
    asyncio.run(import_fastchat(source, FASTCHAT_REFERENCE))
    real = tmp_path / "conc.sqlite"
    link = tmp_path / "link.sqlite"
    link.symlink_to(real.name)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITE_INTO_WAL, str(source), str(real)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "held\n"
        shown = [
            mtbench(capsys, "show", "--store", str(path), "--json") for path in (source, real, link)
        ]
    finally:
        writer.communicate("", timeout=RUN_SECONDS)
    assert [code for code, _, _ in shown] == [0, 0, 0], shown
    assert shown[2][1] == shown[1][1] == shown[0][1]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory an unprivileged user can reach (pytest's own tmp dirs are private to us)."""
    directory = Path(tempfile.mkdtemp(prefix="mtbench-perm-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        for path in [directory, *directory.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(directory)


def run_unprivileged(config: Path) -> tuple[int, str]:
    """`mtbench generate` as a user without root's right to read and write everything."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot test as an unprivileged user")
        prefix = NOBODY
    command = [*prefix, sys.executable, "-m", "engine", "generate", "-c", str(config)]
    process = subprocess.Popen(
        command, cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _, err = ended(process, timeout=RUN_SECONDS)
    return process.returncode, err


def make_store(path: Path) -> None:
    async def create() -> None:
        store = await open_store(path, write=True)
        await store.close()

    asyncio.run(create())
    path.with_name(path.name + ".lock").unlink()


def setup_store_in_readonly_directory(root: Path) -> Path:
    directory = root / "locked"
    directory.mkdir()
    directory.chmod(0o555)
    return directory / "store.sqlite"


def setup_unreadable_store(root: Path) -> Path:
    directory = root / "open"
    directory.mkdir()
    directory.chmod(0o777)
    store = directory / "store.sqlite"
    make_store(store)
    store.chmod(0o000)
    return store


def setup_store_whose_parent_is_a_file(root: Path) -> Path:
    (root / "notes.txt").write_text("a file, not a directory\n")
    return root / "notes.txt" / "store.sqlite"


def setup_readonly_store(root: Path) -> Path:
    directory = root / "open"
    directory.mkdir()
    directory.chmod(0o777)
    store = directory / "store.sqlite"
    make_store(store)
    store.chmod(0o444)
    return store


PERMISSION_CASES = {
    "read-only-directory": (setup_store_in_readonly_directory, "is not writable"),
    "unreadable-store": (setup_unreadable_store, "cannot read the store (Permission denied)"),
    "parent-is-a-file": (setup_store_whose_parent_is_a_file, "is a file, not a directory"),
    "read-only-store": (setup_readonly_store, "the store file is read-only"),
}


@pytest.mark.parametrize("case", list(PERMISSION_CASES))
def test_a_store_path_the_user_cannot_use_is_one_line_exit_2_and_nothing_created(
    shared_dir: Path, fake: FakeServer, case: str
) -> None:
    setup, needle = PERMISSION_CASES[case]
    store = setup(shared_dir)
    config = write_config(shared_dir, models=[model("alpha", fake.base_url)], store=str(store))
    config.chmod(0o644)
    before = files_under(shared_dir)
    code, err = run_unprivileged(config)
    assert code == 2, err
    (line,) = err.splitlines()
    assert line.startswith(f"mtbench: error: {store}: ")
    assert needle in line
    assert files_under(shared_dir) == before
    assert fake.stats(arrivals=False)["requests"] == 0


@pytest.mark.parametrize("command", ["generate", "show"])
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_store_path_that_is_no_regular_file_is_refused_at_once(
    tmp_path: Path, fake: FakeServer, command: str, kind: str
) -> None:
    # Opening a FIFO to read its first bytes blocked in the event loop's thread, where no signal
    # could end the command: it hung until SIGKILL.
    store = tmp_path / "store.sqlite"
    if kind == "fifo":
        os.mkfifo(store)
    else:
        store = Path(os.devnull)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], store=str(store))
    argv = (
        ["generate", "-c", str(config)]
        if command == "generate"
        else ["show", "--store", str(store)]
    )
    _, err = ended(start_engine(*argv), timeout=RUN_SECONDS)
    (line,) = err.splitlines()
    assert line.startswith("mtbench: error: ") and "not a regular file" in line, line
    assert fake.stats(arrivals=False)["requests"] == 0
    assert files_under(tmp_path) == {"run.toml", *(["store.sqlite"] if kind == "fifo" else [])}
