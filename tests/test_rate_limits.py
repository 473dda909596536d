"""Pacing against a rate-limited server: no failures, no window over the limit, 429s absorbed."""

from __future__ import annotations

import sqlite3
import time
from bisect import bisect_left
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

# The server scales "per minute" to a short window so the test takes seconds, not minutes:
# rpm 1200 over a 3 s window allows 60 requests in any 3 s.
RPM = 1200
WINDOW = 3.0


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(i + 1 - bisect_left(times, t - window + 1e-9, 0, i + 1) for i, t in enumerate(times))


def failed_jobs(store: Path) -> int:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT COUNT(*) FROM failures").fetchone()[0]


def test_engine_rpm_keeps_every_window_under_the_server_limit(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(rpm=RPM, rate_window=WINDOW, latency_median=0.01)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url, rpm=RPM, concurrency=64)])
    started = time.monotonic()
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    elapsed = time.monotonic() - started
    assert code == 0, out
    stats = fake.stats()
    arrivals = [t for t, *_ in stats["arrivals"]]
    assert len(arrivals) == 160
    assert max_in_window(arrivals, WINDOW) <= RPM * WINDOW / 60
    assert stats["rate_limited"] == 0
    assert elapsed >= (160 - RPM / 60) / (RPM / 60)  # the limiter really paced the run
    assert failed_jobs(tmp_path / "store.sqlite") == 0


def test_429s_from_a_stricter_server_are_absorbed(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The engine thinks it may send 3600/min; the server allows 1200/min and answers 429."""
    fake.configure(rpm=RPM, rate_window=WINDOW)
    config = write_config(
        tmp_path, models=[model("alpha", fake.base_url, rpm=3 * RPM, concurrency=64)]
    )
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out
    stats = fake.stats(arrivals=False)
    assert stats["rate_limited"] > 0
    assert stats["ok"] == 160
    assert failed_jobs(tmp_path / "store.sqlite") == 0
