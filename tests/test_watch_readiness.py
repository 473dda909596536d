"""When a checkpoint counts as complete: its marker exists and its files have stopped changing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.config import load_config
from engine.config_sweeps import CheckpointSweep
from engine.errors import ConfigError
from engine.run.readiness import ReadinessTracker
from tests.support.runconfig import write_config


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sweep(tmp_path: Path, **keys: object) -> CheckpointSweep:
    table = {"serve": "srv {path} {port}", "checkpoints": "ckpt/step-*", **keys}
    config = load_config(write_config(tmp_path, models=[table]), watch=True)
    return config.sweeps[0]


def test_a_checkpoint_without_its_marker_waits_for_it(tmp_path: Path) -> None:
    checkpoints = sweep(tmp_path, ready_marker="config.json", settle=0)
    folder = tmp_path / "ckpt" / "step-1"
    folder.mkdir(parents=True)
    tracker = ReadinessTracker()
    assert tracker.waiting_for(checkpoints, "step-1", folder) == "no config.json yet"
    (folder / "config.json").write_text("{}")
    assert tracker.waiting_for(checkpoints, "step-1", folder) is None


def test_files_that_keep_changing_settle_only_once_unchanged_for_settle_seconds(
    tmp_path: Path,
) -> None:
    checkpoints = sweep(tmp_path, settle=10)
    folder = tmp_path / "ckpt" / "step-1"
    folder.mkdir(parents=True)
    shard = folder / "model.safetensors"
    shard.write_bytes(b"x")
    monotonic, wall = Clock(), Clock()
    wall.now = os.stat(shard).st_ctime  # just written, as far as the wall clock knows
    tracker = ReadinessTracker(monotonic, wall)
    assert tracker.waiting_for(checkpoints, "step-1", folder) == "settling, 10 s"
    monotonic.now += 6
    shard.write_bytes(b"xy")  # grew: the wait starts again
    assert tracker.waiting_for(checkpoints, "step-1", folder) == "settling, 10 s"
    monotonic.now += 9.5
    assert tracker.waiting_for(checkpoints, "step-1", folder) == "settling, 1 s"
    monotonic.now += 0.5
    assert tracker.waiting_for(checkpoints, "step-1", folder) is None


def test_a_checkpoint_whose_last_change_is_older_than_settle_is_complete_at_first_sight(
    tmp_path: Path,
) -> None:
    checkpoints = sweep(tmp_path, settle=60)
    folder = tmp_path / "ckpt" / "step-1"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "shard").write_bytes(b"x")
    wall = Clock()
    wall.now = os.stat(folder / "sub" / "shard").st_ctime + 59
    assert ReadinessTracker(Clock(), wall).waiting_for(checkpoints, "step-1", folder) is not None
    wall.now += 1.5  # not 1: a float's rounding of nanoseconds must not decide it
    assert ReadinessTracker(Clock(), wall).waiting_for(checkpoints, "step-1", folder) is None


def test_the_marker_of_a_checkpoint_file_is_beside_it_with_its_name(tmp_path: Path) -> None:
    checkpoints = sweep(tmp_path, ready_marker="{name}.done", settle=0, name="run7")
    (tmp_path / "ckpt").mkdir()
    weights = tmp_path / "ckpt" / "step-5.gguf"
    weights.write_bytes(b"gguf")
    assert checkpoints.matches() == [("run7-step-5", weights)]
    tracker = ReadinessTracker()
    assert tracker.waiting_for(checkpoints, "run7-step-5", weights) == "no step-5.done yet"
    (tmp_path / "ckpt" / "step-5.done").touch()
    assert tracker.waiting_for(checkpoints, "run7-step-5", weights) is None


def test_watch_loads_a_sweep_that_matches_nothing_yet_and_a_plain_run_refuses_it(
    tmp_path: Path,
) -> None:
    checkpoints = sweep(tmp_path)
    assert checkpoints.matches() == []
    assert (checkpoints.settle, checkpoints.max_attempts, checkpoints.ready_marker) == (60, 3, None)
    with pytest.raises(ConfigError, match="no file or directory matches"):
        load_config(tmp_path / "run.toml")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"ready_marker": "/abs/config.json"}, "give a path inside the checkpoint"),
        ({"ready_marker": "../config.json"}, "give a path inside the checkpoint"),
        ({"ready_marker": ""}, "expected a file name such as config.json"),
        ({"settle": -1}, "expected a number of seconds from 0 to 86400"),
        ({"settle": float("nan")}, "expected a number of seconds"),
        ({"max_checkpoint_attempts": 0}, "expected an integer from 1 to 1000"),
    ],
)
def test_bad_sweep_keys_are_refused_naming_the_key(
    tmp_path: Path, keys: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        sweep(tmp_path, **keys)
    assert f"key {next(iter(keys))!r}" in str(refused.value)


def test_sweep_keys_on_a_model_without_checkpoints_are_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, models=[{"name": "m", "settle": 5}])
    with pytest.raises(ConfigError, match="key 'settle' = 5: only a sweep takes it"):
        load_config(config)


def test_checkpoints_a_watcher_finds_later_are_launched_as_the_config_says(
    tmp_path: Path,
) -> None:
    table = {"serve": "srv {path} {port}", "checkpoints": "ckpt/step-*"}
    path = write_config(
        tmp_path, models=[table], launcher="slurm", slurm={"partition": "gpu", "directory": "jobs"}
    )
    (found,) = load_config(path, watch=True).sweeps
    assert found.template.launcher == "slurm"
    assert found.template.slurm is not None
    assert found.template.slurm.partition == "gpu"
    assert found.template.slurm.directory == str(tmp_path.resolve() / "jobs")
