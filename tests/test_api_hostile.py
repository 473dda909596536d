"""The public API used as a hostile training script or notebook would use it: interrupted where a
loop already runs, cancelled, one `RunControl` for two runs, values of the wrong type, overrides
that are falsy, a progress view asking to be shown without pause. Each ends with an
`engine.InputError` before the store is touched, or with the run stopped and its store free.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import engine
from tests.support.fakeserver import REPOSITORY, FakeServer
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import mtbench, write_config

# A notebook: an event loop runs in the main thread, SIGINT has Python's default handler, and a
# cell calls `engine.evaluate`, which runs the evaluation in a thread of its own. The "interrupt"
# comes once the first answers are committed.
NOTEBOOK_CELL = """
import asyncio, os, signal, sqlite3, sys, threading, time
import engine

base_url, store = sys.argv[1], sys.argv[2]
model = engine.Model(name="alpha", base_url=base_url, concurrency=2)
judge = engine.Judge(name="judge", base_url=base_url)

class InterruptAfterSome:
    interval = 0.05
    sent = False
    def show(self, snapshots):
        if not self.sent and any(s.role == "phase" and s.finished >= 4 for s in snapshots):
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
    def close(self, snapshots):
        pass

async def cell():
    return engine.evaluate([model], judge=judge, store=store, progress=InterruptAfterSome())

try:
    asyncio.new_event_loop().run_until_complete(cell())
except KeyboardInterrupt:
    for thread in threading.enumerate():  # a closed connection's thread may be a moment from its
        if thread is not threading.main_thread():  # end; one still going in 5 s was left running
            thread.join(timeout=5)
    print("interrupted", [t.name for t in threading.enumerate()])
with sqlite3.connect(store) as db:
    print("runs", db.execute("SELECT status FROM runs").fetchall())
again = engine.evaluate([model], judge=judge, store=store, questions=[81])
print("again", again.ok)
"""


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MTBENCH_DATA", str(MTBENCH_DATA))
    return tmp_path


def run_statuses(store: Path) -> list[str]:
    with sqlite3.connect(store) as db:
        return [row[0] for row in db.execute("SELECT status FROM runs ORDER BY id")]


def test_an_interrupt_in_a_notebook_stops_the_evaluation_it_waits_for(
    in_tmp: Path, fake: FakeServer
) -> None:
    fake.configure(latency_median=0.05)
    script = in_tmp / "cell.py"
    script.write_text(NOTEBOOK_CELL)
    store = in_tmp / "nb.sqlite"
    done = subprocess.run(
        [sys.executable, str(script), fake.base_url, str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPOSITORY,
    )
    assert done.returncode == 0, done.stderr
    interrupted, runs, again = done.stdout.splitlines()
    # nothing of the evaluation is left going in the background, holding the store's lock
    assert interrupted == "interrupted ['MainThread']"
    assert runs == "runs [('interrupted',)]"
    assert again == "again True"
    sent = fake.stats()["requests"]
    assert sent < 100  # the first run was stopped after a few of its 320 requests
    assert done.stderr == ""


def test_a_cancelled_evaluation_frees_its_store_and_is_recorded_as_interrupted(
    in_tmp: Path, fake: FakeServer
) -> None:
    fake.configure(latency_median=0.05)
    alpha = engine.Model(name="alpha", base_url=fake.base_url, concurrency=2)

    async def script() -> engine.RunResult:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(
                engine.evaluate_async([alpha], command="generate", store="c.sqlite"), 0.5
            )
        return await engine.evaluate_async(
            [alpha], command="generate", store="c.sqlite", questions=[81]
        )

    assert asyncio.run(script()).ok
    assert run_statuses(in_tmp / "c.sqlite") == ["interrupted", "ok"]


def test_one_run_control_given_to_two_evaluations_stops_both(
    in_tmp: Path, fake: FakeServer
) -> None:
    fake.configure(latency_median=0.05)
    control = engine.RunControl()
    alpha = engine.Model(name="alpha", base_url=fake.base_url, concurrency=2)

    async def two_at_once() -> list[BaseException | engine.RunResult]:
        async def stop_soon() -> None:
            await asyncio.sleep(0.5)
            control.stop()

        first, second, _ = await asyncio.gather(
            engine.evaluate_async([alpha], command="generate", store="a.sqlite", control=control),
            engine.evaluate_async([alpha], command="generate", store="b.sqlite", control=control),
            stop_soon(),
            return_exceptions=True,
        )
        return [first, second]

    outcomes = asyncio.run(asyncio.wait_for(two_at_once(), 60))
    assert [type(outcome) for outcome in outcomes] == [engine.RunStopped, engine.RunStopped]
    for store in ("a.sqlite", "b.sqlite"):
        with sqlite3.connect(in_tmp / store) as db:
            answers = db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        assert answers < 100, store  # stopped early, not run to its 160 answers


URL = "http://127.0.0.1:9/v1"


class View:
    """A progress view whose interval the test sets."""

    def __init__(self, interval: Any) -> None:
        self.interval = interval

    def show(self, snapshots: list[engine.Snapshot]) -> None:
        pass

    def close(self, snapshots: list[engine.Snapshot]) -> None:
        pass


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"judge": "judge"}, "judge = 'judge': expected an engine.Judge; scores() takes a judge's"),
        ({"judge": engine.Model(name="beta", base_url=URL)}, "judge = ModelConfig(name='beta'"),
        ({"models": [{"name": "alpha"}]}, "model #1 = {'name': 'alpha'}: expected an engine.Model"),
        ({"models": [engine.Judge(name="judge")]}, "model #1 = JudgeConfig(name='judge'"),
        ({"models": None}, "None: expected a config file's path, an engine.Model or a list"),
        ({"server_slots": 0}, "key 'server_slots' = 0: expected an integer from 1 to 1024"),
        ({"bench": ""}, "key 'bench' = '': expected a bench name"),
        ({"store": ""}, "key 'store' = '': expected a path"),
        ({"store": 5}, "key 'store' = 5: expected a path"),
        ({"questions": 81}, "key 'questions' = 81: expected a non-empty list of question ids"),
        ({"questions": "81"}, "key 'questions' = '81': expected a non-empty list of question"),
        ({"control": object()}, "control = <object object at"),
        ({"progress": View(0)}, "progress.interval = 0: expected seconds from 0.01 to 86400"),
        ({"progress": View(-1.0)}, "progress.interval = -1.0: expected seconds from 0.01"),
        ({"progress": View(1e-9)}, "progress.interval = 1e-09: expected seconds from 0.01"),
        ({"progress": View(float("nan"))}, "progress.interval = nan: expected seconds from"),
        ({"progress": View("5")}, "progress.interval = '5': expected seconds from 0.01"),
        ({"progress": object()}, "progress.interval = None: expected seconds from 0.01"),
    ],
)
def test_a_value_of_the_wrong_kind_is_an_input_error_before_the_store_is_touched(
    in_tmp: Path, arguments: dict[str, Any], words: str
) -> None:
    given: dict[str, Any] = {
        "models": [engine.Model(name="alpha", base_url=URL)],
        "judge": engine.Judge(name="judge", base_url=URL),
        "store": "s.sqlite",
        "questions": [81],
        **arguments,
    }
    with pytest.raises(engine.InputError) as refused:
        engine.evaluate(given.pop("models"), **given)
    assert str(refused.value).startswith("engine.evaluate: ")
    assert words in str(refused.value)
    assert list(in_tmp.iterdir()) == []


def test_a_config_files_values_are_overridden_by_falsy_arguments_checked_as_toml_keys(
    in_tmp: Path,
) -> None:
    config = in_tmp / "c.toml"
    config.write_text('store = "c.sqlite"\nserver_slots = 2\n[[model]]\nname = "alpha"\n')
    with pytest.raises(engine.ConfigError, match="'server_slots' = 0: expected an integer"):
        engine.evaluate(config, command="plan", server_slots=0)
    with pytest.raises(engine.ConfigError, match="'store' = '': expected a path"):
        engine.evaluate(config, command="plan", store="")


@pytest.mark.parametrize(
    "extra_body",
    [{1: 2}, {"tags": {"a", "b"}}, {"raw": b"bytes"}, {"when": object()}, {"x": (float("nan"),)}],
)
def test_an_extra_body_json_cannot_carry_is_refused_by_engine_model(
    extra_body: dict[Any, Any],
) -> None:
    with pytest.raises(engine.ConfigError, match=r"^engine.Model key 'extra_body' = .*JSON"):
        engine.Model(name="alpha", extra_body=extra_body)


FAILING_VIEW = """
import logging, sys
import engine

if sys.argv[3] == "logging":
    logging.basicConfig(level=logging.WARNING)

class Broken:
    interval = 0.05
    def show(self, snapshots):
        raise ValueError("the dashboard is down")
    def close(self, snapshots):
        raise ValueError("the dashboard is down")

model = engine.Model(name="alpha", base_url=sys.argv[1])
result = engine.evaluate(
    [model], command="generate", store=sys.argv[2], questions=[81], progress=Broken()
)
assert result.ok
"""


@pytest.mark.parametrize("logging_set_up", [False, True])
def test_the_api_prints_nothing_its_warnings_go_only_to_the_callers_logging(
    in_tmp: Path, fake: FakeServer, logging_set_up: bool
) -> None:
    script = in_tmp / "script.py"
    script.write_text(FAILING_VIEW)
    how = "logging" if logging_set_up else "plain"
    argv = [sys.executable, str(script), fake.base_url, str(in_tmp / f"{how}.sqlite"), how]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPOSITORY)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    if logging_set_up:
        assert "progress display failed (ValueError: the dashboard is down)" in done.stderr
    else:
        assert done.stderr == ""


def test_scores_of_a_path_with_a_nul_is_a_store_error(in_tmp: Path) -> None:
    with pytest.raises(engine.StoreError, match=r"^'runs\\x00.sqlite': has a NUL character"):
        engine.scores("runs\x00.sqlite")
    assert list(in_tmp.iterdir()) == []


def test_abort_without_stop_ends_the_run_at_once(in_tmp: Path, fake: FakeServer) -> None:
    fake.configure(latency_median=2.0, latency_sigma=0.0)
    control = engine.RunControl()

    class AbortOnceSending:
        interval = 0.05

        def show(self, snapshots: list[engine.Snapshot]) -> None:
            if fake.stats(arrivals=False)["in_flight"] >= 4:
                control.abort()

        def close(self, snapshots: list[engine.Snapshot]) -> None:
            pass

    alpha = engine.Model(name="alpha", base_url=fake.base_url, concurrency=4)
    started = time.monotonic()
    with pytest.raises(engine.RunStopped):
        engine.evaluate(
            [alpha],
            command="generate",
            store="a.sqlite",
            control=control,
            progress=AbortOnceSending(),
        )
    assert time.monotonic() - started < 10  # not the 80 s of its 160 answers, 4 at a time
    assert fake.stats(arrivals=False)["requests"] <= 8
    assert run_statuses(in_tmp / "a.sqlite") == ["interrupted"]


KEY = "sk-proj-Zq8mW3vRt7Yx2Lp9Hn4Kd6Fs1Gj5"


@pytest.mark.parametrize(
    "keys",
    [{"api_key": KEY}, {"token": KEY}, {"Authorization": f"Bearer {KEY}"}, {"api_key_env": KEY}],
)
def test_a_key_given_where_a_key_does_not_go_is_not_repeated_in_the_refusal(
    tmp_path: Path,
    keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(KEY, raising=False)
    with pytest.raises(engine.ConfigError) as from_python:
        engine.Model(name="alpha", **keys)
    assert KEY[:12] not in str(from_python.value)
    assert "its value is not shown" in str(from_python.value)
    config = write_config(tmp_path, models=[{"name": "alpha", **keys}])
    code, out, err = mtbench(capsys, "plan", "-c", str(config))
    assert code == 2 and "its value is not shown" in err
    assert KEY[:12] not in out + err


def test_a_cancel_while_the_run_closes_still_closes_its_pools_writer_and_store(
    in_tmp: Path, fake: FakeServer
) -> None:
    alpha = engine.Model(name="alpha", base_url=fake.base_url)
    running: list[asyncio.Task[engine.RunResult]] = []

    class CancelOnClose:
        """`close` is shown the last snapshots while the run closes: the cancel lands there."""

        interval = 1.0

        def show(self, snapshots: list[engine.Snapshot]) -> None:
            pass

        def close(self, snapshots: list[engine.Snapshot]) -> None:
            running[0].cancel()

    async def script() -> engine.RunResult:
        run = engine.evaluate_async(
            [alpha], command="generate", store="c.sqlite", questions=[81], progress=CancelOnClose()
        )
        running.append(asyncio.ensure_future(run))
        with pytest.raises(asyncio.CancelledError):
            await running[0]
        return await engine.evaluate_async(
            [alpha], command="generate", store="c.sqlite", questions=[81, 82]
        )

    again = asyncio.run(script())
    assert {e.name: (e.cached, e.done) for e in again.endpoints} == {"alpha": (2, 2)}
    # the first run's writer was closed (its thread joined), not left waiting for rows
    assert not [t.name for t in threading.enumerate() if t.name.startswith("store-writer")]
    assert run_statuses(in_tmp / "c.sqlite") == ["interrupted", "ok"]


def test_a_view_that_exits_the_interpreter_leaves_the_store_closed_and_free(
    in_tmp: Path, fake: FakeServer
) -> None:
    fake.configure(latency_median=0.05)

    class Exits:
        interval = 0.05

        def show(self, snapshots: list[engine.Snapshot]) -> None:
            raise SystemExit(3)

        def close(self, snapshots: list[engine.Snapshot]) -> None:
            pass

    alpha = engine.Model(name="alpha", base_url=fake.base_url, concurrency=2)
    with pytest.raises(SystemExit):
        engine.evaluate([alpha], command="generate", store="x.sqlite", progress=Exits())
    assert not [t.name for t in threading.enumerate() if t.name.startswith("store-writer")]
    again = engine.evaluate([alpha], command="generate", store="x.sqlite", questions=[81])
    assert again.ok
    assert run_statuses(in_tmp / "x.sqlite")[-1] == "ok"


def test_a_refusal_of_a_config_built_in_python_names_engine_evaluate_not_none(
    in_tmp: Path, fake: FakeServer
) -> None:
    alpha = engine.Model(name="alpha", base_url=fake.base_url)
    assert engine.evaluate([alpha], command="generate", store="s.sqlite", questions=[81]).ok
    pairs = engine.Judge(name="judge", base_url=fake.base_url, mode="pairwise-all")
    with pytest.raises(engine.ConfigError) as refused:
        engine.evaluate([alpha], judge=pairs, command="judge", store="s.sqlite", questions=[81])
    assert str(refused.value).startswith("engine.evaluate: [judge] key 'mode' = 'pairwise-all'")
    (in_tmp / "servers").write_text("a file where served models' logs go")
    served = engine.Model(name="served", serve="serve --port {port}")
    with pytest.raises(engine.StoreError) as refused:
        engine.evaluate([served], command="generate", store="s.sqlite", questions=[81])
    assert str(refused.value).endswith("choose another `store` in engine.evaluate")
