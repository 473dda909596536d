"""Watch mode: checkpoints scored as they land, each once, only when complete (issue 14, item 1).

The watcher runs as `mtbench run --watch` in a subprocess against the fake server, serving each
checkpoint with `tests.support.served_fake` (which logs every server start, and fails at start-up
for a path containing "broken"), while the test writes checkpoints into a temp dir over time.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import orjson
import pytest

from tests.support.engineproc import ended, start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import mtbench, write_config
from tests.support.served_fake import COMMAND as SERVED_FAKE

SETTLE = 1.0


def watch_config(tmp_path: Path, fake: FakeServer, **sweep: object) -> tuple[Path, Path]:
    events = tmp_path / "events.jsonl"
    serve = (
        f"{SERVED_FAKE} {shlex.quote(str(events))} {{path}} --port {{port}} --latency-median 0.005"
    )
    model = {
        "serve": serve,
        "checkpoints": "checkpoints/step-*",
        "concurrency": 4,
        "ready_marker": "config.json",
        "settle": SETTLE,
        "max_checkpoint_attempts": 2,
        **sweep,
    }
    judge = {"name": "judge-w", "base_url": fake.base_url, "concurrency": 4}
    config = write_config(tmp_path, models=[model], judge=judge, questions=[81, 101])
    return config, events


def write_checkpoint(folder: Path, *, marker: bool = True) -> None:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights" * 100)
    if marker:
        (folder / "config.json").write_text("{}")


def server_starts(events: Path) -> list[tuple[str, float]]:
    if not events.exists():
        return []
    lines = [orjson.loads(line) for line in events.read_bytes().splitlines()]
    return [(Path(e["checkpoint"]).name, e["t"]) for e in lines if e["event"] == "start"]


def stored(store: Path, query: str) -> dict[str, int]:
    with sqlite3.connect(store) as db:
        return dict(db.execute(query).fetchall())


def test_the_watcher_scores_each_complete_checkpoint_once_waits_and_retries_then_reports(
    tmp_path: Path, fake: FakeServer
) -> None:
    config, events = watch_config(tmp_path, fake)
    checkpoints = tmp_path / "checkpoints"
    write_checkpoint(checkpoints / "step-100")
    watcher = start_engine(
        "run", "-c", str(config), "--watch", "--poll", "0.2", "--until-idle", "5",
        "--progress", "plain",
    )  # fmt: skip
    try:
        wait_until(lambda: server_starts(events), timeout=60)
        # Written slowly: the marker first, the weights growing for 1.5 s after it.
        slow = checkpoints / "step-200"
        write_checkpoint(slow)
        for _ in range(5):
            time.sleep(0.3)
            with (slow / "model.safetensors").open("ab") as shard:
                shard.write(b"more weights")
        last_write = time.time()
        write_checkpoint(checkpoints / "step-300", marker=False)  # never complete
        write_checkpoint(checkpoints / "step-400-broken")  # its server exits at start-up
        out, err = ended(watcher, timeout=120)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 1, err  # step-400-broken failed for good

    starts = dict(server_starts(events))
    assert sorted(starts) == ["step-100", "step-200"]  # one start each: scored exactly once
    assert len(server_starts(events)) == 2
    assert starts["step-200"] >= last_write + SETTLE - 0.05  # not before its files settled
    store = tmp_path / "store.sqlite"
    answers = "SELECT model, COUNT(*) FROM answers GROUP BY model"
    judgments = "SELECT model, COUNT(*) FROM judgments GROUP BY model"
    assert stored(store, answers) == {"step-100": 4, "step-200": 4}
    assert stored(store, judgments) == {"step-100": 4, "step-200": 4}
    assert fake.stats()["by_kind"]["judge"] == 8  # every judgment asked for once
    failed_runs = "SELECT model, COUNT(DISTINCT run_id) FROM failures GROUP BY model"
    assert stored(store, failed_runs) == {"step-400-broken": 2}  # tried, retried, given up

    assert "step-300 (no config.json yet)" in err  # progress says what it waits for
    assert "settling" in err
    rows = [line.split() for line in out.splitlines()]
    table = {row[0]: row[1:3] for row in rows if row and row[0].startswith("step-") and row[1:2]}
    table.pop("step-400-broken:")  # the line giving its reason
    assert table == {
        "step-100": ["scored", "1"],
        "step-200": ["scored", "1"],
        "step-300": ["waiting", "0"],
        "step-400-broken": ["failed", "2"],
    }
    assert "step-400-broken: server: " in out
    assert "exited with code 3 before ready" in out
    assert "bad magic number" in out  # the server's own last words

    # Restarted without the broken checkpoint: nothing is sent again, and every one is fine.
    for path in (checkpoints / "step-400-broken").iterdir():
        path.unlink()
    (checkpoints / "step-400-broken").rmdir()
    again = start_engine(
        "run", "-c", str(config), "--watch", "--poll", "0.2", "--until-idle", "1.5", "--json",
    )  # fmt: skip
    out, err = ended(again, timeout=60)
    assert again.returncode == 0, err
    summary = orjson.loads(out)
    outcomes = {c["checkpoint"]: c["outcome"] for c in summary["checkpoints"]}
    assert outcomes == {"step-100": "scored", "step-200": "scored", "step-300": "waiting"}
    assert len(server_starts(events)) == 2  # all cached: no server started
    assert fake.stats()["by_kind"]["judge"] == 8
    waiting = [orjson.loads(line)["watch"] for line in err.splitlines() if '"watch"' in line]
    assert {"checkpoint": "step-300", "reason": "no config.json yet"} in waiting[-1]["waiting"]


def test_a_stop_file_ends_the_watcher_with_exit_0_and_a_deleted_checkpoint_is_gone(
    tmp_path: Path, fake: FakeServer
) -> None:
    config, events = watch_config(tmp_path, fake, settle=0)
    (tmp_path / "checkpoints").mkdir()  # nothing to watch yet: the watcher waits
    stop = tmp_path / "STOP"
    watcher = start_engine(
        "run", "-c", str(config), "--watch", "--poll", "0.1", "--stop-file", str(stop),
    )  # fmt: skip
    try:
        write_checkpoint(tmp_path / "checkpoints" / "step-2", marker=False)
        write_checkpoint(tmp_path / "checkpoints" / "step-1")
        wait_until(lambda: server_starts(events), timeout=60)
        wait_until(lambda: "step-1" in stored_models(tmp_path / "store.sqlite"), timeout=60)
        shutil.rmtree(tmp_path / "checkpoints" / "step-2")  # a trainer deleting an old one
        time.sleep(0.5)
        stop.touch()
        out, err = ended(watcher, timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, err
    assert "stop file" in out
    outcomes = {line.split()[0]: line.split()[1] for line in out.splitlines() if "step-" in line}
    assert outcomes == {"step-1": "scored", "step-2": "gone"}
    assert "no longer matches the checkpoints glob" in out


def stored_models(store: Path) -> set[str]:
    if not store.exists():
        return set()
    with sqlite3.connect(store) as db:
        return {model for (model,) in db.execute("SELECT DISTINCT model FROM judgments")}


def test_watch_flags_are_refused_without_watch_and_watch_without_a_sweep(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = write_config(
        tmp_path, models=[{"name": "m", "base_url": fake.base_url}], judge={"name": "j"}
    )
    code, _, err = mtbench(capsys, "run", "-c", str(plain), "--poll", "5")
    assert code == 2
    assert "--poll is for watch mode; add --watch or remove --poll" in err
    code, _, err = mtbench(capsys, "run", "-c", str(plain), "--watch")
    assert code == 2
    assert "--watch needs a [[model]] with 'checkpoints'" in err
    code, _, err = mtbench(capsys, "run", "-c", str(plain), "--watch", "--until-idle", "soon")
    assert code == 2
    assert "expected a duration such as 90, 90s, 10m or 2h" in err
    assert not (tmp_path / "store.sqlite").exists()


def test_sigterm_ends_a_waiting_watcher_with_143_and_sigint_a_running_one_with_130(
    tmp_path: Path, fake: FakeServer
) -> None:
    config, events = watch_config(tmp_path, fake, settle=0)
    (tmp_path / "checkpoints").mkdir()
    waiting = start_engine("run", "-c", str(config), "--watch", "--poll", "0.1")
    time.sleep(1.5)  # importing, then polling an empty folder
    waiting.send_signal(signal.SIGTERM)
    _, err = ended(waiting, timeout=30)
    assert waiting.returncode == 143, err
    assert "interrupted by SIGTERM" in err

    fake.configure(latency_median=0.5)  # the judge is slow: the run is still going
    write_checkpoint(tmp_path / "checkpoints" / "step-1")
    running = start_engine("run", "-c", str(config), "--watch", "--poll", "0.1")
    wait_until(lambda: server_starts(events), timeout=60)
    running.send_signal(signal.SIGINT)
    _, err = ended(running, timeout=60)
    assert running.returncode == 130, err
    assert "resume with: mtbench run -c" in err  # stopped as a run stops
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        status = db.execute("SELECT status FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert status == "interrupted"
