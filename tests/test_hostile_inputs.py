"""Every command against a table of hostile inputs: never a traceback, a known exit code, and on
exit 2 the store is byte-for-byte what it was (or was never created).

Each case runs `python -m engine` as a user would, in a fresh directory holding a copy of a small
real store (answers and judgments made against the fake server), so what a case may damage is
real. Model endpoints always point at the fake server on 127.0.0.1; the data URL at a closed port.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import model, write_config

ALLOWED_EXITS = {0, 1, 2, 130, 143}
QUESTIONS = [81, 82]

Setup = Callable[[Path, str], None]  # (case dir, fake base URL)


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]  # {dir}, {store}, {config}, {data} are filled in
    setup: Setup = field(default=lambda directory, url: None)
    exits: frozenset[int] = frozenset({2})  # the exit codes this input may get


def _config(directory: Path, url: str, **changes: object) -> None:
    """run.toml in `directory`: one model and a judge on the fake; `changes` to the top level
    (`model=` to the model table); `{dir}` in a string value is the case's directory."""
    changes = {key: _in(directory, value) for key, value in changes.items()}
    model_changes = changes.pop("model", {})
    assert isinstance(model_changes, dict)
    model_table = {**model("alpha", url), **model_changes}
    top: dict[str, object] = {"questions": QUESTIONS, **changes}
    write_config(directory, models=[model_table], judge={"name": "judge", "base_url": url}, **top)


def _in(directory: Path, value: object) -> object:
    if isinstance(value, str):
        return value.replace("{dir}", str(directory))
    if isinstance(value, dict):
        return {key: _in(directory, item) for key, item in value.items()}
    return value


def config_with(**changes: object) -> Setup:
    return lambda directory, url: _config(directory, url, **changes)


def model_with(**changes: object) -> Setup:
    return lambda directory, url: _config(directory, url, model=changes)


def raw_config(text: str | bytes) -> Setup:
    def setup(directory: Path, url: str) -> None:
        data = text if isinstance(text, bytes) else text.replace("{url}", url).encode()
        (directory / "run.toml").write_bytes(data)

    return setup


def data_with(edit: Callable[[Path], None]) -> Setup:
    """A copy of the data dir, edited, named in the config."""

    def setup(directory: Path, url: str) -> None:
        data = directory / "data"
        shutil.copytree(MTBENCH_DATA, data, ignore=shutil.ignore_patterns("published_*"))
        edit(data)
        _config(directory, url, data=str(data))

    return setup


def rewrite_lines(relative: str, change: Callable[[str], str]) -> Callable[[Path], None]:
    def edit(data: Path) -> None:
        path = data / relative
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join(change(line) for line in lines) + "\n", encoding="utf-8")

    return edit


def drop_prompt(name: str) -> Callable[[Path], None]:
    return rewrite_lines("judge_prompts.jsonl", lambda line: "" if f'"{name}"' in line else line)


def replace_store(make: Callable[[Path], None]) -> Setup:
    def setup(directory: Path, url: str) -> None:
        store = directory / "store.sqlite"
        store.unlink()
        make(store)
        _config(directory, url)

    return setup


def foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")


def newer_store(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("PRAGMA user_version = 999")


def both(*setups: Setup) -> Setup:
    def setup(directory: Path, url: str) -> None:
        for step in setups:
            step(directory, url)

    return setup


def a_file_at(relative: str) -> Setup:
    def setup(directory: Path, url: str) -> None:
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("not a directory")

    return setup


def fastchat_dir(lines: list[str]) -> Setup:
    def setup(directory: Path, url: str) -> None:
        answers = directory / "fc" / "model_answer"
        answers.mkdir(parents=True)
        (answers / "m.jsonl").write_text("\n".join(lines) + "\n")

    return setup


RUN = ("run", "-c", "{config}", "--quiet")
BIG = 2**63
CASES = [
    # config files that are not what they claim
    Case("config-missing", ("run", "-c", "{dir}/nope.toml")),
    Case("config-is-a-directory", ("run", "-c", "{dir}")),
    Case("config-binary", RUN, raw_config(b"\x00\xff\xfe garbage \x80")),
    Case("config-empty", RUN, raw_config("")),
    Case("timeout-nan", RUN, model_with(timeout=float("nan"))),
    Case("timeout-inf", RUN, model_with(timeout=float("inf"))),
    Case("max-tokens-int64", RUN, model_with(max_tokens=2**63 - 1)),
    Case("seed-too-big", RUN, model_with(seed=99999999999999999999)),
    Case("base-url-no-host", RUN, model_with(base_url="http://")),
    Case("base-url-bad-port", RUN, model_with(base_url="http://127.0.0.1:99999/v1")),
    Case("base-url-broken-ipv6", RUN, model_with(base_url="http://[::1/v1")),
    Case("questions-int64", RUN, config_with(questions=[BIG])),
    Case("store-with-nul", RUN, config_with(store="a\x00b.sqlite")),
    Case("bench-with-nul", RUN, config_with(bench="mt\x00bench")),
    Case("serve-unknown-placeholder", RUN, model_with(serve="python -m x {nope} {port}")),
    Case(
        "name-with-control-chars",
        RUN,
        model_with(name="a\tb\nc\x00d\u202e"),
        exits=frozenset({0}),
    ),
    # stores that are not stores
    Case("store-is-a-directory", RUN, replace_store(lambda p: p.mkdir())),
    Case("store-is-a-pipe", RUN, replace_store(os.mkfifo)),
    Case("store-is-a-pipe-show", ("show", "--store", "{store}"), replace_store(os.mkfifo)),
    Case("store-has-a-hard-link", RUN, lambda d, url: os.link(d / "store.sqlite", d / "b.sqlite")),
    Case("store-not-sqlite", RUN, replace_store(lambda p: p.write_bytes(b"hello world" * 10))),
    Case("store-foreign-sqlite", RUN, replace_store(foreign_sqlite)),
    Case("store-newer-schema", RUN, replace_store(newer_store)),
    Case(
        "store-parent-is-a-file",
        RUN,
        both(a_file_at("afile"), config_with(store="{dir}/afile/store.sqlite")),
    ),
    Case("judge-mistyped-store", ("judge", "-c", "{config}"), config_with(store="{dir}/typo.sql")),
    # data files
    Case("data-missing", RUN, config_with(data="{dir}/no-data")),
    Case("data-is-a-file", ("run", "-c", "{config}", "--data", "{config}")),
    Case(
        "data-question-id-int64",
        RUN,
        data_with(
            rewrite_lines(
                "mt_bench/question.jsonl",
                lambda s: s.replace('"question_id": 81', f'"question_id": {BIG}'),
            )
        ),
    ),
    Case(
        "data-negative-temperature",
        RUN,
        data_with(
            rewrite_lines(
                "mt_bench/question.jsonl",
                lambda s: s.replace(
                    '"category": "writing"', '"category": "writing", "required_temperature": -1'
                ),
            )
        ),
    ),
    Case("data-missing-multi-turn-prompt", RUN, data_with(drop_prompt("single-v1-multi-turn"))),
    # flags
    Case("progress-interval-nan", ("run", "-c", "{config}", "--progress-interval", "nan")),
    Case("progress-interval-negative", ("run", "-c", "{config}", "--progress-interval", "-1")),
    Case("progress-interval-inf", ("run", "-c", "{config}", "--progress-interval", "inf")),
    # reading commands
    Case("show-no-store", ("show", "--store", "{dir}/nope.sqlite")),
    Case("show-store-is-a-directory", ("show", "--store", "{dir}")),
    Case("show-unknown-judge", ("show", "--store", "{store}", "--judge", "nope")),
    Case(
        "show-unknown-baseline",
        ("show", "--store", "{store}", "--mode", "pairwise-baseline", "--baseline", "nope"),
    ),
    Case("report-into-a-directory", ("report", "--store", "{store}", "-o", "{dir}")),
    Case("report-over-the-store", ("report", "--store", "{store}", "-o", "{store}")),
    Case(
        "report-under-a-file",
        ("report", "--store", "{store}", "-o", "{dir}/afile/r.html"),
        a_file_at("afile"),
    ),
    Case(
        "export-into-a-file",
        ("export", "--store", "{store}", "--fastchat", "{dir}/afile"),
        a_file_at("afile"),
    ),
    Case(
        "export-model-answer-is-a-file",
        ("export", "--store", "{store}", "--fastchat", "{dir}/out"),
        a_file_at("out/model_answer"),
    ),
    Case("import-missing", ("import", "--store", "{store}", "--fastchat", "{dir}/nope")),
    Case(
        "import-mistyped-data",
        ("import", "--store", "{store}", "--fastchat", "{dir}/fc", "--data", "{dir}/nope"),
        fastchat_dir(['{"question_id": 81, "model_id": "m", "choices": [{"turns": ["a", "b"]}]}']),
    ),
    Case(
        "import-garbage",
        ("import", "--store", "{store}", "--fastchat", "{dir}/fc"),
        fastchat_dir(["{not json", "\x00"]),
    ),
    Case(
        "import-question-id-int64",
        ("import", "--store", "{store}", "--fastchat", "{dir}/fc"),
        fastchat_dir(
            [f'{{"question_id": {BIG}, "model_id": "m", "choices": [{{"turns": ["a", "b"]}}]}}']
        ),
    ),
    Case("data-fetch-into-a-file", ("data", "fetch", "--dest", "{config}")),
    Case("unknown-command", ("frobnicate",)),
]


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, FakeServer]]:
    """A small real store (one model answered and judged), and the fake server that made it."""
    directory = tmp_path_factory.mktemp("seed")
    with FakeServer() as server:
        _config(directory, server.base_url)
        done = run_engine(directory, "run", "-c", str(directory / "run.toml"), "--quiet")
        assert done.returncode == 0, done.stderr
        yield directory / "store.sqlite", server


def run_engine(directory: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MTBENCH_DATA_URL": "http://127.0.0.1:9/",  # the discard port: nothing listens
        "MTBENCH_CACHE_DIR": str(directory / "cache"),
    }
    return subprocess.run(
        [sys.executable, "-m", "engine", *argv],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def digest_tree(directory: Path) -> dict[str, str]:
    """Every file under `directory` (but the config and case inputs) and its sha256."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and "cache" not in path.parts
    }


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_gets_a_known_exit_and_no_traceback(
    tmp_path: Path, seeded_store: tuple[Path, FakeServer], case: Case
) -> None:
    store, server = seeded_store
    shutil.copy(store, tmp_path / "store.sqlite")
    _config(tmp_path, server.base_url)
    case.setup(tmp_path, server.base_url)
    before = digest_tree(tmp_path)
    fill = {
        "dir": str(tmp_path),
        "store": str(tmp_path / "store.sqlite"),
        "config": str(tmp_path / "run.toml"),
    }
    argv = [arg.format(**fill) for arg in case.argv]
    done = run_engine(tmp_path, *argv)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in ALLOWED_EXITS, (done.returncode, done.stdout, done.stderr)
    assert done.returncode in case.exits, (done.returncode, done.stdout, done.stderr)
    if done.returncode == 2:
        assert digest_tree(tmp_path) == before, done.stderr
        assert any(
            line.startswith("mtbench") and "error" in line for line in done.stderr.splitlines()
        ), done.stderr
