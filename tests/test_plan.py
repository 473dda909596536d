"""`mtbench plan` counts what a run would send and what is cached, and sends nothing itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.fakeserver import FakeServer
from tests.runconfig import model, mtbench, write_config


def plan_rows(out: str) -> dict[str, tuple[int, int, int]]:
    table = {}
    for line in out.splitlines()[1:]:
        name, *numbers = line.rsplit(maxsplit=3)
        table[name.strip()] = tuple(int(n) for n in numbers)
    return table


def test_plan_on_a_fresh_store_sends_nothing_and_creates_nothing(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judge={"name": "judge-x", "base_url": fake.base_url},
    )
    code, out, _ = mtbench(capsys, "plan", "-c", str(config))
    assert code == 0
    assert plan_rows(out) == {
        "alpha": (160, 160, 0),
        "judge judge-x": (160, 160, 0),
        "total": (320, 320, 0),
    }
    assert fake.stats(arrivals=False)["requests"] == 0
    assert not (tmp_path / "store.sqlite").exists()


def test_plan_on_a_half_finished_store_reports_the_split(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # alpha finishes; beta gets about a third of its requests answered with 500s and one attempt.
    fake.configure(fault_500=0.35, faults_only_for=["beta"], seed=3)
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url), model("beta", fake.base_url, max_attempts=1)],
    )
    assert mtbench(capsys, "generate", "-c", str(config))[0] == 1
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        stored_beta = db.execute("SELECT COUNT(*) FROM answers WHERE model = 'beta'").fetchone()[0]
    assert 0 < stored_beta < 160

    before = fake.stats(arrivals=False)["requests"]
    code, out, _ = mtbench(capsys, "plan", "-c", str(config))
    assert code == 0
    assert plan_rows(out) == {
        "alpha": (160, 0, 160),
        "beta": (160, 160 - stored_beta, stored_beta),
        "total": (320, 160 - stored_beta, 160 + stored_beta),
    }
    assert fake.stats(arrivals=False)["requests"] == before

    fake.configure(fault_500=0.0)
    assert mtbench(capsys, "generate", "-c", str(config))[0] == 0
    assert fake.stats(arrivals=False)["requests"] - before == 160 - stored_beta
