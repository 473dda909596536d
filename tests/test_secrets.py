"""API keys come from the environment and go nowhere else: store, logs, exports, output."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.leaky_server import RECORDER_REPLY, REDIRECT_BODY, SCRIPT, LeakyServer
from tests.support.runconfig import model, mtbench, write_config

KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e"


def test_the_api_key_is_in_no_file_and_no_output(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MTBENCH_TEST_KEY", KEY)
    fake.configure(auth_key=KEY, fault_500=0.05, fault_reset=0.05, fault_malformed=0.05)
    models = [
        model("alpha", fake.base_url, api_key_env="MTBENCH_TEST_KEY"),
        model("beta", fake.base_url, api_key_env="MTBENCH_TEST_KEY", stream=True),
        # a model whose server rejects it: its error message is printed and stored
        model("rejected", fake.base_url, api_key_env="MTBENCH_TEST_KEY"),
    ]
    fake.configure(reject_models=["rejected"])
    judge = {"name": "judge-a", "base_url": fake.base_url, "api_key_env": "MTBENCH_TEST_KEY"}
    config = write_config(tmp_path, models=models, judge=judge)
    caplog.set_level(logging.DEBUG)
    outputs = []
    for argv in (
        ["-v", "plan", "-c", str(config)],
        ["-v", "run", "-c", str(config)],
        ["show", "--store", str(tmp_path / "store.sqlite")],
        ["show", "--store", str(tmp_path / "store.sqlite"), "--json"],
        ["export", "--store", str(tmp_path / "store.sqlite"), "--fastchat", str(tmp_path / "out")],
    ):
        code, out, err = mtbench(capsys, *argv)
        assert code in (0, 1), err
        outputs += [out, err]
    assert fake.stats(arrivals=False)["ok"] > 0  # the key did authenticate
    assert fake.stats(arrivals=False)["status"].get("401", 0) == 0

    produced = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(produced) >= 5  # config, store (+ WAL files), lock, exports
    for path in produced:
        if path.name == "run.toml":
            assert KEY not in path.read_text()  # only the variable's name is in the config
            continue
        assert KEY.encode() not in path.read_bytes(), path
    for text in [*outputs, caplog.text]:
        assert KEY not in text


# --- servers that hand the key back: error bodies, answers, headers, redirects -----------------

LEAK_VARIABLE = "MTBENCH_LEAK_TEST_KEY"
LEAK_KEY = "sk-leak-Q9v2Xm4Rt7Lp1Zs8Kd3Wy6Hb5Nc0Fj"
BEHAVIOURS = ("echo-200", "echo-400", "echo-401", "echo-500", "redirect-307", "redirect-302")
WIRES = [(api, stream) for api in ("openai", "anthropic") for stream in (False, True)]


def leaky_model(behaviour: str, url: str, api: str, stream: bool) -> dict[str, Any]:
    name = f"{behaviour}-{api}-{'sse' if stream else 'json'}"
    return {
        "name": name,
        "model": name,
        "base_url": f"{url}/v1" if api == "openai" else url,
        "api": api,
        "stream": stream,
        "api_key_env": LEAK_VARIABLE,
        "max_attempts": 2,
    }


def served_leaky_model() -> dict[str, Any]:
    """A model the engine starts itself: the server prints every key it gets into servers/."""
    return {
        "name": "echo-200-served",
        "serve": f"{sys.executable} {SCRIPT} --port {{port}}",
        "api_key_env": LEAK_VARIABLE,
        "ready_timeout": 30,
    }


def leaky_judge(url: str, api: str, stream: bool) -> dict[str, Any]:
    return {
        "name": f"leaky-{api}",
        "model": "judge",
        "base_url": f"{url}/v1" if api == "openai" else url,
        "api": api,
        "stream": stream,
        "api_key_env": LEAK_VARIABLE,
    }


def run_cli(*argv: str) -> tuple[int, str, str]:
    """`mtbench ARGV` as a real process, as a user runs it: real stdout, stderr and logging."""
    env = {**os.environ, LEAK_VARIABLE: LEAK_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "engine", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def store_tables_text(store: Path) -> str:
    with sqlite3.connect(store) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(repr(db.execute(f"SELECT * FROM {t}").fetchall()) for t in tables)


def failures_by_model(store: Path) -> dict[str, tuple[str, int, str]]:
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT model, error_class, attempts, message FROM failures "
            "WHERE turn = 1 AND error_class != 'dependency'"
        )
        return {row[0]: row[1:] for row in rows}


def judges_that_rated_7(store: Path) -> list[str]:
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT DISTINCT judge FROM judgments WHERE score = 7 ORDER BY judge")
        return [row[0] for row in rows]


def run_every_command(directory: Path, leaky_url: str) -> list[str]:
    """plan, run, judge (a second judge), show, show --json, export, report: their outputs."""
    models = [
        leaky_model(behaviour, leaky_url, api, stream)
        for behaviour in BEHAVIOURS
        for api, stream in WIRES
    ]
    run_config = write_config(
        directory,
        models=[*models, served_leaky_model()],
        judge=leaky_judge(leaky_url, "openai", stream=True),
        questions=[81],
    )
    judge_config = write_config(
        directory,
        models=models,
        judge=leaky_judge(leaky_url, "anthropic", stream=False),
        questions=[81],
        name="judge.toml",
    )
    store = str(directory / "store.sqlite")
    outputs: list[str] = []
    for argv, expected in (
        (["plan", "-c", str(run_config)], 0),
        (["run", "-c", str(run_config)], 1),
        (["judge", "-c", str(judge_config)], 1),
        (["show", "--store", store], 0),
        (["show", "--store", store, "--json"], 0),
        (["export", "--store", store, "--fastchat", str(directory / "out")], 0),
        (["report", "--store", store, "-o", str(directory / "report.html")], 0),
    ):
        code, out, err = run_cli("-v", *argv)
        assert code == expected, (argv, err)
        outputs += [out, err]
    return outputs


def test_a_key_the_servers_echo_or_redirect_reaches_no_output_file_log_or_other_host(
    tmp_path: Path,
) -> None:
    record_file = tmp_path / "redirect-target.jsonl"
    record_file.touch()
    with (
        LeakyServer("--record", str(record_file)) as target,
        LeakyServer("--redirect-to", target.url) as leaky,
    ):
        outputs = run_every_command(tmp_path, leaky.url)
    assert LEAK_KEY in leaky.output  # the server did get the key, and echoed it back

    # Redirects are not followed: the other host heard nothing, and nothing of its reply (or of
    # the redirect's own body) was stored. Each one failed once, naming where it pointed.
    assert record_file.read_text() == ""
    store = tmp_path / "store.sqlite"
    failures = failures_by_model(store)
    for api, stream in WIRES:
        for status in (307, 302):
            name = f"redirect-{status}-{api}-{'sse' if stream else 'json'}"
            error_class, attempts, message = failures[name]
            assert (error_class, attempts) == ("redirect", 1), message
            assert f"HTTP {status}" in message and f"{target.url}/v" in message, message
    tables = store_tables_text(store)
    assert RECORDER_REPLY not in tables and REDIRECT_BODY not in tables

    # The echoes were kept, with the key masked: answers, judgments, error messages, server logs.
    assert f"[redacted ${LEAK_VARIABLE}]" in tables
    assert tables.count("A fine answer.") >= 2 * (len(WIRES) + 1)  # both turns, every wire
    assert judges_that_rated_7(store) == ["leaky-anthropic", "leaky-openai"]
    assert failures["echo-400-openai-json"][0] == "bad_request"
    assert "Incorrect API key provided: [redacted" in outputs[2]  # the run's failure summary
    server_logs = list((tmp_path / "servers").glob("*.log"))
    assert server_logs and "key=[redacted" in server_logs[0].read_text()
    assert (tmp_path / "report.html").stat().st_size > 0
    assert list((tmp_path / "out").rglob("*.jsonl"))

    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert LEAK_KEY.encode() not in path.read_bytes(), path
    assert LEAK_KEY not in tables
    for text in outputs:
        assert LEAK_KEY not in text
