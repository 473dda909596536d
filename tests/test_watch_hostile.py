"""Watch mode against a hostile world: what a training job, a filesystem and an impatient user do
to a watcher that runs all night (issue 14, watch mode; README "Watch mode").

Each test is one way the watcher used to stop, hang or score the wrong thing, found by attacking
it: bad input found only when the first checkpoint lands, labels two matches share, files it may
not read, a store another command holds, checkpoints still being written when --until-idle
ran out, signals from a closed terminal.
"""

from __future__ import annotations

import shlex
import threading
import time
from pathlib import Path

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import mtbench, write_config
from tests.support.served_fake import COMMAND as SERVED_FAKE
from tests.test_watch import watch_config

WATCH = ("--watch", "--poll", "0.1", "--progress", "plain")


def test_what_the_first_run_would_refuse_is_refused_before_the_first_checkpoint_lands(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The glob matches nothing yet, and the trainer's first checkpoint is hours away: a wrong
    data dir, question, GPU count or store path used to surface only then, as exit 2."""
    (tmp_path / "checkpoints").mkdir()
    config, _ = watch_config(tmp_path, fake)
    flags = (*WATCH, "--until-idle", "1h")
    started = time.monotonic()
    code, _, err = mtbench(capsys, "run", "-c", str(config), *flags, "--data", str(tmp_path))
    assert code == 2
    assert "question.jsonl: file not found" in err

    config, _ = watch_config(tmp_path, fake, gpus_per_server=2)
    code, _, err = mtbench(capsys, "run", "-c", str(config), *flags)
    assert code == 2
    assert "[[model]] 'step-*' key 'gpus_per_server' asks for GPUs" in err

    (tmp_path / "not-a-dir").write_text("")
    config, _ = watch_config(tmp_path, fake)
    text = config.read_text().replace("store.sqlite", "not-a-dir/store.sqlite")
    config.write_text(text)
    code, _, err = mtbench(capsys, "run", "-c", str(config), *flags)
    assert code == 2
    assert "not-a-dir is a file, not a directory" in err
    assert time.monotonic() - started < 30  # not an hour: refused at once
    assert not (tmp_path / "store.sqlite").exists()


def test_a_marker_beside_its_checkpoint_file_is_no_checkpoint_and_a_passing_twin_waits(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """README's `ready_marker = "{name}.done"` with the glob `step-*`: the marker matched the glob
    too, and two matches labelled step-1 stopped the watcher (exit 2) the moment the trainer
    wrote it. A trainer's temporary twin (`step-2.tmp` beside `step-2.pt`) did the same."""
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    config, events = watch_config(tmp_path, fake, ready_marker="{name}.done", settle=0)
    for name in ("step-1.pt", "step-1.done", "step-2.tmp", "step-2.pt", "step-2.done"):
        (checkpoints / name).write_text(name)
    twin = threading.Timer(1.0, (checkpoints / "step-2.tmp").unlink)
    twin.start()
    try:
        code, out, err = mtbench(capsys, "run", "-c", str(config), *WATCH, "--until-idle", "2")
    finally:
        twin.join()
    assert code == 0, err
    assert "step-2 (step-2.pt and step-2.tmp would share its label)" in err
    assert sorted(Path(path).name for path, _ in server_starts(events)) == [
        "step-1.pt",
        "step-2.pt",
    ]
    assert outcomes(out) == {"step-1": "scored", "step-2": "scored"}

    (checkpoints / "step-3.pt").write_text("")
    (checkpoints / "step-3.done").write_text("")
    code, _, err = mtbench(capsys, "run", "-c", str(config))  # a plain run: the same matches
    assert code == 0, err
    assert len(server_starts(events)) == 3


def test_a_checkpoint_labelled_like_another_model_is_failed_unrun_not_scored_as_that_model(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain run refuses two models with one label. The watcher took a checkpoint `step-5`
    beside a [[model]] `step-5` as scored, with that model's cached answers, and never
    looked at a second sweep's `step-1` at all (exit 0, not even listed)."""
    events = tmp_path / "events.jsonl"
    serve = f"{SERVED_FAKE} {shlex.quote(str(events))} {{path}} --port {{port}}"
    sweep = {"serve": serve, "settle": 0, "concurrency": 4}
    models = [
        {**sweep, "checkpoints": "a/step-*"},
        {**sweep, "checkpoints": "b/step-*"},
        {"name": "step-5", "base_url": fake.base_url},
    ]
    judge = {"name": "judge-w", "base_url": fake.base_url, "concurrency": 4}
    config = write_config(tmp_path, models=models, judge=judge, questions=[81])
    for folder in ("a/step-1", "b/step-1", "a/step-5"):
        (tmp_path / folder).mkdir(parents=True)
    code, out, err = mtbench(capsys, "run", "-c", str(config), *WATCH, "--until-idle", "1")
    assert code == 1, err
    assert [Path(path).parent.name for path, _ in server_starts(events)] == ["a"]
    rows = [line.split() for line in out.splitlines() if line.startswith("step-")]
    assert sorted(row for row in rows if len(row) == 3) == [
        ["step-1", "failed", "0"],
        ["step-1", "scored", "1"],
        ["step-5", "failed", "0"],
    ]
    assert f"step-1: not run: {tmp_path}/a/step-1 (of {config}: [[model]] #1) has the same" in out
    assert "step-5: not run: the [[model]] named 'step-5' has the same label" in out


def outcomes(out: str) -> dict[str, str]:
    rows = [line.split() for line in out.splitlines() if line.startswith("step-")]
    return {row[0]: row[1] for row in rows if len(row) >= 3 and row[2].isdigit()}


def server_starts(events: Path) -> list[tuple[str, float]]:
    """(checkpoint path, time) of each server start, in order."""
    if not events.exists():
        return []
    lines = [orjson.loads(line) for line in events.read_bytes().splitlines()]
    return [(e["checkpoint"], e["t"]) for e in lines if e["event"] == "start"]
