"""A reasoning judge's settings survive export and import: they stay shown with its scores.

A judge's reasoning effort or thinking budget changes its grades, so the store records them with
every judgment and `show` prints them with the judge. Exported lines carry them
(`judge_settings`, after FastChat's fields, which FastChat's tools ignore), and `import` reads
them back: a store rebuilt from the files shows the same judge settings as the one they came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

SETTINGS = {"reasoning": True, "reasoning_effort": "high"}


def shown_settings(capsys: pytest.CaptureFixture[str], store: Path) -> list[Any]:
    code, out, err = mtbench(capsys, "show", "--store", str(store), "--json")
    assert code == 0, err
    return [board["judge"]["settings"] for board in orjson.loads(out)["leaderboards"]]


@pytest.mark.parametrize("mode", ["single", "pairwise-all"])
def test_a_reasoning_judges_settings_survive_export_and_import(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    judge = {"name": "g5", "model": "gpt-5", "reasoning_effort": "high", "mode": mode}
    judge["base_url"] = fake.base_url
    models = [model("alpha", fake.base_url), model("beta", fake.base_url)]
    config = write_config(tmp_path, models=models, judge=judge, questions=[81, 101])
    assert mtbench(capsys, "run", "-c", str(config))[0] == 0
    store, files = tmp_path / "store.sqlite", tmp_path / "fastchat"
    assert shown_settings(capsys, store) == [[SETTINGS]]

    assert mtbench(capsys, "export", "--store", str(store), "--fastchat", str(files))[0] == 0
    (exported,) = (files / "model_judgment").iterdir()
    lines = [orjson.loads(line) for line in exported.read_bytes().splitlines()]
    assert lines and all(line["judge_settings"] == SETTINGS for line in lines)

    rebuilt = tmp_path / "rebuilt.sqlite"
    argv = ["import", "--store", str(rebuilt), "--fastchat", str(files)]
    assert mtbench(capsys, *argv)[0] == 0
    assert shown_settings(capsys, rebuilt) == [[SETTINGS]]
