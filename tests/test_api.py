"""The public API: the README's example scores a model from Python against the fake server, in a
plain script, from a non-main thread and inside a running event loop; `Model`/`Judge` refuse what
the TOML tables refuse, in the same words; the API takes no signals, tunes nothing, prints
nothing; a `RunControl` stops a run; `engine.__all__` is pinned.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

import engine
from engine.config import load_config
from engine.errors import ConfigError
from tests.support.fakeserver import FakeServer
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import model, mtbench, write_config

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLE_URL = "http://localhost:8000/v1"

PUBLIC = [
    "ConfigError",
    "DataError",
    "InputError",
    "Judge",
    "JudgeConfig",
    "Model",
    "ModelConfig",
    "MtbenchError",
    "ProgressView",
    "RunControl",
    "RunResult",
    "RunStopped",
    "Scoreboard",
    "Snapshot",
    "StoreError",
    "StoreWriteError",
    "__version__",
    "evaluate",
    "evaluate_async",
    "scores",
    "scores_async",
]


def readme_example(base_url: str) -> str:
    text = README.read_text()
    block = text.split("<!-- python-api-example -->", 1)[1].split("```python\n", 1)[1]
    return block.split("```", 1)[0].replace(EXAMPLE_URL, base_url)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MTBENCH_DATA", str(MTBENCH_DATA))
    return tmp_path


def scored(store: Path) -> dict[str, Any]:
    with sqlite3.connect(store) as db:
        answers = db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        judgments = db.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]
    return {"answers": answers, "judgments": judgments}


def printed_a_run_and_a_score(out: str) -> bool:
    """What the README example prints: the run's result, then the model's score from `scores`."""
    ok, score = out.splitlines()
    assert ok.startswith("True None [('step-1000', 4, 0), ('judge', 4, 0)]")
    return 1 <= float(score) <= 10


def test_engine_all_is_the_pinned_public_api() -> None:
    assert sorted(engine.__all__) == PUBLIC
    for name in engine.__all__:
        assert getattr(engine, name) is not None
    assert (Path(engine.__file__).parent / "py.typed").is_file()


def test_the_readme_example_scores_a_model_in_a_plain_script(
    in_tmp: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(readme_example(fake.base_url), {})
    assert printed_a_run_and_a_score(capsys.readouterr().out)
    assert scored(in_tmp / "runs" / "sweep.sqlite") == {"answers": 4, "judgments": 4}


def test_the_readme_example_runs_from_a_thread_that_is_not_the_main_one(
    in_tmp: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    errors: list[BaseException] = []

    def script() -> None:
        try:
            exec(readme_example(fake.base_url), {})
        except BaseException as error:
            errors.append(error)

    worker = threading.Thread(target=script)
    worker.start()
    worker.join(120)
    assert not worker.is_alive() and errors == []
    assert printed_a_run_and_a_score(capsys.readouterr().out)
    assert scored(in_tmp / "runs" / "sweep.sqlite") == {"answers": 4, "judgments": 4}


def test_evaluate_async_runs_inside_the_callers_event_loop(in_tmp: Path, fake: FakeServer) -> None:
    async def notebook() -> tuple[engine.RunResult, engine.Scoreboard, engine.RunResult]:
        alpha = engine.Model(name="alpha", base_url=fake.base_url)
        judge = engine.Judge(name="judge", base_url=fake.base_url)
        first = await engine.evaluate_async(
            [alpha], judge=judge, store="api.sqlite", questions=[81]
        )
        board = await engine.scores_async("api.sqlite")
        # evaluate() where a loop already runs (a notebook cell) takes a thread of its own
        again = engine.evaluate([alpha], judge=judge, store="api.sqlite", questions=[81])
        return first, board, again

    first, board, again = asyncio.run(notebook())
    assert first.ok and first.run_id is not None
    assert {e.name: e.done for e in first.endpoints} == {"alpha": 2, "judge": 2}
    assert {e.name: e.cached for e in again.endpoints} == {"alpha": 2, "judge": 2}
    assert board.as_dict()["leaderboards"][0]["models"][0]["model"] == "alpha"


def test_scores_returns_what_show_json_prints(
    in_tmp: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    judge = {"name": "judge", "base_url": fake.base_url}
    models = [model("alpha", fake.base_url), model("beta", fake.base_url)]
    config = write_config(in_tmp, models=models, judge=judge, questions=[81, 82])
    code, out, err = mtbench(capsys, "run", "-c", str(config), "--quiet")
    assert code == 0, err
    code, out, err = mtbench(capsys, "show", "--store", str(in_tmp / "store.sqlite"), "--json")
    assert code == 0, err
    assert engine.scores(in_tmp / "store.sqlite").as_dict() == orjson.loads(out)


def test_a_model_with_a_bad_value_is_refused_in_the_words_of_its_toml_key(tmp_path: Path) -> None:
    cases: list[dict[str, Any]] = [
        {"concurrency": 0},
        {"base_url": "http://"},
        {"timeout": float("inf")},
        {"temperature": 1.5, "api": "anthropic"},
        {"serve": "vllm serve {path}"},
        {"reasoning_effort": "extreme"},
        {"colour": "red"},
    ]
    for bad in cases:
        keys = {"name": "alpha", "base_url": "http://127.0.0.1:9/v1", **bad}
        config = write_config(tmp_path, models=[keys])
        with pytest.raises(ConfigError) as from_toml:
            load_config(config)
        with pytest.raises(ConfigError) as from_python:
            engine.Model(**keys)
        toml_words = str(from_toml.value).split(" key ", 1)[1]
        assert str(from_python.value) == f"engine.Model key {toml_words}", bad


def test_a_judge_is_checked_as_the_judge_table_is() -> None:
    with pytest.raises(ConfigError, match=r"^engine.Judge key 'mode' = 'pairs': expected one"):
        engine.Judge(name="j", mode="pairs")
    with pytest.raises(ConfigError, match="needs a judge"):
        engine.evaluate([engine.Model(name="a")], store="x.sqlite", command="judge")
    with pytest.raises(ConfigError, match="no store"):
        engine.evaluate([engine.Model(name="a")])


def test_the_api_takes_no_signals_tunes_no_collector_and_prints_nothing(
    in_tmp: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    thresholds = gc.get_threshold()
    seen: list[tuple[tuple[int, int, int], bool]] = []

    class Watcher:
        interval = 0.05

        def show(self, snapshots: list[engine.Snapshot]) -> None:
            seen.append((gc.get_threshold(), gc.get_freeze_count() > 0))

        def close(self, snapshots: list[engine.Snapshot]) -> None:
            assert {s.role for s in snapshots} == {"phase", "model"}
            seen.append((gc.get_threshold(), gc.get_freeze_count() > 0))

    alpha = engine.Model(name="alpha", base_url=fake.base_url)
    result = engine.evaluate(
        [alpha], command="generate", store="quiet.sqlite", questions=[81], progress=Watcher()
    )
    assert result.ok
    assert seen and all(entry == (thresholds, False) for entry in seen)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert capsys.readouterr() == ("", "")


def test_a_run_control_stops_a_run_gracefully_keeping_what_arrived(
    in_tmp: Path, fake: FakeServer
) -> None:
    fake.configure(latency_median=0.05)
    control = engine.RunControl()

    class StopAfterSome:
        interval = 0.05

        def show(self, snapshots: list[engine.Snapshot]) -> None:
            if any(s.role == "phase" and s.finished >= 10 for s in snapshots):
                threading.Thread(target=control.stop).start()  # from another thread, too

        def close(self, snapshots: list[engine.Snapshot]) -> None:
            pass

    alpha = engine.Model(name="alpha", base_url=fake.base_url, concurrency=4)
    with pytest.raises(engine.RunStopped, match="stopped after committing every answer"):
        engine.evaluate(
            [alpha],
            command="generate",
            store="stop.sqlite",
            progress=StopAfterSome(),
            control=control,
        )
    with sqlite3.connect(in_tmp / "stop.sqlite") as db:
        answers = db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        status = db.execute("SELECT status FROM runs").fetchone()[0]
    assert 10 <= answers < 160 and status == "interrupted"
    resumed = engine.evaluate([alpha], command="generate", store="stop.sqlite")
    assert {e.name: (e.cached, e.done) for e in resumed.endpoints} == {
        "alpha": (answers, 160 - answers)
    }
