"""A 429 pauses its endpoint for the Retry-After it carries, however busy the endpoint was.

The dispatcher waits for the pause, then for a concurrency slot. When every slot is busy, the 429
arrives while it waits for the slot; the slot that answer frees must not let a request go out
before the pause ends, least of all the refused one, which is queued first again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

RETRY_AFTER = 1.0
EARLY = 0.95 * RETRY_AFTER  # timer slack aside, nothing may arrive sooner


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_refused_request_waits_out_the_429_pause_even_with_every_slot_busy(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], concurrency: int
) -> None:
    fake.configure(latency_median=0.05, fault_429=0.25, fault_429_retry_after=RETRY_AFTER, seed=3)
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url, concurrency=concurrency)],
        questions=[81, 82, 83, 84, 85, 86],
    )
    code, out, _ = mtbench(capsys, "generate", "-c", str(config), "--quiet")
    assert code == 0, out
    arrivals = [
        (t, status, digest) for t, _, _, status, _, digest in fake.stats(full=True)["arrivals"]
    ]
    refused = [(t, digest) for t, status, digest in arrivals if status == 429]
    assert refused, "the seed must give some 429s"
    for when, digest in refused:
        again = [t - when for t, _, d in arrivals if d == digest and t > when]
        assert again and min(again) >= EARLY, f"sent again {min(again):.3f}s after its 429"
    if concurrency == 1:  # nothing else was in flight: nothing at all may go out meanwhile
        for when, _ in refused:
            assert not [t for t, _, _ in arrivals if when < t < when + EARLY]
