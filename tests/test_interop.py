"""FastChat files in and out: published answers import as they are, a round trip changes nothing."""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.chat import ChatRequest
from engine.cli.main import main
from engine.errors import DataError, InputError
from engine.interop import ImportReport, export_fastchat, import_fastchat
from engine.store.rows import JudgmentRow, ResponseRow
from tests.support.paths import FASTCHAT_REFERENCE, MTBENCH_DATA

PUBLISHED = MTBENCH_DATA / "published_pregenerated"
REFERENCE_ANSWERS = FASTCHAT_REFERENCE / "model_answer"
REFERENCE_JUDGMENTS = FASTCHAT_REFERENCE / "model_judgment"
TABLES = ("responses", "answers", "judgments")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _import(store: Path, source: Path, bench: str = "mt_bench") -> ImportReport:
    return asyncio.run(import_fastchat(store, source, bench))


def _rows(store: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(store)) as db:
        return db.execute(sql, params).fetchall()


def _snapshot(store: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {table: sorted(_rows(store, f"SELECT * FROM {table}")) for table in TABLES}


def _copy_reference(folder: Path) -> Path:
    for name in ("model_answer", "model_judgment"):
        shutil.copytree(FASTCHAT_REFERENCE / name, folder / name)
    return folder


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite"


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "store.sqlite"
    _import(path, FASTCHAT_REFERENCE)
    return path


def test_import_accepts_the_model_answer_folder_itself(store: Path) -> None:
    report = _import(store, REFERENCE_ANSWERS)
    assert [m.model for m in report.models] == ["fake-alpha", "fake-beta", "fake-gamma"]
    assert report.answer_rows == 3 * 80 * 2
    assert report.judges == ()


def test_import_accepts_a_folder_holding_model_answer_and_model_judgment(
    store: Path, tmp_path: Path
) -> None:
    source = tmp_path / "run"
    source.mkdir()
    for name in ("model_answer", "model_judgment"):
        (source / name).symlink_to(FASTCHAT_REFERENCE / name)
    report = _import(store, source)
    assert report.answer_rows == 480
    assert report.judgment_rows == 480 + 960


def test_import_accepts_a_fastchat_data_dir_holding_the_bench(store: Path, tmp_path: Path) -> None:
    bench_dir = tmp_path / "data" / "vicuna_bench"
    bench_dir.mkdir(parents=True)
    _copy_reference(bench_dir)
    report = _import(store, tmp_path / "data", bench="vicuna_bench")
    assert report.answer_rows == 480
    assert _rows(store, "SELECT DISTINCT bench FROM answers") == [("vicuna_bench",)]
    assert _rows(store, "SELECT DISTINCT bench FROM judgments") == [("vicuna_bench",)]


def test_import_of_a_folder_without_fastchat_files_names_the_three_layouts(
    store: Path, tmp_path: Path
) -> None:
    with pytest.raises(DataError) as error:
        _import(store, tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message
    assert "model_answer folder itself" in message
    assert "holding model_answer/" in message
    assert "mt_bench/model_answer/" in message
    assert not store.exists()


def test_a_data_dir_without_answers_is_not_mistaken_for_an_answer_folder(store: Path) -> None:
    with pytest.raises(DataError, match="no FastChat answer or judgment files"):
        _import(store, MTBENCH_DATA)
    with pytest.raises(DataError, match="no FastChat answer or judgment files"):
        _import(store, MTBENCH_DATA / "mt_bench")


def test_published_answers_import_under_the_file_stem_in_well_under_two_seconds(
    store: Path,
) -> None:
    started = time.perf_counter()
    report = _import(store, PUBLISHED)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    assert len(report.models) == 31
    assert all(m.questions == 80 and m.answers == 160 for m in report.models)
    assert _rows(store, "SELECT COUNT(*), COUNT(DISTINCT model) FROM answers") == [(4960, 31)]
    assert _rows(store, "SELECT DISTINCT source, run_id FROM answers") == [("imported", None)]
    # FastChat names the model after the file; the file's model_id is kept as the served model.
    assert _rows(
        store,
        "SELECT DISTINCT r.label, r.model, r.api FROM answers a "
        "JOIN responses r ON r.key = a.response_key WHERE a.model = 'vicuna-13b-v1.3'",
    ) == [("vicuna-13b-v1.3", "vicuna-13b-hao-0515", "import")]
    by_model_id = "SELECT COUNT(*) FROM answers WHERE model = 'vicuna-13b-hao-0515'"
    assert _rows(store, by_model_id) == [(0,)]


def test_published_answer_quirks_are_imported_as_they_are(store: Path) -> None:
    _import(store, PUBLISHED)
    text_sql = (
        "SELECT r.text FROM answers a JOIN responses r ON r.key = a.response_key "
        "WHERE a.model = ? AND a.question_id = ? AND a.turn = ?"
    )
    assert _rows(store, text_sql, ("dolly-v2-12b", 154, 2)) == [("ERROR",)]
    empty = _rows(
        store,
        "SELECT a.question_id, a.turn FROM answers a JOIN responses r ON r.key = a.response_key "
        "WHERE a.model = 'llama-13b' AND r.text = ''",
    )
    assert len(empty) == 1


def test_imported_answer_request_describes_the_source_line(store: Path) -> None:
    _import(store, REFERENCE_ANSWERS)
    first = _read_jsonl(REFERENCE_ANSWERS / "fake-alpha.jsonl")[0]
    (request,) = _rows(
        store,
        "SELECT r.request FROM answers a JOIN responses r ON r.key = a.response_key "
        "WHERE a.model = 'fake-alpha' AND a.question_id = ? AND a.turn = 1",
        (first["question_id"],),
    )[0]
    described = orjson.loads(request)
    assert described["file"] == "fake-alpha.jsonl"
    assert described["answer_id"] == first["answer_id"]
    assert described["model_id"] == first["model_id"]
    assert described["tstamp"] == first["tstamp"]


def test_a_later_line_for_the_same_question_wins(store: Path, tmp_path: Path) -> None:
    answers = tmp_path / "model_answer"
    answers.mkdir()
    line = {"question_id": 81, "model_id": "m", "choices": [{"index": 0, "turns": ["old", "o"]}]}
    later = {**line, "choices": [{"index": 0, "turns": ["new", "n"]}]}
    (answers / "m.jsonl").write_bytes(orjson.dumps(line) + b"\n" + orjson.dumps(later) + b"\n")
    report = _import(store, answers)
    assert report.answer_rows == 2
    texts = _rows(
        store,
        "SELECT r.text FROM answers a JOIN responses r ON r.key = a.response_key ORDER BY a.turn",
    )
    assert texts == [("new",), ("n",)]


def test_importing_the_same_files_twice_leaves_the_store_unchanged(store: Path) -> None:
    _import(store, FASTCHAT_REFERENCE)
    before = _snapshot(store)
    _import(store, FASTCHAT_REFERENCE)
    assert _snapshot(store) == before


def test_a_malformed_line_names_file_and_line_and_stores_nothing(
    store: Path, tmp_path: Path
) -> None:
    _import(store, PUBLISHED)
    before = _snapshot(store)
    source = _copy_reference(tmp_path / "run")
    broken = source / "model_judgment" / "gpt-4_pair.jsonl"
    lines = broken.read_bytes().splitlines()
    lines[6] = lines[6][:-20]
    broken.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(broken))}:7: not valid JSON"):
        _import(store, source)
    assert _snapshot(store) == before


def test_a_line_missing_a_field_is_refused_before_anything_is_written(
    store: Path, tmp_path: Path
) -> None:
    source = _copy_reference(tmp_path / "run")
    broken = source / "model_answer" / "fake-gamma.jsonl"
    lines = broken.read_bytes().splitlines()
    row = orjson.loads(lines[41])
    del row["choices"]
    lines[41] = orjson.dumps(row)
    broken.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(broken))}:42: field 'choices'"):
        _import(store, source)
    assert not store.exists() or all(not rows for rows in _snapshot(store).values())


def test_single_judgments_keep_the_files_scores_and_parse_statuses(reference_store: Path) -> None:
    expected = {
        (r["model"], r["question_id"], r["turn"]): r["score"]
        for r in _read_jsonl(REFERENCE_JUDGMENTS / "gpt-4_single.jsonl")
    }
    rows = _rows(
        reference_store,
        "SELECT model, question_id, turn, score, prompt_name, judge_model, judge_api "
        "FROM judgments WHERE judge = 'gpt-4' AND kind = 'single' AND game = 0",
    )
    assert {(m, q, t): s for m, q, t, s, *_ in rows} == expected
    assert {(model, api) for *_, model, api in rows} == {("gpt-4", "import")}
    assert sum(score == -1 for *_, score, _, _, _ in rows) == 31
    statuses = dict(
        _rows(reference_store, "SELECT parse_status, COUNT(*) FROM judgments "
              "WHERE kind = 'single' GROUP BY parse_status")
    )  # fmt: skip
    assert statuses == {"ok": 415, "fallback": 34, "missing": 31}


def test_pair_judgments_become_two_games_with_the_files_winners(reference_store: Path) -> None:
    lines = _read_jsonl(REFERENCE_JUDGMENTS / "gpt-4_pair.jsonl")
    expected = {}
    for r in lines:
        for game in (1, 2):
            slot = (r["model_1"], r["model_2"], r["question_id"], r["turn"], game)
            expected[slot] = r[f"g{game}_winner"]
    rows = _rows(
        reference_store,
        "SELECT model, opponent, question_id, turn, game, winner, parse_status FROM judgments "
        "WHERE judge = 'gpt-4' AND kind = 'pair'",
    )
    assert len(rows) == 960
    assert {tuple(row[:5]): row[5] for row in rows} == expected
    errors = sum(r["g1_winner"] == "error" for r in lines) + sum(
        r["g2_winner"] == "error" for r in lines
    )
    assert sum(status == "missing" for *_, status in rows) == errors
    assert all((status == "missing") == (winner == "error") for *_, winner, status in rows)


def test_judge_reasoning_and_prompt_are_stored_for_show(reference_store: Path) -> None:
    line = _read_jsonl(REFERENCE_JUDGMENTS / "gpt-4_pair.jsonl")[0]
    (request, text) = _rows(
        reference_store,
        "SELECT r.request, r.text FROM judgments j JOIN responses r ON r.key = j.response_key "
        "WHERE j.kind = 'pair' AND j.model = ? AND j.opponent = ? AND j.question_id = ? "
        "AND j.turn = ? AND j.game = 2",
        (line["model_1"], line["model_2"], line["question_id"], line["turn"]),
    )[0]
    assert text == line["g2_judgment"]
    described = orjson.loads(request)
    assert described["messages"] == [{"role": "user", "content": line["g2_user_prompt"]}]
    assert described["judge"] == line["judge"]


def test_a_score_we_would_parse_differently_is_kept_and_marked_imported(
    store: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "model_judgment"
    folder.mkdir()
    row = _read_jsonl(REFERENCE_JUDGMENTS / "gpt-4_single.jsonl")[0]
    row["score"] = 9.5
    (folder / "gpt-4_single.jsonl").write_bytes(orjson.dumps(row) + b"\n")
    _import(store, tmp_path)
    assert _rows(store, "SELECT score, parse_status FROM judgments") == [(9.5, "imported")]


def _sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    model = row.get("model", row.get("model_1"))
    return (row["question_id"], model, row.get("model_2", ""), row.get("turn", 0))


def _typed(value: Any) -> Any:
    """JSON with number types kept: 6 and 6.0 are different things in FastChat's files."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value).__name__, value)


def test_export_round_trips_fastchats_files_field_by_field(
    reference_store: Path, tmp_path: Path
) -> None:
    report = asyncio.run(export_fastchat(reference_store, tmp_path))
    assert report.incomplete_answers == 0
    assert report.incomplete_matches == 0
    exported = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jsonl"))
    originals = sorted(
        p.relative_to(FASTCHAT_REFERENCE).as_posix() for p in FASTCHAT_REFERENCE.rglob("*.jsonl")
    )
    assert exported == originals
    for name in originals:
        ours = sorted(_read_jsonl(tmp_path / name), key=_sort_key)
        theirs = sorted(_read_jsonl(FASTCHAT_REFERENCE / name), key=_sort_key)
        assert len(ours) == len(theirs), name
        for mine, original in zip(ours, theirs, strict=True):
            if "judge_identity" in mine:  # our additions after FastChat's fields, which it ignores
                assert mine.pop("judge_identity") == {
                    "name": "gpt-4",
                    "model": "gpt-4",
                    "api": "import",
                    "samples": 1,
                }
                assert mine.pop("sample") == 0
            assert list(mine) == list(original), name
            assert _typed(mine) == _typed(original), (name, original["question_id"])


def test_exported_answer_files_are_byte_identical_to_imported_ones(
    reference_store: Path, tmp_path: Path
) -> None:
    asyncio.run(export_fastchat(reference_store, tmp_path))
    for path in REFERENCE_ANSWERS.glob("*.jsonl"):
        assert (tmp_path / "model_answer" / path.name).read_bytes() == path.read_bytes()


def test_export_leaves_out_questions_with_a_turn_missing(store: Path, tmp_path: Path) -> None:
    _import(store, REFERENCE_ANSWERS)
    with closing(sqlite3.connect(store)) as db, db:
        db.execute(
            "DELETE FROM answers WHERE model = ? AND question_id = 81 AND turn = 2", ("fake-beta",)
        )
    report = asyncio.run(export_fastchat(store, tmp_path / "out"))
    assert report.incomplete_answers == 1
    lines = _read_jsonl(tmp_path / "out" / "model_answer" / "fake-beta.jsonl")
    assert [line["question_id"] for line in lines][:2] == [82, 83]


def _add_generated_judgment(store: Path, judge_model: str) -> ChatRequest:
    """A judgment as a run stores it: a real chat request, judged by `judge_model` as 'gpt-4'."""
    request = ChatRequest(
        api="openai",
        label="gpt-4",
        model=judge_model,
        messages=(("system", "You are a helpful assistant."), ("user", "Rate this. [[rating]]")),
        max_tokens=2048,
        temperature=0.0,
    )
    key = request.cache_key()
    with closing(sqlite3.connect(store)) as db, db:
        db.execute(
            *ResponseRow(
                key, "openai", "gpt-4", judge_model, request.canonical_json(),
                "Fine. Rating: [[7]]", "stop", 10, 5, 0.1, 1700000000.0,
            ).write()
        )  # fmt: skip
        db.execute(
            *JudgmentRow(
                "gpt-4", judge_model, "openai", "mt_bench", "single", "fake-alpha", "", 81, 1, 0,
                0, "single-v1", 7.0, None, "ok", key, 1, 1700000000.0,
            ).write()
        )  # fmt: skip
    return request


def test_export_takes_user_prompt_and_text_from_a_generated_judge_request(
    store: Path, tmp_path: Path
) -> None:
    _import(store, REFERENCE_ANSWERS)
    _add_generated_judgment(store, "gpt-4-0613")
    asyncio.run(export_fastchat(store, tmp_path))
    (line,) = _read_jsonl(tmp_path / "model_judgment" / "gpt-4_single.jsonl")
    assert line["user_prompt"] == "Rate this. [[rating]]"
    assert line["judgment"] == "Fine. Rating: [[7]]"
    assert line["judge"] == ["gpt-4", "single-v1"]
    assert line["score"] == 7 and isinstance(line["score"], int)


def test_judges_sharing_a_label_export_to_separate_files(
    reference_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store.sqlite"
    shutil.copy(reference_store, store)
    _add_generated_judgment(store, "gpt-4-0613")
    report = asyncio.run(export_fastchat(store, tmp_path / "out"))
    names = sorted(f.path.name for f in report.files if f.kind != "answer")
    assert names == [
        "gpt-4-gpt-4-0613-openai_single.jsonl",
        "gpt-4-gpt-4-import_pair.jsonl",
        "gpt-4-gpt-4-import_single.jsonl",
    ]


def test_export_of_one_judge_writes_only_its_files(reference_store: Path, tmp_path: Path) -> None:
    report = asyncio.run(export_fastchat(reference_store, tmp_path, judge="gpt-4"))
    assert {f.kind for f in report.files} == {"answer", "single", "pair"}
    with pytest.raises(InputError, match="no judgments by judge 'claude'"):
        asyncio.run(export_fastchat(reference_store, tmp_path, judge="claude"))


@pytest.mark.parametrize("problem", ["missing", "bad question file"])
def test_import_with_an_unusable_data_dir_exits_2_before_the_store_is_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str
) -> None:
    data = tmp_path / "data"
    if problem == "bad question file":
        (data / "mt_bench").mkdir(parents=True)
        (data / "mt_bench" / "question.jsonl").write_text("{not json\n")
    store = tmp_path / "runs" / "store.sqlite"
    argv = ["import", "--store", str(store), "--fastchat", str(FASTCHAT_REFERENCE)]
    code = main([*argv, "--data", str(data)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("mtbench: error: ") and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == (["data"] if data.exists() else [])
