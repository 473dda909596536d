"""A judge's own reference answers: `reference = NAME` reads reference_answer/NAME.jsonl, the
judge is shown those answers, the set is recorded with (and shown beside) every score it shaped,
and a set the data dir lacks is refused before anything is sent.

What the judge was sent is read where it arrived (a recording proxy in front of the fake server).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.recording_proxy import RecordingProxy
from tests.support.refusal import assert_refused, copy_data, edit_jsonl
from tests.support.runconfig import model, mtbench, write_config

WRITING, MATH = 81, 111  # a plain category and a reference-guided one: two judged turns each
CORRECTED = "CORRECTED REFERENCE"


@pytest.fixture
def proxy(fake: FakeServer) -> Iterator[RecordingProxy]:
    with RecordingProxy(fake.url) as recording:
        yield recording


def data_with_corrected_set(tmp_path: Path) -> Path:
    """A data dir holding FastChat's gpt-4 references and a corrected copy named `corrected`."""
    data = copy_data(tmp_path)
    folder = data / "mt_bench" / "reference_answer"
    corrected = folder / "corrected.jsonl"
    corrected.write_bytes((folder / "gpt-4.jsonl").read_bytes())
    edit_jsonl(corrected, _corrected)
    return data


def _corrected(row: dict[str, Any]) -> dict[str, Any]:
    turns = [f"{CORRECTED} {turn}" for turn in row["choices"][0]["turns"]]
    return {**row, "choices": [{**row["choices"][0], "turns": turns}]}


def config_for(tmp_path: Path, data: Path, fake: FakeServer, judge_url: str, **judge: Any) -> Path:
    return write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judge={"name": "judge-x", "base_url": judge_url, **judge},
        data=str(data),
        questions=[WRITING, MATH],
    )


def settings_by_question(store: Path) -> dict[int, set[str | None]]:
    with sqlite3.connect(store) as db:
        found = db.execute("SELECT question_id, judge_settings FROM judgments").fetchall()
    by_question: dict[int, set[str | None]] = {}
    for qid, settings in found:
        by_question.setdefault(qid, set()).add(settings)
    return by_question


def judge_requests(fake: FakeServer) -> int:
    return sum(1 for _, _, kind, *_ in fake.stats()["arrivals"] if kind == "judge")


def test_a_judge_with_its_own_reference_set_is_shown_it_and_records_it_where_it_was_used(
    tmp_path: Path, fake: FakeServer, proxy: RecordingProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    data = data_with_corrected_set(tmp_path)
    config = config_for(tmp_path, data, fake, proxy.base_url, reference="corrected")
    code, out, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out + err

    prompts = [body["messages"][-1]["content"] for body in proxy.bodies("/v1/chat/completions")]
    shown = [p for p in prompts if CORRECTED in p]
    assert len(prompts) == 4 and len(shown) == 2  # both turns of the math question, nothing else
    assert all("Reference" in p for p in shown)

    store = tmp_path / "store.sqlite"
    assert settings_by_question(store) == {WRITING: {None}, MATH: {'{"reference":"corrected"}'}}
    code, out, _ = mtbench(capsys, "show", "--store", str(store))
    assert code == 0, out
    assert "reference=corrected" in out.splitlines()[0]
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    (board,) = orjson.loads(out)["leaderboards"]
    assert board["judge"]["settings"] == [{"reference": "corrected"}]
    report = tmp_path / "report.html"
    code, out, err = mtbench(capsys, "report", "--store", str(store), "-o", str(report))
    assert code == 0, out + err
    assert "judge-x (model judge-x, api openai, reference=corrected)" in report.read_text()


def test_changing_the_reference_set_rejudges_only_the_questions_that_show_one(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = data_with_corrected_set(tmp_path)
    store = tmp_path / "store.sqlite"
    expected_settings = {None: {None}, "corrected": {'{"reference":"corrected"}'}}
    # FastChat's set, then the corrected one (only the math turns change), back (cached), again.
    for reference, sent in ((None, 4), ("corrected", 2), (None, 0), ("corrected", 0)):
        judge = {} if reference is None else {"reference": reference}
        config = config_for(tmp_path, data, fake, fake.base_url, **judge)
        before = judge_requests(fake)
        code, out, err = mtbench(capsys, "run", "-c", str(config))
        assert code == 0, out + err
        assert judge_requests(fake) - before == sent
        settings = settings_by_question(store)
        assert settings[WRITING] == {None}
        assert settings[MATH] == expected_settings[reference]


def test_a_reference_set_missing_from_the_data_dir_is_refused_before_anything_is_sent(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = data_with_corrected_set(tmp_path)
    config = config_for(tmp_path, data, fake, fake.base_url, reference="gpt-4-fixed")
    missing = data / "mt_bench" / "reference_answer" / "gpt-4-fixed.jsonl"
    for command in ("run", "plan", "judge"):
        assert_refused(
            capsys,
            fake,
            tmp_path / "store.sqlite",
            [command, "-c", str(config)],
            "'reference' = 'gpt-4-fixed'",
            str(missing),
            "remove the key to use gpt-4's",
        )


def test_a_reference_set_lacking_a_questions_answer_is_named_by_its_own_file(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = data_with_corrected_set(tmp_path)
    corrected = data / "mt_bench" / "reference_answer" / "corrected.jsonl"
    edit_jsonl(corrected, lambda row: None if row["question_id"] == MATH else row)
    config = config_for(tmp_path, data, fake, fake.base_url, reference="corrected")
    assert_refused(
        capsys,
        fake,
        tmp_path / "store.sqlite",
        ["run", "-c", str(config)],
        str(corrected),
        f"no reference answer for question {MATH}",
    )


@pytest.mark.parametrize("name", ["../gpt-4", "sets/gpt-4", ""])
def test_a_reference_that_is_not_a_plain_set_name_is_a_config_error(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    config = config_for(tmp_path, copy_data(tmp_path), fake, fake.base_url, reference=name)
    assert_refused(
        capsys,
        fake,
        tmp_path / "store.sqlite",
        ["run", "-c", str(config)],
        str(config),
        "[judge] key 'reference'",
    )
