"""Served models' logs live in `servers/` beside the store; a place they cannot be written is bad
input found before the first request, or, if it turns bad later, fails that model's server alone.

A file named `servers` next to the store (or a directory the user may not write) used to reach
the engine's machinery as an OSError: "internal error in dispatch", with a traceback, exit 1.
"""

from __future__ import annotations

import shlex
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine.serving.sweep import server_log_stem
from tests.support.runconfig import mtbench, write_config
from tests.support.served_fake import COMMAND as SERVED_FAKE


def served(tmp_path: Path, name: str) -> dict[str, Any]:
    events = tmp_path / "events.jsonl"
    serve = (
        f"{SERVED_FAKE} {shlex.quote(str(events))} {name} --port {{port}} --latency-median 0.005"
    )
    return {"name": name, "serve": serve, "ready_timeout": 30}


def test_a_file_where_the_server_logs_belong_is_refused_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "servers").write_text("my notes\n")
    config = write_config(tmp_path, models=[served(tmp_path, "local")], questions=[81])
    code, out, err = mtbench(capsys, "generate", "-c", str(config))
    assert code == 2, out + err
    assert err.count("\n") == 1 and err.startswith("mtbench: error: "), err
    assert "servers: served models write their logs there, but it is not a directory" in err
    assert "Traceback" not in err
    assert not (tmp_path / "events.jsonl").exists()  # no server was started
    assert not (tmp_path / "store.sqlite").exists()
    assert (tmp_path / "servers").read_text() == "my notes\n"


def test_a_server_log_that_cannot_be_opened_fails_that_model_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = f"{server_log_stem('blocked')}.log"
    (tmp_path / "servers" / blocked).mkdir(parents=True)  # a directory where its log goes
    models = [served(tmp_path, "blocked"), served(tmp_path, "fine")]
    config = write_config(tmp_path, models=models, questions=[81], server_slots=2)
    code, out, err = mtbench(capsys, "generate", "-c", str(config))
    assert code == 1, out + err
    assert "cannot write its log" in out and blocked in out
    assert "internal error" not in out + err and "Traceback" not in err
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        answered = dict(db.execute("SELECT model, COUNT(*) FROM answers GROUP BY model"))
        failed = dict(db.execute("SELECT model, COUNT(*) FROM failures GROUP BY model"))
    assert answered == {"fine": 2}
    assert failed == {"blocked": 2}
