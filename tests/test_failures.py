"""Hung requests are retried after their timeout; a 401 fails its endpoint fast and alone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config


def rows(store: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute(sql).fetchall()


def test_hung_requests_time_out_and_are_retried(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(fault_hang=0.1, seed=7)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url, timeout=0.5)])
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out
    stats = fake.stats(arrivals=False)
    assert stats["faults"]["hang"] > 0
    assert stats["ok"] == 160
    assert rows(tmp_path / "store.sqlite", "SELECT COUNT(*) FROM answers") == [(160,)]


def test_a_401_fails_its_model_fast_while_the_others_finish(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(auth_fail_models=["locked"])
    config = write_config(
        tmp_path,
        models=[
            model("alpha", fake.base_url),
            model("locked", fake.base_url, concurrency=4),
            model("gamma", fake.base_url),
        ],
    )
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 1
    stats = fake.stats(arrivals=False)
    assert stats["by_model"]["locked"] <= 4  # only what was in flight when the first 401 came back
    assert stats["ok"] == 320
    store = tmp_path / "store.sqlite"
    assert rows(store, "SELECT model, COUNT(*) FROM answers GROUP BY model") == [
        ("alpha", 160),
        ("gamma", 160),
    ]
    classes = dict(rows(store, "SELECT error_class, COUNT(*) FROM failures GROUP BY error_class"))
    assert classes["auth"] == 80
    assert classes["dependency"] == 80  # the turn-2 jobs that needed the failed turn 1
    assert "auth: 80" in out
    assert out.count("HTTP 401") == 1  # one clear message, not eighty
    assert "check api_key_env" in out


def test_a_server_that_is_not_running_fails_its_model_in_seconds(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url), model("down", f"http://127.0.0.1:{dead_port}/v1")],
    )
    started = time.monotonic()
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert time.monotonic() - started < 15
    assert code == 1
    assert "unreachable: 80" in out
    assert out.count("is the server running? check base_url") == 1
    assert f"127.0.0.1:{dead_port}" in out
    assert fake.stats(arrivals=False)["ok"] == 160
