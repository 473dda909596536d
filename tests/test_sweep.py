"""Checkpoint sweeps: the engine starts each checkpoint's server in turn and judges as it goes."""

from __future__ import annotations

import itertools
import shlex
import sqlite3
from pathlib import Path

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.llamacpp import process_running
from tests.support.runconfig import mtbench, write_config
from tests.support.served_fake import COMMAND as SERVED_FAKE
from tests.support.served_fake import checkpoint_folder


def sweep_config(tmp_path: Path, fake: FakeServer, checkpoints: list[str]) -> tuple[Path, Path]:
    checkpoint_folder(tmp_path, checkpoints)
    events = tmp_path / "events.jsonl"
    serve = (
        f"{SERVED_FAKE} {shlex.quote(str(events))} {{path}} --port {{port}} --latency-median 0.005"
    )
    model = {"serve": serve, "checkpoints": "checkpoints/*.bin", "concurrency": 8}
    judge = {"name": "judge-a", "base_url": fake.base_url, "concurrency": 2}
    return write_config(tmp_path, models=[model], judge=judge, server_slots=1), events


def server_intervals(events: Path) -> dict[str, tuple[float, float]]:
    starts: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    for line in events.read_bytes().splitlines():
        event = orjson.loads(line)
        label = Path(event["checkpoint"]).stem
        if event["event"] == "start":
            starts[label] = event["t"]
        else:
            intervals[label] = (starts[label], event["t"])
    return intervals


def test_three_checkpoints_one_slot_run_in_turn_and_judging_overlaps_the_next(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(latency_median=0.02)
    config, events = sweep_config(tmp_path, fake, ["step-100", "step-200", "step-300"])
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out

    intervals = server_intervals(events)
    assert list(intervals) == ["step-100", "step-200", "step-300"]  # natural order
    spans = list(intervals.values())
    for (_, first_stop), (second_start, _) in itertools.pairwise(spans):
        assert first_stop <= second_start  # never two servers at once

    store = tmp_path / "store.sqlite"
    with sqlite3.connect(store) as db:
        answered = dict(db.execute("SELECT model, COUNT(*) FROM answers GROUP BY model"))
        judged_times = [
            t for (t,) in db.execute("SELECT created FROM judgments WHERE model = 'step-100'")
        ]
    assert answered == {"step-100": 160, "step-200": 160, "step-300": 160}
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM servers").fetchone()[0] == 0  # each one stopped
    start_200, stop_200 = intervals["step-200"]
    assert any(start_200 < t < stop_200 for t in judged_times)  # judged while step-200 generated

    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 0
    assert len(server_intervals(events)) == 3  # everything cached: no server started again


def test_a_checkpoint_whose_server_fails_is_reported_and_the_sweep_goes_on(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config, events = sweep_config(tmp_path, fake, ["step-100", "step-200-broken", "step-300"])
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 1
    assert "server: " in out
    assert "bad magic number" in out  # the server's own last words
    assert "exited with code 3 before ready" in out
    assert list(server_intervals(events)) == ["step-100", "step-300"]
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        answered = dict(db.execute("SELECT model, COUNT(*) FROM answers GROUP BY model"))
    assert answered == {"step-100": 160, "step-300": 160}


def test_a_run_returns_only_once_the_last_models_server_has_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `generate` has no judge: the served model's last answer ends the run while its server stops.
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step-100.bin").write_bytes(b"weights")
    events, leader_file = tmp_path / "events.jsonl", tmp_path / "leader.pid"
    script = tmp_path / "slow_to_stop.sh"
    script.write_text(
        f"echo $$ > {shlex.quote(str(leader_file))}\n"
        "trap 'sleep 1; exit 0' TERM\n"
        f"{SERVED_FAKE} "
        f'{shlex.quote(str(events))} "$1" --port "$2" --latency-median 0.005 &\n'
        "wait\n"
    )
    model = {
        "serve": f"sh {shlex.quote(str(script))} {{path}} {{port}}",
        "checkpoints": "checkpoints/*.bin",
    }
    config = write_config(tmp_path, models=[model], questions=[81])
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out
    assert not process_running(int(leader_file.read_text()))
