"""Bad config, data or store: one line naming the culprit, exit 2, nothing sent, nothing touched."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import model, mtbench, write_config


def expect_input_error(capsys: pytest.CaptureFixture[str], config: Path, *needles: str) -> str:
    code, out, err = mtbench(capsys, "generate", "-c", str(config))
    assert code == 2, out + err
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("mtbench: error: ")
    for needle in needles:
        assert needle in err
    return err


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        ({"rpm": "fast"}, ["rpm", "'fast'", "integer"]),
        ({"concurency": 4}, ["concurency", "unknown key"]),
        ({"temperature": 5}, ["temperature", "between 0 and 2"]),
        ({"stream": "yes"}, ["stream", "true or false"]),
        ({"base_url": "localhost:8000"}, ["base_url", "http"]),
        ({"api": "gemini"}, ["api", "'gemini'"]),
        ({"api_key_env": "MTBENCH_TEST_UNSET_KEY"}, ["MTBENCH_TEST_UNSET_KEY", "not set"]),
    ],
    ids=["wrong-type", "unknown-key", "out-of-range", "bool", "url", "api", "unset-key-variable"],
)
def test_config_mistakes_name_file_key_and_value(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    extra: dict,
    needles: list[str],
) -> None:
    settings = {"base_url": fake.base_url, **extra}
    config = write_config(tmp_path, models=[{"name": "alpha", **settings}])
    expect_input_error(capsys, config, str(config), *needles)
    assert fake.stats(arrivals=False)["requests"] == 0
    assert not (tmp_path / "store.sqlite").exists()


def test_malformed_toml_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.toml"
    config.write_text('store = "s.sqlite"\n[[model]\nname = "a"\n')
    expect_input_error(capsys, config, str(config), "not valid TOML", "line 2")


def test_duplicate_model_names_are_refused(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path, models=[model("alpha", fake.base_url), model("alpha", fake.base_url)]
    )
    expect_input_error(capsys, config, "'alpha'", "twice")


def test_missing_data_dir_says_how_to_get_the_data(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path, models=[model("alpha", fake.base_url)], data=str(tmp_path / "nowhere")
    )
    expect_input_error(capsys, config, "nowhere", "mtbench data fetch")


def test_malformed_question_line_is_named_by_file_and_line(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(MTBENCH_DATA / "mt_bench", data / "mt_bench")
    shutil.copy(MTBENCH_DATA / "judge_prompts.jsonl", data)
    questions = data / "mt_bench" / "question.jsonl"
    lines = questions.read_text().splitlines()
    lines[4] = lines[4][:40]
    questions.write_text("\n".join(lines) + "\n")
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], data=str(data))
    expect_input_error(capsys, config, f"{questions}:5", "not valid JSON")


def test_empty_question_set_is_refused(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    (data / "mt_bench").mkdir(parents=True)
    (data / "mt_bench" / "question.jsonl").write_text("\n")
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], data=str(data))
    expect_input_error(capsys, config, "question.jsonl", "empty")


def test_a_store_that_is_not_sqlite_is_refused_and_left_alone(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "notes.txt"
    store.write_text("these are my notes, not a database\n" * 10)
    digest = hashlib.sha256(store.read_bytes()).hexdigest()
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], store=str(store))
    expect_input_error(capsys, config, str(store), "not a SQLite database")
    assert hashlib.sha256(store.read_bytes()).hexdigest() == digest
    assert fake.stats(arrivals=False)["requests"] == 0


def test_a_store_from_a_newer_engine_is_refused_and_left_alone(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    store = tmp_path / "future.sqlite"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE responses (key TEXT PRIMARY KEY)")
        db.execute("PRAGMA user_version = 99")
    digest = hashlib.sha256(store.read_bytes()).hexdigest()
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], store=str(store))
    expect_input_error(capsys, config, "schema version 99", "upgrade mtbench-engine")
    assert hashlib.sha256(store.read_bytes()).hexdigest() == digest
