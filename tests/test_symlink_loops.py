"""A store or report path inside a loop of symbolic links is bad input like any unusable path: one
line naming it, exit 2 (an `engine.StoreError` from Python), nothing created. pathlib raises a
RuntimeError for a loop before Python 3.13, which was an internal error (exit 1) in every command.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import engine
from tests.support.fakeserver import FakeServer
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import model, mtbench, write_config


@pytest.fixture
def loop(tmp_path: Path) -> Path:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    return tmp_path / "a"


def test_a_store_in_a_symlink_loop_is_refused_by_every_command(
    tmp_path: Path, loop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path, models=[model("alpha", "http://127.0.0.1:9/v1")], store=str(loop / "s.sqlite")
    )
    commands = [
        ("generate", "-c", str(config)),
        ("show", "--store", str(loop)),
        ("report", "--store", str(loop), "-o", str(tmp_path / "r.html")),
        ("export", "--store", str(loop), "--fastchat", str(tmp_path / "out")),
    ]
    for argv in commands:
        code, _out, err = mtbench(capsys, *argv)
        assert code == 2, (argv, err)
        assert "a loop of symbolic links" in err and err.count("\n") == 1, argv
    with pytest.raises(engine.StoreError, match="a loop of symbolic links"):
        engine.scores(loop)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "run.toml"]


def test_a_report_written_into_a_symlink_loop_is_refused_in_one_line(
    tmp_path: Path,
    loop: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MTBENCH_DATA", str(MTBENCH_DATA))
    store = tmp_path / "store.sqlite"
    alpha = engine.Model(name="alpha", base_url=fake.base_url)
    assert engine.evaluate([alpha], command="generate", store=store, questions=[81]).ok
    code, _out, err = mtbench(capsys, "report", "--store", str(store), "-o", str(loop))
    assert code == 2
    assert err.startswith(f"mtbench: error: {loop}: cannot write the report (")
    assert err.count("\n") == 1
