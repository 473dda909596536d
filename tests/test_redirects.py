"""Requests to model APIs never follow a redirect: a 3xx fails its request once, naming where."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.endpoints.retry import LOCATION_CHARS, error_for_status
from engine.errors import FatalRequestError
from tests.support.leaky_server import LeakyServer
from tests.support.runconfig import mtbench, write_config


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_fatal_request_error_that_names_its_target(status: int) -> None:
    error = error_for_status(
        status, {"Location": "https://api.example.com/v1/chat"}, "", "alpha at http://x"
    )
    assert isinstance(error, FatalRequestError)
    assert (error.error_class, error.status, error.endpoint_fatal) == ("redirect", status, False)
    assert str(error).startswith(
        f"alpha at http://x answered HTTP {status} (Location: https://api.example.com/v1/chat)"
    )
    assert "set base_url" in str(error)


def test_a_redirect_target_is_printed_on_one_line_and_cut_to_a_sane_length() -> None:
    hostile = "http://evil.example/\r\nSet-Cookie: x\x1b[2J" + "a" * 1000
    message = str(error_for_status(307, {"Location": hostile}, "", "alpha"))
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert len(message) < LOCATION_CHARS + 200
    no_location = str(error_for_status(302, {}, "", "alpha"))
    assert "no Location header" in no_location


def test_a_redirecting_endpoint_fails_each_request_once_and_is_not_given_up_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MTBENCH_REDIRECT_TEST_KEY", "sk-redirect-0123456789abcdef")
    record = tmp_path / "target.jsonl"
    record.touch()
    with (
        LeakyServer("--record", str(record)) as target,
        LeakyServer("--redirect-to", target.url) as leaky,
    ):
        name = "redirect-307-anthropic-json"
        model = {
            "name": name,
            "base_url": leaky.url,
            "api": "anthropic",
            "api_key_env": "MTBENCH_REDIRECT_TEST_KEY",
            "concurrency": 1,
        }
        config = write_config(tmp_path, models=[model], questions=[81, 82])
        code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 1
    assert leaky.output.count(f"model={name}") == 2  # both first turns were tried
    assert record.read_text() == ""
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        rows = db.execute(
            "SELECT question_id, error_class, attempts FROM failures WHERE turn = 1 "
            "ORDER BY question_id"
        ).fetchall()
    assert rows == [(81, "redirect", 1), (82, "redirect", 1)]
    assert f"Location: {target.url}/v1/messages?api_key=[redacted" in out
