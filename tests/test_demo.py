"""`mtbench demo`: a local model answers and judges, no key, a table and the store at the end."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import mtbench


def test_the_demo_runs_the_whole_pipeline_with_a_local_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the README's first command runs it: no key, no data dir, nothing reachable but the
    packages already installed (the data download points at a port nobody listens on)."""
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MTBENCH_DATA"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MTBENCH_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("MTBENCH_DATA_URL", "http://127.0.0.1:9/unreachable")
    store = tmp_path / "demo.sqlite"
    argv = ["demo", "--store", str(store)]
    argv += ["--categories", "writing,math", "--max-tokens", "24", "--quiet"]
    code, out, err = mtbench(capsys, *argv)
    assert code == 0, err
    assert "smollm2-135m" in out and "overall" in out  # the score table
    assert f"store: {store}" in out
    assert "demonstrate the pipeline" in out and "do not measure" in out
    assert 'api_key_env = "OPENAI_API_KEY"' in out  # how to use a real judge
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone() == (4,)
        statuses = db.execute("SELECT parse_status, COUNT(*) FROM judgments GROUP BY 1").fetchall()
    assert statuses == [("ok", 4)]  # the grammar made every judgment parsable
    assert (tmp_path / "servers" / "smollm2-135m.log").exists()


def test_a_mistyped_category_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "runs" / "demo.sqlite"
    argv = ["demo", "--store", str(store), "--data", str(MTBENCH_DATA)]
    code, _, err = mtbench(capsys, *argv, "--categories", "writting,math", "--quiet")
    assert code == 2
    assert err.startswith("mtbench: error: no MT-Bench category 'writting'; categories: coding")
    assert list(tmp_path.iterdir()) == []
