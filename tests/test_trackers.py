"""`mtbench export --wandb / --mlflow`: the real libraries, no network (W&B offline, MLflow on a
local SQLite store), read back and compared with `show --sweep --json`; re-exports add only
what is new."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.cli.main import main
from engine.interop.mlflow_export import EXPERIMENT, RUN_KEY_TAG
from engine.interop.wandb_records import offline_runs, read_offline_run
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import mtbench
from tests.support.sweepstore import QUESTIONS, flat_ratings, sweep_store, write_sweep_files

RATINGS = {
    "step-100": {(q, t): 2.0 + q % 3 + t for q in QUESTIONS for t in (1, 2)},
    "step-200": {(q, t): 5.0 + q % 2 for q in QUESTIONS for t in (1, 2)},
    "step-300": flat_ratings(7.0),
}
PARTIAL = {"step-400": {(81, 1): 9.0}}  # still being judged: never logged


def _quiet_main(*argv: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return main(list(argv))


def _add(store: Path, folder: Path, ratings: dict[str, Any]) -> None:
    files = write_sweep_files(folder, ratings)
    argv = ["import", "--store", str(store), "--fastchat", str(files), "--data", str(MTBENCH_DATA)]
    assert _quiet_main(*argv) == 0


def _shown(capsys: pytest.CaptureFixture[str], store: Path) -> dict[str, Any]:
    code, out, err = mtbench(capsys, "show", "--store", str(store), "--sweep", "--json")
    assert code == 0, err
    (sweep,) = orjson.loads(out)["sweeps"]
    return sweep


def _expected_metrics(checkpoint: dict[str, Any]) -> dict[str, float]:
    metrics = {}
    estimates = {name: checkpoint[name] for name in ("overall", "turn_1", "turn_2")}
    estimates |= {f"category_{n}": e for n, e in checkpoint["categories"].items()}
    for name, estimate in estimates.items():
        if estimate["score"] is None:
            continue
        metrics[f"mtbench/{name}"] = estimate["score"]
        low, high = estimate["ci_95"]
        metrics[f"mtbench/{name}_ci_low"] = low
        metrics[f"mtbench/{name}_ci_high"] = high
    return metrics


@pytest.fixture
def store(tmp_path: Path) -> Path:
    store = sweep_store(tmp_path, RATINGS)
    _add(store, tmp_path / "partial", PARTIAL)
    return store


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("wandb", reason="the [wandb] extra is not installed")
    root = tmp_path / "wandb-root"
    root.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(root))
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return root / "wandb"


def _wandb_history(wandb_dir: Path) -> tuple[list[Any], dict[int, dict[str, Any]]]:
    (run_id,) = {p.stem.removeprefix("run-") for p in wandb_dir.glob("offline-run-*/*.wandb")}
    runs = [read_offline_run(path) for path in offline_runs(wandb_dir, run_id)]
    history: dict[int, dict[str, Any]] = {}
    for run in runs:
        for step, values in run.history.items():
            assert step not in history, f"step {step} logged twice"
            history[step] = {k: v for k, v in values.items() if k.startswith("mtbench/")}
    return runs, history


def test_wandb_offline_run_holds_the_shown_scores_at_their_steps_once(
    store: Path, tmp_path: Path, offline_wandb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _quiet_main("export", "--store", str(store), "--wandb", "mtbench-test") == 0
    shown = _shown(capsys, store)
    runs, history = _wandb_history(offline_wandb)
    assert [c["complete"] for c in shown["checkpoints"]] == [True, True, True, False]
    assert shown["best"] == "step-300"  # not the partial step-400's lone 9
    complete = [c for c in shown["checkpoints"] if c["complete"]]
    assert sorted(history) == [100, 200, 300]
    for checkpoint in complete:
        assert history[checkpoint["step"]] == pytest.approx(_expected_metrics(checkpoint))
    first = runs[0]
    assert first.project == "mtbench-test" and first.name == "step-* · gpt-4"
    assert first.config["judge_name"] == "gpt-4" and first.config["sweep"] == "step-*"
    assert first.config["engine_version"] and first.config["judge_api"] == "import"
    assert first.summary["mtbench/best_step"] == 300

    for _ in range(2):  # back to back, nothing new: often within one second
        assert _quiet_main("export", "--store", str(store), "--wandb", "mtbench-test") == 0
    _add(store, tmp_path / "more", {"step-500": flat_ratings(8.0)})
    assert _quiet_main("export", "--store", str(store), "--wandb", "mtbench-test") == 0
    runs, history = _wandb_history(offline_wandb)  # asserts no step twice
    assert len(runs) == 4  # a folder per export, even two in one second
    assert sorted(history) == [100, 200, 300, 500]
    assert history[500]["mtbench/overall"] == 8.0


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("mlflow", reason="the [mlflow] extra is not installed")
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _mlflow_run(uri: str, store: Path) -> tuple[Any, Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    (run,) = [r for r in runs if r.data.params.get("store") == str(store.resolve())]
    return client, run


def _mlflow_history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_mlflow_run_holds_the_shown_scores_at_their_steps_once(
    store: Path, tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _quiet_main("export", "--store", str(store), "--mlflow", mlflow_uri) == 0
    shown = _shown(capsys, store)
    client, run = _mlflow_run(mlflow_uri, store)
    complete = [c for c in shown["checkpoints"] if c["complete"]]
    for checkpoint in complete:
        for key, value in _expected_metrics(checkpoint).items():
            assert (checkpoint["step"], pytest.approx(value)) in _mlflow_history(
                client, run.info.run_id, key
            )
    overall = _mlflow_history(client, run.info.run_id, "mtbench/overall")
    assert [step for step, _ in overall] == [100, 200, 300]  # not the partial step-400
    assert run.data.params["judge_name"] == "gpt-4" and run.data.params["sweep"] == "step-*"
    assert run.data.tags["mtbench.best_checkpoint"] == "step-300"
    assert run.data.tags[RUN_KEY_TAG].startswith("mtb-")

    assert _quiet_main("export", "--store", str(store), "--mlflow", mlflow_uri) == 0
    _add(store, tmp_path / "late", {"step-50": flat_ratings(1.0)})  # an earlier step, judged late
    assert _quiet_main("export", "--store", str(store), "--mlflow", mlflow_uri) == 0
    again, run_again = _mlflow_run(mlflow_uri, store)
    assert run_again.info.run_id == run.info.run_id
    overall = _mlflow_history(again, run.info.run_id, "mtbench/overall")
    assert overall == [(50, 1.0), *overall[1:]] and [s for s, _ in overall] == [50, 100, 200, 300]


def test_export_refuses_a_config_with_fastchat_and_names_both_targets(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = mtbench(capsys, "export", "--store", str(store))
    assert code == 2 and "--fastchat" in err and "--wandb" in err and "--mlflow" in err
    cfg = tmp_path / "c.toml"
    argv = ["export", "--store", str(store), "--fastchat", str(tmp_path / "o"), "-c", str(cfg)]
    code, _, err = mtbench(capsys, *argv)
    assert code == 2 and "-c/--config goes with --wandb or --mlflow" in err
    assert not (tmp_path / "o").exists()


def test_a_tracker_that_refuses_is_one_line_and_exit_1(
    store: Path,
    offline_wandb: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("WANDB_MODE")  # online, with no API key anywhere: W&B refuses to start
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    code, out, err = mtbench(capsys, "export", "--store", str(store), "--wandb", "p")
    assert (code, out) == (1, "")
    (line,) = err.strip().splitlines()
    assert line.startswith("mtbench: error: W&B could not open run mtb-")


SHARED_STEP = {
    "step-100": flat_ratings(5.0),
    "step-0100": flat_ratings(6.0),  # the same step, zero-padded: which one is step 100?
    "step-200": flat_ratings(7.0),
}


def test_checkpoints_sharing_a_step_are_left_out_of_both_trackers_and_named(
    tmp_path: Path, offline_wandb: Path, mlflow_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = sweep_store(tmp_path, SHARED_STEP)
    code, out, err = mtbench(capsys, "export", "--store", str(store), "--wandb", "p")
    assert code == 0, err
    assert "1 checkpoints logged, 0 already there" in out
    assert "left out, sharing a step: step-0100, step-100" in out
    _, history = _wandb_history(offline_wandb)
    assert sorted(history) == [200]
    code, out, err = mtbench(capsys, "export", "--store", str(store), "--mlflow", mlflow_uri)
    assert code == 0, err
    assert "left out, sharing a step: step-0100, step-100" in out
    client, run = _mlflow_run(mlflow_uri, store)
    assert _mlflow_history(client, run.info.run_id, "mtbench/overall") == [(200, 7.0)]


def test_an_mlflow_sqlite_file_that_cannot_be_opened_is_one_line_and_exit_1_at_once(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow", reason="the [mlflow] extra is not installed")
    (tmp_path / "a-file").write_text("not a directory")
    for uri in (f"sqlite:///{tmp_path}/a-file/mlflow.db", f"sqlite:///{tmp_path}"):
        started = time.monotonic()
        code, out, err = mtbench(capsys, "export", "--store", str(store), "--mlflow", uri)
        assert (code, out) == (1, ""), err
        (line,) = err.strip().splitlines()  # no MLflow retry lines, no traceback
        assert line.startswith(f"mtbench: error: MLflow at {uri}: cannot open")
        assert time.monotonic() - started < 10  # MLflow alone retries for over a minute


def test_an_unreachable_mlflow_server_is_one_line_and_exit_1_within_seconds(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow", reason="the [mlflow] extra is not installed")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens once it is closed
    started = time.monotonic()
    uri = f"http://127.0.0.1:{port}"
    code, out, err = mtbench(capsys, "export", "--store", str(store), "--mlflow", uri)
    assert (code, out) == (1, "")
    (line,) = err.strip().splitlines()  # no urllib3 retry warnings
    assert line.startswith(f"mtbench: error: MLflow at {uri}: ")
    assert time.monotonic() - started < 30  # MLflow alone retries for minutes


def test_a_wandb_offline_folder_that_cannot_be_written_is_one_line_and_exit_1(
    store: Path, offline_wandb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    offline_wandb.write_text("a file where the wandb folder goes")
    code, out, err = mtbench(capsys, "export", "--store", str(store), "--wandb", "p")
    assert (code, out) == (1, "")
    (line,) = err.strip().splitlines()
    assert line.startswith(f"mtbench: error: W&B offline: cannot create {offline_wandb}")


def test_a_read_only_wandb_dir_is_refused_not_swapped_for_the_temporary_directory(
    store: Path,
) -> None:
    # W&B alone warns, writes the run under /tmp and exits 0: the user's $WANDB_DIR never
    # holds it, and the next export, looking there, logs every step again.
    pytest.importorskip("wandb", reason="the [wandb] extra is not installed")
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot test as an unprivileged user")
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    with tempfile.TemporaryDirectory() as root_dir:
        root = Path(root_dir)
        root.chmod(0o755)
        readable = root / "store.sqlite"
        shutil.copy(store, readable)
        readable.chmod(0o644)
        locked = root / "locked"
        locked.mkdir(mode=0o555)
        locked.chmod(0o555)
        home = root / "home"
        home.mkdir()
        home.chmod(0o777)
        env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(locked), "HOME": str(home)}
        for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "TMPDIR"):
            env[variable] = str(home)
        env.pop("WANDB_API_KEY", None)
        command = [*prefix, sys.executable, "-m", "engine", "export", "--store", str(readable)]
        done = subprocess.run(
            [*command, "--wandb", "p"],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"mtbench: error: W&B offline: cannot create {locked}/wandb")
        assert not list(home.glob("**/offline-run-*"))


@pytest.mark.parametrize("tracker", ["wandb", "mlflow"])
def test_a_tracker_library_that_fails_to_import_is_one_line_and_exit_2(
    tracker: str,
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken = tmp_path / "site" / tracker
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('cannot import name builder')\n")
    monkeypatch.syspath_prepend(str(broken.parent))
    monkeypatch.delitem(sys.modules, tracker, raising=False)
    target = "p" if tracker == "wandb" else f"sqlite:///{tmp_path / 'm.db'}"
    code, out, err = mtbench(capsys, "export", "--store", str(store), f"--{tracker}", target)
    assert (code, out) == (2, "")
    (line,) = err.strip().splitlines()
    assert f"{tracker} is installed but cannot be imported (ImportError: cannot import" in line
    assert f"mtbench-engine[{tracker}]" in line


def test_a_checkpoint_completed_behind_the_last_wandb_step_is_said_left_out_not_there(
    tmp_path: Path, offline_wandb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    early = {"step-100": flat_ratings(5.0), "step-300": flat_ratings(6.0)}
    store = sweep_store(tmp_path, {**early, "step-200": {(81, 1): 9.0}})  # step-200 partial
    code, out, err = mtbench(capsys, "export", "--store", str(store), "--wandb", "p")
    assert code == 0 and "2 checkpoints logged, 0 already there" in out, err
    files = write_sweep_files(tmp_path / "late", {"step-200": flat_ratings(7.0)})
    argv = ["import", "--store", str(store), "--fastchat", str(files), "--force"]
    assert _quiet_main(*argv, "--data", str(MTBENCH_DATA)) == 0
    code, out, err = mtbench(capsys, "export", "--store", str(store), "--wandb", "p")
    assert code == 0, err
    assert "0 checkpoints logged, 2 already there; 1 left out: before the run's last step" in out
    _, history = _wandb_history(offline_wandb)
    assert sorted(history) == [100, 300]


def test_a_second_wandb_project_gets_every_checkpoint_not_the_first_projects_steps(
    store: Path, offline_wandb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for project in ("first", "second"):
        code, out, err = mtbench(capsys, "export", "--store", str(store), "--wandb", project)
        assert code == 0, err
        assert "3 checkpoints logged, 0 already there" in out
    code, out, _ = mtbench(capsys, "export", "--store", str(store), "--wandb", "second")
    assert code == 0 and "0 checkpoints logged, 3 already there" in out
    runs = [read_offline_run(p) for p in sorted(offline_wandb.glob("offline-run-*/*.wandb"))]
    logged = {
        p: sorted(s for r in runs if r.project == p for s in r.history) for p in ("first", "second")
    }
    assert logged == {"first": [100, 200, 300], "second": [100, 200, 300]}


@pytest.mark.parametrize("tracker", ["wandb", "mlflow"])
def test_an_empty_tracker_target_is_refused_before_anything_is_written(
    tracker: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(tmp_path.rglob("*"))
    code, out, err = mtbench(capsys, "export", "--store", str(store), f"--{tracker}", " ")
    assert (code, out) == (2, "")
    assert err.strip().endswith("not an empty string")
    assert sorted(tmp_path.rglob("*")) == before


def test_an_earlier_wandb_folder_left_empty_is_skipped_not_a_crash(
    store: Path, offline_wandb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = mtbench(capsys, "export", "--store", str(store), "--wandb", "p")
    assert code == 0, err
    (written,) = offline_wandb.glob("offline-run-*/*.wandb")
    written.write_bytes(b"")  # what a full disk leaves
    code, out, err = mtbench(capsys, "export", "--store", str(store), "--wandb", "p")
    assert code == 0, err
    assert "3 checkpoints logged, 0 already there" in out


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, nearly filled: needs root and mount(8), else the test is skipped."""
    mount = tmp_path / "full"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk needs root to mount a small tmpfs")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        (mount / "filler").write_bytes(b"\0" * 56 * 1024)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_wandb_offline_run_lost_to_a_full_disk_is_one_line_and_exit_1(
    store: Path,
    offline_wandb: Path,
    full_disk: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # W&B's service alone leaves an empty run file, and the export said it logged everything.
    monkeypatch.setenv("WANDB_DIR", str(full_disk))
    code, out, err = mtbench(capsys, "export", "--store", str(store), "--wandb", "p")
    assert (code, out) == (1, "")
    (line,) = err.strip().splitlines()
    assert line.startswith("mtbench: error: W&B offline: ")
    assert "lacks 3 of the 3 steps logged" in line
