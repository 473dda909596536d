"""kill -9 at any moment, then resume: nothing committed is lost, little is paid twice.

Each scenario kills `mtbench run` with SIGKILL at a different moment, checks the store as the crash
left it, resumes, and compares the result with an uninterrupted run of the same config. The fake
server samples for real (temperature > 0 answers differ between runs), so only temperature-0
categories are compared with the uninterrupted run; everything committed before the kill must
survive the resume unchanged, and the server's duplicate count (bodies answered twice) must stay
within the requests that could have been in flight: the total configured concurrency.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.engineproc import integrity, start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

MODELS = ("alpha", "beta", "gamma")
MODEL_CONCURRENCY = 4
JUDGE_CONCURRENCY = 8
TOTAL_CONCURRENCY = len(MODELS) * MODEL_CONCURRENCY + JUDGE_CONCURRENCY
TEMPERATURE_ZERO = ("extraction", "math", "coding", "reasoning")

Stats = dict[str, Any]
SCENARIOS: dict[str, tuple[float, Callable[[Stats], bool]]] = {
    # name: (server latency, when to kill)
    "early": (0.02, lambda s: s["requests"] >= 1),
    "mid-generation": (0.02, lambda s: s["by_kind"].get("generation", 0) >= 150),
    "mid-judging": (0.02, lambda s: s["by_kind"].get("judge", 0) >= 150),
    "late-judging": (0.02, lambda s: s["by_kind"].get("judge", 0) >= 420),
    "commit-burst": (0.0, lambda s: s["ok"] >= 500),
}


def config_for(directory: Path, fake: FakeServer) -> Path:
    models = [model(name, fake.base_url, concurrency=MODEL_CONCURRENCY) for name in MODELS]
    judge = {"name": "judge-a", "base_url": fake.base_url, "concurrency": JUDGE_CONCURRENCY}
    return write_config(directory, models=models, judge=judge)


def snapshot(store: Path, temperature_zero_only: bool = False) -> dict[tuple, tuple]:
    """Every answer and judgment: slot -> (response key, text, score)."""
    where = ""
    if temperature_zero_only:
        categories = ",".join(f"'{c}'" for c in TEMPERATURE_ZERO)
        where = f"WHERE q.category IN ({categories})"
    with sqlite3.connect(store) as db:
        answers = db.execute(
            "SELECT 'answer', a.model, a.question_id, a.turn, '', r.text, NULL FROM answers a "
            "JOIN responses r ON r.key = a.response_key "
            f"JOIN questions q ON q.question_id = a.question_id {where}"
        ).fetchall()
        judgments = db.execute(
            "SELECT 'judgment', j.model, j.question_id, j.turn, j.kind, r.text, j.score "
            "FROM judgments j JOIN responses r ON r.key = j.response_key "
            f"JOIN questions q ON q.question_id = j.question_id {where}"
        ).fetchall()
    return {row[:5]: row[5:] for row in [*answers, *judgments]}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple, tuple]:
    directory = tmp_path_factory.mktemp("uninterrupted")
    with FakeServer(sample_noise=True) as fake:
        config = config_for(directory, fake)
        process = start_engine("run", "-c", str(config))
        process.communicate(timeout=120)
        assert process.returncode == 0
    return snapshot(directory / "store.sqlite", temperature_zero_only=True)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_kill_9_then_resume_loses_nothing_committed(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    uninterrupted: dict[tuple, tuple],
    scenario: str,
) -> None:
    latency, moment = SCENARIOS[scenario]
    fake.configure(sample_noise=True, latency_median=latency, latency_sigma=0.5)
    config = config_for(tmp_path, fake)
    store = tmp_path / "store.sqlite"

    process = start_engine("run", "-c", str(config))
    wait_until(lambda: moment(fake.stats(arrivals=False)), interval=0.002)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL

    assert integrity(store) == "ok"
    before = snapshot(store)
    fake.configure(latency_median=0.0)
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out

    after = snapshot(store)
    assert len([k for k in after if k[0] == "answer"]) == 480
    assert len([k for k in after if k[0] == "judgment"]) == 480
    assert {k: after[k] for k in before} == before
    assert fake.stats(arrivals=False)["duplicates"] <= TOTAL_CONCURRENCY
    assert {k: v for k, v in after.items() if k in uninterrupted} == uninterrupted
    assert integrity(store) == "ok"
