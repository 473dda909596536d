"""`[[judge]]` tables and several judges from Python: each judge takes every key a `[judge]`
table takes, names are required and unique when there are several, a bad config is one line
naming file, table and value (exit 2, nothing created), and each judge shows its own references.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.config import load_config
from tests.support.fakeserver import FakeServer
from tests.support.recording_proxy import RecordingProxy
from tests.support.runconfig import model, mtbench, write_config
from tests.test_judge_references import CORRECTED, MATH, WRITING, data_with_corrected_set

URL = "https://judges.example/v1"


def judges_config(tmp_path: Path, judges: list[dict[str, Any]], **top: Any) -> Path:
    return write_config(tmp_path, models=[model("alpha", URL)], judges=judges, **top)


def test_every_judge_table_keeps_its_own_endpoint_limits_prices_mode_samples_and_reference(
    tmp_path: Path,
) -> None:
    first = {"name": "fast", "model": "gpt-4o", "base_url": URL, "rpm": 500, "concurrency": 8}
    first |= {"price_in": 2.5, "price_out": 10.0, "samples": 3, "reference": "corrected"}
    second = {"name": "claude", "model": "claude-x", "api": "anthropic", "thinking": 2048}
    second |= {"mode": "pairwise-baseline", "baseline": "alpha", "tpm": 9000}
    config = load_config(judges_config(tmp_path, [first, second]))
    fast, claude = config.judges
    keys = ("name", "model", "base_urls", "rpm", "concurrency", "tpm", "price_in", "price_out")
    keys += ("samples", "reference", "mode", "baseline", "thinking", "temperature")
    assert {key: getattr(fast, key) for key in keys} == {
        **{"name": "fast", "model": "gpt-4o", "base_urls": (URL,), "rpm": 500},
        **{"concurrency": 8, "tpm": 0, "price_in": 2.5, "price_out": 10.0, "samples": 3},
        **{"reference": "corrected", "mode": "single", "baseline": "gpt-3.5-turbo"},
        **{"thinking": None, "temperature": 0.0},
    }
    assert {key: getattr(claude, key) for key in keys} == {
        **{"name": "claude", "model": "claude-x", "base_urls": ("https://api.anthropic.com",)},
        **{"rpm": 0, "concurrency": 16, "tpm": 9000, "price_in": None, "price_out": None},
        **{"samples": 1, "reference": "gpt-4", "mode": "pairwise-baseline", "baseline": "alpha"},
        **{"thinking": 2048, "temperature": None},  # a thinking judge is sent no temperature
    }
    assert config.judge == fast and claude.table() == "[[judge]] 'claude'"
    snapshot = config.snapshot()
    assert [judge["name"] for judge in snapshot["judges"]] == ["fast", "claude"]
    assert "table_name" not in snapshot["judges"][0]


def test_one_judge_table_in_array_form_is_named_after_its_model_like_a_judge_table(
    tmp_path: Path,
) -> None:
    config = load_config(judges_config(tmp_path, [{"model": "gpt-4o", "base_url": URL}]))
    assert [judge.name for judge in config.judges] == ["gpt-4o"]


@pytest.mark.parametrize(
    ("judges", "words"),
    [
        (
            [{"model": "a"}, {"name": "b", "model": "b"}],
            "[[judge]] #1 key 'name' is missing; with several judges each needs a name of its own",
        ),
        (
            [{"name": "a", "model": "x"}, {"name": "b"}, {"name": "a", "model": "y"}],
            "[[judge]] #3 key 'name' = 'a': [[judge]] #1 has that name already",
        ),
        (
            [{"name": "a"}, {"name": "b", "samples": 0}],
            "[[judge]] #2 key 'samples' = 0: expected an integer from 1 to 100",
        ),
        (
            [{"name": "a"}, {"name": "b", "reference": "../gpt-4"}],
            "[[judge]] #2 key 'reference' = '../gpt-4': give the name of a file",
        ),
    ],
)
def test_a_bad_judge_table_is_one_line_naming_file_table_and_value_and_nothing_is_created(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    judges: list[dict[str, Any]],
    words: str,
) -> None:
    config = judges_config(tmp_path, judges)
    for command in ("plan", "run", "judge"):
        code, out, err = mtbench(capsys, command, "-c", str(config))
        assert code == 2 and out == ""
        (line,) = err.strip().splitlines()
        assert line.startswith(f"mtbench: error: {config}: ") and words in line
    assert list(tmp_path.iterdir()) == [config]


@pytest.mark.parametrize("missing", [0, 1])
def test_a_missing_reference_set_names_the_config_and_the_judge_that_asked_for_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: int
) -> None:
    # Three judges overnight, one with a typo in its reference: the line says which judge.
    data = data_with_corrected_set(tmp_path)
    judges = [{"name": name, "base_url": URL} for name in ("a", "b", "c")]
    judges[missing]["reference"] = "corected"
    judges[2]["reference"] = "corrected"
    config = judges_config(tmp_path, judges, data=str(data))
    for command in ("plan", "run", "judge"):
        code, out, err = mtbench(capsys, command, "-c", str(config))
        assert code == 2 and out == ""
        (line,) = err.strip().splitlines()
        name = "ab"[missing]
        assert line.startswith(
            f"mtbench: error: {config}: [[judge]] '{name}' key 'reference' = 'corected': no file "
        )
    assert not (tmp_path / "store.sqlite").exists()


def test_a_judge_table_and_judge_tables_together_are_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        models=[model("alpha", URL)],
        judge={"name": "one", "base_url": URL},
        judges=[{"name": "two", "base_url": URL}],
    )
    code, out, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"mtbench: error: {config}: both a [judge] table and [[judge]] tables; give one judge "
        "as [judge], or every judge as a [[judge]] table of its own"
    ]
    assert list(tmp_path.iterdir()) == [config]


def test_a_model_labelled_like_one_of_the_judges_is_refused(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        models=[model("judge second", URL)],
        judges=[{"name": "first"}, {"name": "second"}],
    )
    with pytest.raises(engine.ConfigError, match="name 'judge second' is the judge's label"):
        load_config(config)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_evaluate_takes_several_judges_and_each_judges_every_answer(
    in_tmp: Path, fake: FakeServer
) -> None:
    alpha = engine.Model(name="alpha", base_url=fake.base_url)
    judges = [
        engine.Judge(name="first", model="judge-1", base_url=fake.base_url),
        engine.Judge(name="second", model="judge-2", base_url=fake.base_url, samples=2),
    ]
    result = engine.evaluate([alpha], judge=judges, store="s.sqlite", questions=[81])
    assert result.ok
    done = {c.name: c.done for c in result.endpoints if c.role == "judge"}
    assert done == {"first": 2, "second": 4}
    boards = engine.scores("s.sqlite").as_dict()["leaderboards"]
    assert sorted(board["judge"]["name"] for board in boards) == ["first", "second"]
    twins = [engine.Judge(name="same", base_url=URL), engine.Judge(name="same", base_url=URL)]
    with pytest.raises(engine.ConfigError) as refused:
        engine.evaluate([alpha], judge=twins, store="t.sqlite", questions=[81])
    assert str(refused.value) == (
        "engine.evaluate: judge #2 key 'name' = 'same': judge #1 has that name already; give "
        "every judge a name of its own"
    )
    assert not (in_tmp / "t.sqlite").exists()


def test_evaluate_with_a_judges_name_judges_with_that_one_of_the_configs_judges(
    in_tmp: Path, fake: FakeServer
) -> None:
    judges = [
        {"name": "first", "model": "judge-1", "base_url": fake.base_url},
        {"name": "second", "model": "judge-2", "base_url": fake.base_url},
    ]
    config = write_config(
        in_tmp, models=[model("alpha", fake.base_url)], judges=judges, questions=[81]
    )
    result = engine.evaluate(config, judge="second")
    assert [c.name for c in result.endpoints] == ["alpha", "second"]
    with pytest.raises(engine.ConfigError, match="no judge named 'third'; the config's judges:"):
        engine.evaluate(config, judge="third")


@pytest.fixture
def proxy(fake: FakeServer) -> Iterator[RecordingProxy]:
    with RecordingProxy(fake.url) as recording:
        yield recording


def test_each_judge_is_shown_its_own_reference_answers(
    tmp_path: Path, fake: FakeServer, proxy: RecordingProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    data = data_with_corrected_set(tmp_path)
    judges = [
        {"name": "fastchat-refs", "model": "judge-1", "base_url": fake.base_url},
        {"name": "own-refs", "model": "judge-2", "base_url": proxy.base_url}
        | {"reference": "corrected"},
    ]
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judges=judges,
        data=str(data),
        questions=[WRITING, MATH],
    )
    code, out, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out + err
    prompts = [body["messages"][-1]["content"] for body in proxy.bodies("/v1/chat/completions")]
    assert len(prompts) == 4 and sum(CORRECTED in p for p in prompts) == 2
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        found = db.execute(
            "SELECT DISTINCT judge, question_id, judge_settings FROM judgments"
        ).fetchall()
    assert sorted(found, key=str) == sorted(
        [
            ("fastchat-refs", WRITING, None),
            ("fastchat-refs", MATH, None),
            ("own-refs", WRITING, None),
            ("own-refs", MATH, '{"reference":"corrected"}'),
        ],
        key=str,
    )


def test_the_example_config_has_three_judges_each_with_its_own_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-example")
    example = Path(__file__).resolve().parents[1] / "config" / "several-judges.toml"
    config = load_config(example)
    endpoints = {(j.name, j.api, j.base_urls, j.samples) for j in config.judges}
    assert endpoints == {
        ("gpt-4o", "openai", ("https://api.openai.com/v1",), 1),
        ("claude", "anthropic", ("https://api.anthropic.com",), 1),
        ("qwen-judge", "openai", ("http://judge-node:8000/v1",), 3),
    }
    assert {model.name for model in config.models} == {"my-model-step-1000", "my-model-step-2000"}
