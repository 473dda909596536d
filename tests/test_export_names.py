"""Export then import keeps every model's name, judge identity and judge sample as they were."""

from __future__ import annotations

import asyncio
import sqlite3
import unicodedata
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.interop import export_fastchat, import_fastchat
from engine.interop.names import file_stems, label_for_stem
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

NAMES = ["a/b", "a_b", "..", "ctl\x01\ttab\nnewline\x7f"]
QUESTIONS = [81, 101]


def _rows(store: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(store)) as db:
        return sorted(db.execute(sql).fetchall())


ANSWERS = (
    "SELECT a.model, a.question_id, a.turn, r.text FROM answers a "
    "JOIN responses r ON r.key = a.response_key"
)
JUDGMENTS = "SELECT model, question_id, turn, sample, score, parse_status FROM judgments"


@pytest.fixture
def judged(tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]) -> Path:
    judge = {"name": "judge-n", "base_url": fake.base_url, "samples": 2}
    models = [model(name, fake.base_url) for name in NAMES]
    config = write_config(tmp_path, models=models, judge=judge, questions=QUESTIONS)
    assert mtbench(capsys, "run", "-c", str(config), "--quiet")[0] == 0
    return tmp_path / "store.sqlite"


def test_a_round_trip_keeps_hostile_model_names_and_judge_samples(
    judged: Path, tmp_path: Path
) -> None:
    report = asyncio.run(export_fastchat(judged, tmp_path / "fc"))
    answer_files = sorted(f.path.name for f in report.files if f.kind == "answer")
    assert len(answer_files) == len(NAMES)  # a/b and a_b did not overwrite each other
    assert "a_b.jsonl" in answer_files  # a name that needs no change keeps FastChat's file name
    assert all("/" not in name and "\n" not in name for name in answer_files)
    copy = tmp_path / "copy.sqlite"
    imported = asyncio.run(import_fastchat(copy, tmp_path / "fc"))
    assert sorted(m.model for m in imported.models) == sorted(NAMES)
    assert imported.superseded == 0  # the two samples of each judgment are two rows, not one
    assert _rows(copy, ANSWERS) == _rows(judged, ANSWERS)
    assert _rows(copy, JUDGMENTS) == _rows(judged, JUDGMENTS)
    # Every judgment names a model whose answers came back under the same name.
    assert {row[0] for row in _rows(copy, JUDGMENTS)} == {row[0] for row in _rows(copy, ANSWERS)}


def test_a_renamed_answer_file_is_named_by_its_stem_as_fastchat_does(
    judged: Path, tmp_path: Path
) -> None:
    report = asyncio.run(export_fastchat(judged, tmp_path / "fc"))
    (exported,) = [f.path for f in report.files if f.kind == "answer" and f.name == "a/b"]
    exported.rename(exported.with_name("renamed-by-hand.jsonl"))
    imported = asyncio.run(
        import_fastchat(tmp_path / "copy.sqlite", tmp_path / "fc" / "model_answer")
    )
    assert "renamed-by-hand" in {m.model for m in imported.models}
    assert "a/b" not in {m.model for m in imported.models}


def test_two_files_naming_one_model_are_refused(
    judged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = asyncio.run(export_fastchat(judged, tmp_path / "fc"))
    (exported,) = [f.path for f in report.files if f.kind == "answer" and f.name == "a_b"]
    lines = [orjson.loads(line) for line in exported.read_bytes().splitlines()]
    clash = exported.with_name("ctl\x01\ttab\nnewline\x7f.jsonl")
    clash.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    store = tmp_path / "copy.sqlite"
    argv = ["import", "--store", str(store), "--fastchat", str(tmp_path / "fc")]
    code, _, err = mtbench(capsys, *argv)
    assert code == 2
    assert "holds answers of model" in err and "remove one of the two files" in err
    assert "\n" not in err.strip() and "\x01" not in err  # one line, escaped for the terminal
    assert not store.exists()


def test_stems_are_distinct_even_where_case_or_sanitizing_would_merge_them() -> None:
    labels = ["Alpha", "alpha", "a/b", "a_b", "..", ".", "", "x" * 300, "ok-name"]
    stems = file_stems(labels)
    assert len({stem.casefold() for stem in stems.values()}) == len(labels)
    assert stems["ok-name"] == "ok-name" and stems["a_b"] == "a_b"
    assert all(len(stem.encode()) <= 210 and not stem.startswith(".") for stem in stems.values())
    for label, stem in stems.items():
        assert label_for_stem(stem, [label]) == label
    assert label_for_stem("a_b", ["a/b"]) == "a_b"  # the stem export makes for a/b is hashed


def test_judges_sharing_a_label_stay_two_judges_through_a_round_trip(tmp_path: Path) -> None:
    from tests.support.paths import FASTCHAT_REFERENCE
    from tests.test_interop import _add_generated_judgment

    store = tmp_path / "store.sqlite"
    asyncio.run(import_fastchat(store, FASTCHAT_REFERENCE))
    _add_generated_judgment(store, "gpt-4-0613")
    asyncio.run(export_fastchat(store, tmp_path / "fc"))
    copy = tmp_path / "copy.sqlite"
    imported = asyncio.run(import_fastchat(copy, tmp_path / "fc"))
    assert imported.superseded == 0
    judges = "SELECT judge, judge_model, COUNT(*) FROM judgments GROUP BY judge, judge_model"
    assert _rows(copy, judges) == [
        ("gpt-4", "gpt-4", 480 + 960),
        ("gpt-4", "gpt-4-0613 (openai)", 1),
    ]


def test_invisible_and_text_moving_characters_never_reach_a_file_name() -> None:
    labels = ["evil\u202egnp.exe", "zero\u200bwidth", "line\u2028sep", "para\u2029sep", "bom\ufeff"]
    stems = file_stems(labels)
    for label, stem in stems.items():
        assert all(unicodedata.category(c) not in {"Cf", "Zl", "Zp"} for c in stem), stem
        assert label_for_stem(stem, [label]) == label  # import takes the real label back
    assert stems["zero\u200bwidth"].startswith("zero_width-")
