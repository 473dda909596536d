"""No task dies unobserved: a bug in one job fails that job; a bug in the machinery stops the run
at once with one line; a broken progress display is noted and the run goes on; a signal at a
moment when no run is going still ends the command with one line and 130/143.

A bug cannot be provoked through real input (it would be fixed), so these tests plant one in the
engine's own code with monkeypatch; the server, the sockets and the store stay real.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.cli.progress_views import PlainView
from engine.endpoints.limits import RequestRate
from engine.run.jobs import GenerationJob
from engine.run.scheduler import Pipeline
from tests.support.engineproc import ended, integrity
from tests.support.fakeserver import FakeServer
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import model, mtbench, write_config

RUN_SECONDS = 60


def count(store: Path, sql: str) -> Any:
    with sqlite3.connect(store) as db:
        return db.execute(sql).fetchone()[0]


def timed_run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    started = time.monotonic()
    result = mtbench(capsys, *argv)
    assert time.monotonic() - started < RUN_SECONDS
    return result


def test_a_job_whose_request_cannot_be_built_fails_alone_as_internal(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build = GenerationJob.build_request

    def broken_for_q81(job: GenerationJob) -> Any:
        if job.question_id == 81 and job.turn == 1:
            raise KeyError("planted")
        return build(job)

    monkeypatch.setattr(GenerationJob, "build_request", broken_for_q81)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)])
    code, out, err = timed_run(capsys, "generate", "-c", str(config), "--quiet")
    assert code == 1, out + err
    assert "internal: 1" in out
    store = tmp_path / "store.sqlite"
    assert count(store, "SELECT COUNT(*) FROM answers") == 158
    with sqlite3.connect(store) as db:
        failures = db.execute(
            "SELECT job, error_class, message FROM failures ORDER BY job"
        ).fetchall()
    assert failures == [
        ("generate alpha q81 t1", "internal", "KeyError: 'planted'"),
        ("generate alpha q81 t2", "dependency", "needs alpha q81 t1, which has no answer"),
    ]


def test_a_broken_commit_callback_stops_the_run_at_once_with_one_line_and_keeps_what_arrived(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.configure(latency_median=0.02)
    committed = Pipeline._sent_committed
    calls = []

    def breaks_on_the_twentieth(self: Pipeline, *args: Any) -> None:
        calls.append(1)
        if len(calls) == 20:
            raise RuntimeError("planted")
        committed(self, *args)

    monkeypatch.setattr(Pipeline, "_sent_committed", breaks_on_the_twentieth)
    models = [model(name, fake.base_url, concurrency=4) for name in ("alpha", "beta")]
    config = write_config(tmp_path, models=models)
    code, out, err = timed_run(capsys, "generate", "-c", str(config), "--quiet")
    assert code == 1, out + err
    (line,) = err.splitlines()
    assert line.startswith("mtbench: error: internal error in store writer: RuntimeError: planted")
    assert "rerun the same command to resume" in line
    store = tmp_path / "store.sqlite"
    received = count(store, "SELECT COUNT(*) FROM responses")
    assert 20 <= received < 320  # it stopped early, and kept what had come back
    assert count(store, "SELECT status FROM runs") == "failed"
    assert integrity(store) == "ok"

    monkeypatch.undo()
    sent_before = fake.stats(arrivals=False)["ok"]
    code, out, err = timed_run(capsys, "generate", "-c", str(config), "--quiet")
    assert code == 0, out + err
    assert count(store, "SELECT COUNT(*) FROM answers") == 320
    assert fake.stats(arrivals=False)["ok"] - sent_before == 320 - received


def test_a_dispatcher_that_dies_stops_the_run_with_one_line(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken_acquire(self: RequestRate) -> None:
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(RequestRate, "acquire", broken_acquire)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)])
    code, out, err = timed_run(capsys, "generate", "-c", str(config), "--quiet")
    assert code == 1, out + err
    (line,) = err.splitlines()
    assert line.startswith("mtbench: error: internal error in dispatch:alpha: ZeroDivisionError")
    assert count(tmp_path / "store.sqlite", "SELECT status FROM runs") == "failed"


def test_a_failing_progress_display_is_noted_once_and_the_run_completes(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_show(self: PlainView, snapshots: list) -> None:
        raise BrokenPipeError("planted")

    monkeypatch.setattr(PlainView, "show", broken_show)
    fake.configure(latency_median=0.01)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url, concurrency=4)])
    argv = ("generate", "-c", str(config), "--progress", "plain", "--progress-interval", "0.1")
    code, out, err = timed_run(capsys, *argv)
    assert code == 0, out + err
    assert err.count("progress display failed") == 1
    assert "the run goes on without it" in err
    assert count(tmp_path / "store.sqlite", "SELECT COUNT(*) FROM answers") == 160


def open_writer_when_read(fifo: Path) -> int:
    """The FIFO's write end, once a reader has opened it (bounded wait)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody reads it yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_before_the_run_starts_ends_the_command_with_one_line(
    tmp_path: Path, fake: FakeServer, signum: int, code: int
) -> None:
    """The engine is stuck reading a question file that never ends (a FIFO nobody writes)."""
    data = tmp_path / "data"
    (data / "mt_bench").mkdir(parents=True)
    os.symlink(MTBENCH_DATA / "judge_prompts.jsonl", data / "judge_prompts.jsonl")
    questions = data / "mt_bench" / "question.jsonl"
    os.mkfifo(questions)
    store = tmp_path / "store.sqlite"
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], data=str(data))
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "generate", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = open_writer_when_read(questions)  # the engine now waits for lines that never come
    try:
        time.sleep(0.2)
        process.send_signal(signum)
        _, err = ended(process, timeout=15)
    finally:
        os.close(writer)
    assert process.returncode == code, err
    (line,) = err.splitlines()
    name = signal.Signals(signum).name
    assert line == f"mtbench: interrupted by {name}"
    assert not store.exists()
    assert fake.stats(arrivals=False)["requests"] == 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_the_event_loop_waits_outside_a_run_ends_the_command_with_one_line(
    tmp_path: Path, signum: int, code: int
) -> None:
    """`data fetch` from a mirror that accepts the connection and never answers."""
    with socket.socket() as silent:
        silent.settimeout(15)
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        environment = {
            **os.environ,
            "MTBENCH_DATA_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "data", "fetch", "--dest", str(tmp_path / "data")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        connection, _ = silent.accept()  # the engine has sent its request and waits
        with connection:
            started = time.monotonic()
            process.send_signal(signum)
            _, err = ended(process, timeout=15)
    assert time.monotonic() - started < 5
    assert process.returncode == code, err
    (line,) = err.splitlines()
    assert line.startswith(f"mtbench: interrupted by {signal.Signals(signum).name}")
