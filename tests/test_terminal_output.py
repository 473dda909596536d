"""What the engine prints cannot be garbled by a name or a server: escaped text, JSON-only stderr,
and a run summary that keeps a model named like the judge apart from the judge."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from engine.cli.progress_views import RichView, plain_line
from engine.display import cell_width, terminal_text
from engine.run.progress import Snapshot
from tests.support.engineproc import start_engine
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config
from tests.support.scripted import json_reply

HOSTILE = ["tab\there", "new\nline", "nul\x00x", "rtl\u202eevil", "[red]markup", "ansi\x1b[2Jx"]
# A raw control, bidi or escape character anywhere but the line breaks between lines.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def _json_lines(text: str) -> list[dict[str, Any]]:
    objects = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    assert all(isinstance(obj, dict) for obj in objects)
    return objects


def test_with_json_every_stderr_line_is_json_even_when_an_endpoint_answers_401(
    tmp_path: Path, fake: FakeServer
) -> None:
    fake.configure(auth_fail_models=["locked"])
    models = [model("alpha", fake.base_url), model("locked", fake.base_url, concurrency=2)]
    config = write_config(tmp_path, models=models, questions=[81, 82])
    process = start_engine("generate", "-c", str(config), "--json", "--progress-interval", "0.2")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert orjson.loads(out)["failures"] == {"auth": 2, "dependency": 2}
    lines = _json_lines(err)  # fails on any plain-text line
    logs = [line for line in lines if "log" in line]
    assert any("HTTP 401" in line["log"] and line["level"] == "error" for line in logs), err
    assert any("progress" in line for line in lines)


def test_with_json_an_error_is_a_json_line_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = mtbench(capsys, "run", "-c", str(tmp_path / "missing.toml"), "--json")
    assert code == 2 and out == ""
    (line,) = _json_lines(err)
    assert line["exit_code"] == 2 and "missing.toml" in line["error"]


def test_json_refuses_a_text_progress_display_on_the_same_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "-c", str(tmp_path / "x.toml"), "--json", "--progress", "plain"]
    code, _, err = mtbench(capsys, *argv)
    assert code == 2
    assert "use --progress json or --quiet" in _json_lines(err)[0]["error"]


def test_a_model_and_a_judge_of_one_name_keep_their_own_summary_rows(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # GPT-4 judging GPT-4's answers: one name, two roles (a model *labelled* like the judge,
    # "judge gpt-4", is refused at load: see test_preflight)
    judge = {"name": "gpt-4", "base_url": fake.base_url}
    config = write_config(
        tmp_path, models=[model("gpt-4", fake.base_url)], judge=judge, questions=[81]
    )
    code, out, err = mtbench(capsys, "run", "-c", str(config), "--json", "--progress-interval", "9")
    assert code == 0
    summary = orjson.loads(out)
    assert summary["models"]["gpt-4"]["done"] == 2  # its two turns
    assert summary["judges"]["gpt-4"]["done"] == 2  # two judgments of them
    final = [line for line in _json_lines(err) if "progress" in line][-1]["progress"]
    rows = {(s["role"], s["name"]): s["finished"] for s in final}
    assert rows[("model", "gpt-4")] == 2 and rows[("judge", "gpt-4")] == 2
    code, out, _ = mtbench(capsys, "run", "-c", str(config), "--quiet")
    assert code == 0
    lines = out.splitlines()
    assert re.match(r"gpt-4\s+model\s+2\s+0\s+2\s", lines[1]), out
    assert re.match(r"gpt-4\s+judge\s+2\s+0\s+2\s", lines[2]), out


def _assert_table_kept(table: str, rows: int) -> None:
    lines = table.splitlines()
    assert len(lines) == rows, table
    assert not RAW.search(table), table
    assert len({cell_width(line) for line in lines}) == 1, table


@pytest.fixture
def hostile_store(tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]) -> Path:
    models = [model(name, fake.base_url) for name in HOSTILE]
    judge = {"name": "judge\tx", "base_url": fake.base_url}
    config = write_config(tmp_path, models=models, judge=judge, questions=[81])
    code, out, _ = mtbench(capsys, "plan", "-c", str(config))
    assert code == 0
    _assert_table_kept(out.split("\n(estimates")[0], 1 + len(HOSTILE) + 2)
    code, out, _ = mtbench(capsys, "run", "-c", str(config), "--quiet")
    assert code == 0
    _assert_table_kept("\n".join(out.splitlines()[: 1 + len(HOSTILE) + 2]), 1 + len(HOSTILE) + 2)
    assert "tab\\there" in out and "new\\nline" in out and "rtl\\u202eevil" in out
    return tmp_path / "store.sqlite"


def test_hostile_names_are_escaped_in_the_plan_the_summary_and_show(
    hostile_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = mtbench(capsys, "show", "--store", str(hostile_store))
    assert code == 0
    assert not RAW.search(out)
    board = out.split("\n\n")[0].splitlines()
    assert board[0].startswith("Judge judge\\tx (model judge\\tx")
    _assert_table_kept("\n".join(board[1:]), 1 + len(HOSTILE))
    for name in ("nul\\x00x", "ansi\\x1b[2Jx", "[red]markup"):
        assert name in out


def test_an_error_line_naming_a_hostile_value_stays_one_line(
    hostile_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["show", "--store", str(hostile_store), "--judge", "x\x1b[2J\ny\u202e"]
    code, _, err = mtbench(capsys, *argv)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert not RAW.search(line)
    assert "judges in the store: 'judge\\tx'" in line


def test_a_server_error_message_with_terminal_escapes_is_shown_escaped(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    error = {"error": {"message": "bad\x1b[2J\nrequest\u202e"}}
    fake.script([json_reply(error, 400, model="broken")])  # "fine" gets the fake's own answers
    models = [model("fine", fake.base_url), model("broken", fake.base_url)]
    config = write_config(tmp_path, models=models, questions=[81])
    code, out, _ = mtbench(capsys, "generate", "-c", str(config), "--quiet")
    assert code == 1
    assert "bad\\x1b[2J\\nrequest\\u202e" in out
    assert not RAW.search(out)


def _snapshot(name: str, role: str) -> Snapshot:
    return Snapshot(name, role, "generation", 4, 2, 0, 0, 1.0, 10.0, 0, 0, None, None)


def test_progress_shows_names_escaped_and_never_as_rich_markup() -> None:
    snapshots = [_snapshot("generation", "phase"), *(_snapshot(n, "model") for n in HOSTILE)]
    view = RichView.__new__(RichView)
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(view._table(snapshots))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert not RAW.search(text)
    for name in HOSTILE:
        assert terminal_text(name, name=True) in text
    assert "[red]markup" in text
    assert plain_line(_snapshot("new\nline", "model")).startswith("new\\nline: 2/4 done")
