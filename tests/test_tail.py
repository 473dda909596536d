"""Hung requests cost seconds, not a timeout, with default settings; slow but healthy ones are
never cut; a 429's Retry-After is capped; a pause shows in progress. Real sockets throughout."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from engine.endpoints.tail import HedgeBudget, SilenceTracker, TailPolicy
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

ANSWERS_PER_MODEL = 160


def count(store: Path, sql: str) -> int:
    with sqlite3.connect(store) as db:
        return int(db.execute(sql).fetchone()[0])


def timed_generate(
    capsys: pytest.CaptureFixture[str], config: Path, *extra: str
) -> tuple[int, str, str, float]:
    started = time.monotonic()
    code, out, err = mtbench(capsys, "generate", "-c", str(config), *extra)
    return code, out, err, time.monotonic() - started


@pytest.mark.parametrize("stream", [False, True])
def test_hung_requests_get_a_twin_and_cost_seconds_with_default_settings(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], stream: bool
) -> None:
    fake.configure(latency_median=0.03, latency_sigma=0.3, fault_hang=0.03, seed=3)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url, stream=stream)])
    code, out, _, wall = timed_generate(capsys, config)
    assert code == 0, out
    stats = fake.stats(arrivals=False)
    hangs = stats["faults"]["hang"]
    assert hangs >= 2
    assert wall < 15  # the default timeout is 600 s: a hang held for it would show
    assert count(tmp_path / "store.sqlite", "SELECT COUNT(*) FROM answers") == ANSWERS_PER_MODEL
    assert stats["ok"] == ANSWERS_PER_MODEL
    # every hung request was given up (its twin answered); no healthy one was
    assert stats["given_up"] == {"hang": hangs}


@pytest.mark.parametrize("stream", [False, True])
def test_slow_answers_that_keep_sending_bytes_are_never_cut(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], stream: bool
) -> None:
    # 10% of answers take 40x the median (~2 s), far past the learned twin threshold (~1 s),
    # but bytes keep coming all along
    fake.configure(latency_median=0.05, fault_slow=0.1, slow_factor=40, seed=5)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url, stream=stream)])
    code, out, _, _ = timed_generate(capsys, config)
    assert code == 0, out
    stats = fake.stats(arrivals=False)
    assert stats["faults"]["slow"] >= 5
    assert stats["given_up"] == {}
    assert stats["requests"] == ANSWERS_PER_MODEL  # no twins either


def test_with_hedging_off_a_stalled_request_is_cut_and_retried(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(latency_median=0.02, fault_hang=0.05, seed=11)
    config = write_config(
        tmp_path, models=[model("alpha", fake.base_url, hedge_after=0, stall_timeout=0.4)]
    )
    code, out, _, wall = timed_generate(capsys, config)
    assert code == 0, out
    stats = fake.stats(arrivals=False)
    assert stats["faults"]["hang"] >= 2
    assert stats["given_up"] == {"hang": stats["faults"]["hang"]}
    assert stats["ok"] == ANSWERS_PER_MODEL
    assert wall < 20


def test_an_endpoint_that_accepts_but_never_answers_is_failed_after_a_few_stalls(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(fault_hang=1.0)
    config = write_config(
        tmp_path, models=[model("stuck", fake.base_url, concurrency=2, stall_timeout=0.3)]
    )
    code, out, _, wall = timed_generate(capsys, config)
    assert code == 1
    assert wall < 10
    assert out.count("is the server stuck? check its logs") == 1
    assert "unreachable: 80" in out
    # a request is cut, then again after twice as long; while its retry backs off (under 0.5 s)
    # its slot takes the next requests: a few per slot, not one per job
    assert fake.stats(arrivals=False)["requests"] <= 4 * 2


def test_a_retry_after_of_a_day_is_capped_at_max_retry_after(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.configure(fault_429=0.05, fault_429_retry_after=86400, seed=2)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url, max_retry_after=0.3)])
    code, out, _, wall = timed_generate(capsys, config, "--quiet")
    assert code == 0, out
    assert fake.stats(arrivals=False)["faults"]["429"] >= 2
    assert wall < 20
    assert caplog.text.count("asked to wait 86400s before retrying; waiting 0.3s instead") == 1


def test_progress_says_when_a_paused_endpoint_resumes(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(latency_median=0.01, fault_429=0.2, fault_429_retry_after=1.0, seed=4)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], questions=[81, 82])
    code, out, err, _ = timed_generate(
        capsys, config, "--progress", "plain", "--progress-interval", "0.1"
    )
    assert code == 0, out
    assert "progress alpha: paused until " in err
    assert "(rate limited: the server asked to wait)" in err


def test_twins_wait_for_the_endpoints_own_latencies_and_respect_settings() -> None:
    tracker = SilenceTracker()
    learned = TailPolicy()
    assert learned.hedge_threshold(tracker) is None  # nothing known yet: no twins
    assert learned.stall_threshold(tracker) == 180.0
    for latency in [0.1] * 90 + [0.4] * 10:
        tracker.record(latency)
    assert learned.hedge_threshold(tracker) == 1.0  # 2 x p95 (0.8) is under the floor
    assert learned.stall_threshold(tracker) == 60.0
    for latency in [20.0] * 100:
        tracker.record(latency)
    assert learned.hedge_threshold(tracker) == 40.0
    assert learned.stall_threshold(tracker) == 200.0
    assert TailPolicy(hedge_after=0).hedge_threshold(tracker) is None
    assert TailPolicy(hedge_after=5, stall_timeout=9).stall_threshold(tracker) == 9
    tracker.record(float("nan"))
    assert len(tracker) == 200
    thinker = TailPolicy(thinks=True)  # silent while it thinks: minutes are no hang
    assert thinker.stall_threshold(SilenceTracker()) == 600.0
    assert thinker.stall_threshold(tracker) == 300.0  # ten times p99 (20 s) under its floor


def test_the_twin_budget_is_a_quarter_of_the_concurrency_then_earned_by_successes() -> None:
    budget = HedgeBudget(concurrency=16)
    spent = 0
    while budget.spend():
        spent += 1
    assert spent == 4
    for _ in range(9):
        budget.earn()
    assert not budget.spend()  # 9 successes earn 0.9 twins
    budget.earn()
    assert budget.spend()
    for _ in range(1000):
        budget.earn()
    assert sum(budget.spend() for _ in range(20)) == 8  # saved up to twice the start
