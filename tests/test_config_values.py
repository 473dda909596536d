"""Values that pass a type check and would fail later (inside aiohttp, in SQLite, in memory, at the
terminal) are refused at load: URLs as aiohttp parses them, finite numbers in sane ranges, integers
SQLite can store, a progress interval that can be shown."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.config import MAX_TOKENS, load_config
from engine.run.runner import execute
from tests.support.fakeserver import FakeServer
from tests.support.paths import FASTCHAT_REFERENCE
from tests.support.refusal import assert_refused, copy_data, edit_jsonl
from tests.support.runconfig import model, mtbench, write_config

INF, NAN = float("inf"), float("nan")


def refuse_model_setting(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    settings: dict[str, Any],
    *needles: str,
) -> str:
    config = write_config(tmp_path, models=[{"name": "alpha", **settings}])
    argv = ["generate", "-c", str(config)]
    return assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, str(config), *needles)


@pytest.mark.parametrize(
    ("url", "needles"),
    [
        ("http://", ["has no host"]),
        ("http://127.0.0.1:99999/v1", ["Port out of range"]),
        ("http://[::1/v1", ["Invalid IPv6 URL"]),
        ("http://127.0.0.1:0/v1", ["port 0"]),
        ("http://127.0.0.1 /v1", ["space"]),
        ("http://user:secret@127.0.0.1/v1", ["credentials", "api_key_env"]),
        ("http://127.0.0.1/v1?key=1", ["query"]),
        ("ftp://127.0.0.1/v1", ["http:// or https://"]),
    ],
)
def test_a_base_url_aiohttp_cannot_use_is_refused_at_load(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    url: str,
    needles: list[str],
) -> None:
    line = refuse_model_setting(tmp_path, fake, capsys, {"base_url": url}, "'base_url'", *needles)
    urls = [fake.base_url, url]
    lines = refuse_model_setting(
        tmp_path, fake, capsys, {"base_urls": urls}, "'base_urls'", *needles
    )
    assert "secret" not in line + lines


@pytest.mark.parametrize(
    ("key", "value", "needles"),
    [
        ("timeout", INF, ["inf", "from 0.001 to 86400"]),
        ("timeout", NAN, ["nan", "from 0.001 to 86400"]),
        ("timeout", 1e9, ["1000000000.0", "86400"]),
        ("ready_timeout", INF, ["inf", "86400"]),
        ("price_in", INF, ["inf", "from 0 to 10000"]),
        ("price_out", NAN, ["nan"]),
        ("temperature", NAN, ["nan", "between 0 and 2"]),
    ],
)
def test_a_number_that_is_not_finite_or_not_sane_is_refused_at_load(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: float,
    needles: list[str],
) -> None:
    settings = {"base_url": fake.base_url, key: value}
    refuse_model_setting(tmp_path, fake, capsys, settings, f"'{key}'", *needles)


@pytest.mark.parametrize(
    ("key", "value", "needles"),
    [
        ("max_tokens", 2**63 - 1, ["9223372036854775807", f"from 1 to {MAX_TOKENS}"]),
        ("max_tokens", MAX_TOKENS + 1, [str(MAX_TOKENS + 1)]),
        ("seed", 99999999999999999999, ["99999999999999999999", "9223372036854775807"]),
        ("seed", -(2**63) - 1, ["-9223372036854775809"]),
        ("rpm", 2**63, ["9223372036854775808"]),
        ("max_attempts", 5000, ["5000", "from 1 to 1000"]),
        ("concurrency", 10**9, ["1000000000"]),
    ],
)
def test_an_integer_that_overflows_sqlite_or_memory_is_refused_at_load(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: int,
    needles: list[str],
) -> None:
    settings = {"base_url": fake.base_url, key: value}
    refuse_model_setting(tmp_path, fake, capsys, settings, f"'{key}'", *needles)


@pytest.mark.parametrize(
    ("top", "judge", "needles"),
    [
        ({"questions": [81, 2**63]}, {}, ["'questions'", "9223372036854775808"]),
        ({"server_slots": 10**9}, {}, ["'server_slots'", "from 1 to 1024"]),
        ({}, {"samples": 1000}, ["'samples'", "from 1 to 100"]),
    ],
)
def test_a_top_level_or_judge_integer_out_of_range_is_refused(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    top: dict[str, Any],
    judge: dict[str, Any],
    needles: list[str],
) -> None:
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judge={"name": "judge-x", "base_url": fake.base_url, **judge},
        **top,
    )
    argv = ["run", "-c", str(config)]
    assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, str(config), *needles)


def test_a_question_id_sqlite_cannot_store_is_refused_by_file_and_line(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_data(tmp_path)
    questions = data / "mt_bench" / "question.jsonl"
    edit_jsonl(questions, lambda q: {**q, "question_id": 2**63} if q["question_id"] == 82 else q)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], data=str(data))
    argv = ["generate", "-c", str(config)]
    needles = [f"{questions}:2", "'question_id' = 9223372036854775808", "out of range"]
    assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, *needles)


@pytest.mark.parametrize("folder", ["model_answer", "model_judgment"])
def test_a_fastchat_import_with_an_out_of_range_question_id_creates_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], folder: str
) -> None:
    source = tmp_path / "fastchat"
    for name in ("model_answer", "model_judgment"):
        (source / name).mkdir(parents=True)
    original = sorted((FASTCHAT_REFERENCE / folder).glob("*.jsonl"))[0]
    target = source / folder / original.name
    target.write_bytes(original.read_bytes())
    edit_jsonl(target, lambda row: {**row, "question_id": 2**63})
    store = tmp_path / "imported.sqlite"
    argv = ["import", "--store", str(store), "--fastchat", str(source)]
    assert_refused(capsys, None, store, argv, f"{target}:1", "9223372036854775808")


def test_plan_at_the_max_tokens_cap_builds_no_placeholder_answers(
    tmp_path: Path, fake: FakeServer
) -> None:
    """Estimates count the tokens of answers not yet written without materialising them."""
    judge = {"name": "judge-x", "base_url": fake.base_url, "max_tokens": MAX_TOKENS}
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url, max_tokens=MAX_TOKENS)],
        judge=judge,
        questions=[81, 82],
    )
    tracemalloc.start()
    try:
        result = asyncio.run(execute(load_config(config), "plan"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_TOKENS  # one placeholder answer alone would be 4 bytes per token
    by_name = {endpoint.name: endpoint for endpoint in result.endpoints}
    alpha, judged = by_name["alpha"], by_name["judge-x"]
    assert (alpha.to_send, judged.to_send) == (4, 4)
    assert alpha.completion_tokens == 4 * MAX_TOKENS
    # turn 2 of each question shows its turn-1 answer; judging shows one, then two answers
    assert 2 * MAX_TOKENS < alpha.prompt_tokens < 2 * MAX_TOKENS + 2_000
    assert 6 * MAX_TOKENS < judged.prompt_tokens < 6 * MAX_TOKENS + 10_000
    assert fake.stats(arrivals=False)["requests"] == 0
    assert not (tmp_path / "store.sqlite").exists()


@pytest.mark.parametrize("interval", ["nan", "-1", "0", "inf", "0.01", "soon"])
def test_a_progress_interval_that_cannot_be_shown_is_refused_in_one_line(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], interval: str
) -> None:
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)])
    argv = ["run", "-c", str(config), "--progress-interval", interval]
    needles = ["--progress-interval", repr(interval), "from 0.1 to 86400"]
    assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, *needles)


def test_a_missing_argument_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = mtbench(capsys, "run")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "-c/--config" in err and "mtbench run --help" in err


@pytest.mark.parametrize(
    ("extra_body", "needles"),
    [
        ({"temperature": 0.9}, ["'temperature' is set by the engine"]),
        ({"messages": []}, ["'messages' is set by the engine"]),
        ({"stream": True}, ["'stream' is set by the engine"]),
        ({"top_p": INF}, ["inf", "JSON"]),
        ({"logit_bias": {"50256": 2**64}}, ["18446744073709551616", "64-bit"]),
    ],
)
def test_extra_body_that_would_override_the_request_or_not_encode_is_refused(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    extra_body: dict[str, Any],
    needles: list[str],
) -> None:
    settings = {"base_url": fake.base_url, "extra_body": extra_body}
    refuse_model_setting(tmp_path, fake, capsys, settings, "'extra_body'", *needles)


@pytest.mark.parametrize(
    "key", ["sk-test\n", "sk-te\nst", " sk-test", "sk-test\u2026"], ids=["nl", "mid", "sp", "uni"]
)
def test_an_api_key_that_cannot_go_into_a_header_is_refused_without_printing_it(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    key: str,
) -> None:
    monkeypatch.setenv("MTBENCH_TEST_BROKEN_KEY", key)
    settings = {"base_url": fake.base_url, "api_key_env": "MTBENCH_TEST_BROKEN_KEY"}
    line = refuse_model_setting(tmp_path, fake, capsys, settings, "MTBENCH_TEST_BROKEN_KEY")
    assert "sk-te" not in line


def test_a_model_labelled_like_the_judge_is_refused(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        models=[model("judge judge-x", fake.base_url)],
        judge={"name": "judge-x", "base_url": fake.base_url},
    )
    argv = ["run", "-c", str(config)]
    assert_refused(
        capsys, fake, tmp_path / "store.sqlite", argv, "'judge judge-x'", "judge's label"
    )


def test_an_integer_too_long_to_convert_is_a_toml_error_not_a_traceback(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f'store = "store.sqlite"\nquestions = [{"9" * 5000}]\n')
    argv = ["plan", "-c", str(config)]
    assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, str(config), "not valid TOML")


def test_values_at_their_documented_limits_are_accepted(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    limits = {
        "max_tokens": MAX_TOKENS,
        "seed": 2**63 - 1,
        "timeout": 86_400,
        "max_attempts": 1000,
        "price_in": 10_000,
        "extra_body": {"top_p": 0.9, "logit_bias": {"50256": -100}},
    }
    config = write_config(
        tmp_path,
        models=[model("alpha", f"http://[::1]:{fake.port}/v1/", **limits)],
        judge={"name": "judge-x", "base_url": fake.base_url, "samples": 100},
        questions=[81],
        server_slots=1024,
    )
    code, out, err = mtbench(capsys, "plan", "-c", str(config), "--json")
    assert code == 0, err
    assert orjson.loads(out)["models"]["alpha"]["to_send"] == 2
