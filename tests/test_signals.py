"""SIGINT / SIGTERM: stop sending, commit what arrived, say how to resume, exit 130 / 143."""

from __future__ import annotations

import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from tests.support.engineproc import ended, integrity, start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, write_config


def responses_stored(store: Path) -> int:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def run_status(store: Path) -> str:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT status FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0]


def started_run(tmp_path: Path, fake: FakeServer, latency: float):  # type: ignore[no-untyped-def]
    fake.configure(latency_median=latency)
    models = [model(name, fake.base_url, concurrency=4) for name in ("alpha", "beta")]
    judge = {"name": "judge-a", "base_url": fake.base_url, "concurrency": 4}
    config = write_config(tmp_path, models=models, judge=judge)
    process = start_engine("run", "-c", str(config))
    wait_until(lambda: fake.stats(arrivals=False)["ok"] >= 12)
    return config, process


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_gracefully_commits_what_arrived_and_says_how_to_resume(
    tmp_path: Path, fake: FakeServer, signum: int, code: int
) -> None:
    config, process = started_run(tmp_path, fake, latency=0.2)
    process.send_signal(signum)
    _, err = process.communicate(timeout=15)
    assert process.returncode == code, err
    assert f"resume with: mtbench run -c {config}" in err
    store = tmp_path / "store.sqlite"
    stats = fake.stats(arrivals=False)
    assert stats["in_flight"] == 0
    assert responses_stored(store) == stats["ok"]  # every answer the server gave is stored
    assert stats["ok"] < 640  # it really stopped early
    assert run_status(store) == "interrupted"
    assert integrity(store) == "ok"

    fake.configure(latency_median=0.0)
    resumed = start_engine("run", "-c", str(config))
    resumed.communicate(timeout=60)
    assert resumed.returncode == 0
    assert fake.stats(arrivals=False)["duplicates"] == 0


def test_a_second_ctrl_c_aborts_at_once_without_corrupting_the_store(
    tmp_path: Path, fake: FakeServer
) -> None:
    _, process = started_run(tmp_path, fake, latency=0.05)
    fake.configure(latency_median=30.0)  # what is sent from now on would take half a minute
    time.sleep(0.3)  # requests sent before that have finished; every slot now holds a slow one
    wait_until(lambda: fake.stats(arrivals=False)["in_flight"] >= 12)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=10)
    assert time.monotonic() - started < 3
    assert process.returncode == 130, err
    assert "aborting" in err
    store = tmp_path / "store.sqlite"
    assert integrity(store) == "ok"
    assert responses_stored(store) == fake.stats(arrivals=False)["ok"]
    assert run_status(store) == "interrupted"


def test_a_graceful_stop_aborts_what_is_still_in_flight_after_the_stop_grace(
    tmp_path: Path, fake: FakeServer
) -> None:
    """A scheduler's SIGTERM is followed by SIGKILL (Slurm: 30 s): requests that would take
    minutes are cancelled after MTBENCH_STOP_GRACE, and the run still ends cleanly."""
    # Every answer would take two minutes, from a server that has never answered: the stall
    # watchdog (which cuts a request far slower than the server's usual) has nothing to go by.
    fake.configure(latency_median=120.0)
    models = [model(name, fake.base_url, concurrency=4) for name in ("alpha", "beta")]
    config = write_config(tmp_path, models=models)
    process = start_engine("generate", "-c", str(config), env={"MTBENCH_STOP_GRACE": "1.5"})
    wait_until(lambda: fake.stats(arrivals=False)["in_flight"] >= 8)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = ended(process, timeout=30)
    assert time.monotonic() - started < 15
    assert process.returncode == 143, err
    assert "for up to 1.5 s" in err and "still in flight after 1.5 s" in err
    store = tmp_path / "store.sqlite"
    assert integrity(store) == "ok"
    assert responses_stored(store) == fake.stats(arrivals=False)["ok"]
    assert run_status(store) == "interrupted"


@pytest.mark.parametrize("grace", ["soon", "-1", "nan"])
def test_a_stop_grace_that_is_no_number_of_seconds_is_refused_before_anything_is_sent(
    tmp_path: Path, fake: FakeServer, grace: str
) -> None:
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)])
    process = start_engine("generate", "-c", str(config), env={"MTBENCH_STOP_GRACE": grace})
    _, err = ended(process, timeout=30)
    assert process.returncode == 2, err
    assert err.strip().splitlines() == [
        f"mtbench: error: MTBENCH_STOP_GRACE={grace!r} is not a number of seconds; give one "
        "such as 20, or inf to let a stop wait for every request in flight"
    ]
    assert fake.stats(arrivals=False)["ok"] == 0


def servers_recorded(store: Path) -> int:
    try:
        with sqlite3.connect(store) as db:
            return int(db.execute("SELECT COUNT(*) FROM servers").fetchone()[0])
    except sqlite3.OperationalError:  # not there yet, or not yet migrated
        return 0


# A server that takes its time to stop: SIGTERM ignored (as by a graceful shutdown that waits for
# requests still running), ready at once (or never), never answering a chat request.
LINGERING_SERVER = """
import http.server, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if sys.argv[2] == "never-ready":
    time.sleep(600)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"data": []}')
    def do_POST(self):
        time.sleep(600)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def test_an_aborted_stop_kills_a_served_model_that_lingers_instead_of_waiting_its_stop_timeout(
    tmp_path: Path,
) -> None:
    """The stop grace is over (or a second Ctrl-C): a server of the engine's own still up two
    seconds after its SIGTERM is killed. One that finishes its requests before it exits (as
    aiohttp's and uvicorn's graceful shutdowns do) held the engine 30 s more, past the SIGKILL a
    scheduler sends 30 s after its SIGTERM; a second Ctrl-C did not hurry it either, nor the
    grace one still starting (stopped as the run closed, after the grace could reach it)."""
    script = tmp_path / "lingering.py"
    script.write_text(LINGERING_SERVER)
    (tmp_path / "checkpoints" / "step-1").mkdir(parents=True)
    store = tmp_path / "store.sqlite"
    for second_signal, ready in ((False, "ready"), (True, "ready"), (False, "never-ready")):
        sweep = {
            "serve": f"{sys.executable} {script} {{port}} {ready} {{path}}",
            "checkpoints": "checkpoints/*",
        }
        config = write_config(tmp_path, models=[sweep], questions=[81, 101])
        env = {"MTBENCH_STOP_GRACE": "inf" if second_signal else "0.5"}
        process = start_engine("generate", "-c", str(config), env=env)
        wait_until(lambda: servers_recorded(store) == 1, timeout=30)
        time.sleep(2.0)  # its server ready (or still starting), its requests sent
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        if second_signal:
            time.sleep(0.5)
            process.send_signal(signal.SIGINT)
        _, err = ended(process, timeout=60)
        assert process.returncode == 143, err
        assert time.monotonic() - started < 10, err
        assert "ignored SIGTERM; killing its group" in err
        assert servers_recorded(store) == 0  # stopped, not left to the next command
        assert run_status(store) == "interrupted"
