"""The fault matrix: each fault at 5-10% of requests, then all of them at once.

Whatever the server does, the run completes; every job either has its result in the store or is
a recorded failure with its class, attempts and last error; every valid answer the server gave is
stored; and `show` reports the failures and the -1 ratings per model.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

MIXED = {
    "fault_429": 0.05,
    "fault_429_retry_after": 0.2,
    "fault_500": 0.05,
    "fault_503": 0.05,
    "fault_hang": 0.05,
    "fault_reset": 0.05,
    "fault_malformed": 0.05,
    "fault_truncate": 0.05,
    "judge_no_verdict": 0.05,
}
FAULTS: dict[str, dict[str, Any]] = {
    "429-storm": {"fault_429": 0.1, "fault_429_retry_after": 0.2},
    "500": {"fault_500": 0.1},
    "503": {"fault_503": 0.1},
    "hang": {"fault_hang": 0.05},
    "reset": {"fault_reset": 0.1},
    "malformed-json": {"fault_malformed": 0.1},
    "truncated-sse": {"fault_truncate": 0.1},
    "no-verdict": {"judge_no_verdict": 0.1},
    "all-mixed": MIXED,
}
MODELS = ("alpha", "beta")  # beta and the judge stream (SSE), alpha reads JSON bodies


def query(store: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute(sql).fetchall()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_run_completes_and_accounts_for_every_job(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    fake.configure(seed=17, latency_median=0.005, **FAULTS[fault])
    common = {"concurrency": 8, "timeout": 1.0, "max_attempts": 6}
    models = [model(name, fake.base_url, stream=(name == "beta"), **common) for name in MODELS]
    judge = {"name": "judge-a", "base_url": fake.base_url, "stream": True, **common}
    config = write_config(tmp_path, models=models, judge=judge)
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    store = tmp_path / "store.sqlite"

    failures = query(
        store,
        "SELECT kind, model, question_id, turn, error_class, attempts, message FROM failures "
        "WHERE run_id = (SELECT MAX(id) FROM runs)",
    )
    assert code == (1 if failures else 0), out
    for *_, error_class, attempts, message in failures:
        assert error_class and message
        assert attempts >= 1 or error_class == "dependency"
    failed = {(kind, m, q, t) for kind, m, q, t, *_ in failures}
    answered = set(query(store, "SELECT model, question_id, turn FROM answers"))
    judged = set(query(store, "SELECT model, question_id, turn FROM judgments"))
    for slot in query(
        store,
        "SELECT m.column1, q.question_id, t.column1 FROM questions q, "
        "(VALUES ('alpha'), ('beta')) m, (VALUES (1), (2)) t",
    ):
        assert slot in answered or ("generate", *slot) in failed
        assert slot in judged or ("judge", *slot) in failed

    stats = fake.stats(arrivals=False)
    injected = sum(stats["faults"].values())
    assert injected > 0 or fault == "no-verdict"
    assert query(store, "SELECT COUNT(*) FROM responses") == [(stats["ok"],)]  # nothing valid lost

    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    assert code == 0
    shown = orjson.loads(out)
    minus_ones = dict(
        query(store, "SELECT model, COUNT(*) FROM judgments WHERE score = -1 GROUP BY 1")
    )
    judged_per_model = dict(query(store, "SELECT model, COUNT(*) FROM judgments GROUP BY 1"))
    for entry in shown["leaderboards"][0]["models"]:
        assert entry["missing"] == minus_ones.get(entry["model"], 0)
        assert entry["unjudged"] == 160 - judged_per_model[entry["model"]]
    by_class: dict[str, int] = {}
    for *_, error_class, _, _ in failures:
        by_class[error_class] = by_class.get(error_class, 0) + 1
    assert shown["last_run"]["failures"] == by_class
    if fault == "no-verdict":
        assert sum(minus_ones.values()) > 0
