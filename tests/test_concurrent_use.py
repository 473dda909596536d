"""Readers while a run writes, and a second writer on the same store."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.support.engineproc import start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config


def test_show_and_report_read_while_a_run_writes_and_a_second_run_is_refused(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(latency_median=0.05)
    models = [model("alpha", fake.base_url, concurrency=4)]
    config = write_config(
        tmp_path, models=models, judge={"name": "judge-a", "base_url": fake.base_url}
    )
    store = tmp_path / "store.sqlite"
    writer = start_engine("run", "-c", str(config))
    try:
        wait_until(lambda: fake.stats(arrivals=False)["by_kind"].get("judge", 0) >= 5)

        code, out, err = mtbench(capsys, "show", "--store", str(store), "--json")
        assert code == 0, err
        (board,) = orjson.loads(out)["leaderboards"]
        assert 0 < board["models"][0]["rows"] + board["models"][0]["missing"] < 160

        report = tmp_path / "report.html"
        code, out, err = mtbench(capsys, "report", "--store", str(store), "-o", str(report))
        assert code == 0, err
        assert "alpha" in report.read_text()

        before = fake.stats(arrivals=False)["requests"]
        code, out, err = mtbench(capsys, "run", "-c", str(config))
        assert code == 2
        assert "another mtbench run is writing to this store" in err
        assert f"pid {writer.pid}" in err
        assert fake.stats(arrivals=False)["requests"] - before < 40  # only the first run's traffic
    finally:
        _, writer_err = writer.communicate(timeout=60)
    assert writer.returncode == 0, writer_err
    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    (board,) = orjson.loads(out)["leaderboards"]
    assert board["models"][0]["rows"] + board["models"][0]["missing"] == 160
