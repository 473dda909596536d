"""Watch mode against a hostile world: what a training job, a filesystem and an impatient user do
to a watcher that runs all night (issue 14, watch mode; README "Watch mode").

Each test is one way the watcher used to stop, hang or score the wrong thing, found by attacking
it: bad input found only when the first checkpoint lands, labels two matches share, files it may
not read, a store another command holds, checkpoints still being written when --until-idle
ran out, signals from a closed terminal.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import orjson
import pytest

from engine.run.readiness import ReadinessTracker
from engine.store.storefile import take_writer_lock
from tests.support.engineproc import ended, start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import mtbench, write_config
from tests.support.served_fake import COMMAND as SERVED_FAKE
from tests.test_watch import watch_config, write_checkpoint
from tests.test_watch_readiness import Clock
from tests.test_watch_readiness import sweep as readiness_sweep

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
    assert sorted(path.name for path in served_paths(events)) == ["step-1.pt", "step-2.pt"]
    assert outcomes(out) == {"step-1": "scored", "step-2": "scored"}

    (checkpoints / "step-3.pt").write_text("")
    (checkpoints / "step-3.done").write_text("")
    code, _, err = mtbench(capsys, "run", "-c", str(config))  # a plain run: the same matches
    assert code == 0, err
    assert len(served_paths(events)) == 3


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
    assert [path.parent.name for path in served_paths(events)] == ["a"]
    rows = [line.split() for line in out.splitlines() if line.startswith("step-")]
    assert sorted(row for row in rows if len(row) == 3) == [
        ["step-1", "failed", "0"],
        ["step-1", "scored", "1"],
        ["step-5", "failed", "0"],
    ]
    assert f"step-1: not run: {tmp_path}/a/step-1 (of {config}: [[model]] #1) has the same" in out
    assert "step-5: not run: the [[model]] named 'step-5' has the same label" in out
    flags = ("--watch", "--poll", "0.1", "--until-idle", "0.5", "--json")
    code, out, _ = mtbench(capsys, "run", "-c", str(config), *flags)
    assert code == 1
    twins = [c for c in orjson.loads(out)["checkpoints"] if c["checkpoint"] == "step-1"]
    assert {(c["outcome"], Path(c["path"]).parent.name) for c in twins} == {
        ("scored", "a"),
        ("failed", "b"),
    }  # told apart by their paths


def outcomes(out: str) -> dict[str, str]:
    rows = [line.split() for line in out.splitlines() if line.startswith("step-")]
    return {row[0]: row[1] for row in rows if len(row) >= 3 and row[2].isdigit()}


def served_paths(events: Path) -> list[Path]:
    """The checkpoint of each server start, in order."""
    if not events.exists():
        return []
    lines = [orjson.loads(line) for line in events.read_bytes().splitlines()]
    return [Path(e["checkpoint"]) for e in lines if e["event"] == "start"]


def test_a_shard_linked_into_a_blob_store_settles_only_once_its_target_stops_growing(
    tmp_path: Path,
) -> None:
    """A Hugging Face snapshot's shards are symbolic links into `blobs/`: the link never
    changes while its target grows, so a half-written checkpoint looked settled."""
    checkpoints = readiness_sweep(tmp_path, settle=10)
    blob = tmp_path / "blobs" / "abc123"
    blob.parent.mkdir()
    blob.write_bytes(b"x")
    folder = tmp_path / "ckpt" / "step-1"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").symlink_to(blob)
    (folder / "gone.bin").symlink_to(tmp_path / "nowhere")  # dangling: taken as it is
    monotonic, wall = Clock(), Clock()
    wall.now = os.stat(folder).st_ctime
    tracker = ReadinessTracker(monotonic, wall)
    assert tracker.waiting_for(checkpoints, "step-1", folder) == "settling, 10 s"
    monotonic.now += 9
    with blob.open("ab") as shard:
        shard.write(b"more")
    assert tracker.waiting_for(checkpoints, "step-1", folder) == "settling, 10 s"
    monotonic.now += 10
    assert tracker.waiting_for(checkpoints, "step-1", folder) is None


def test_a_wall_clock_jumping_forward_does_not_complete_a_checkpoint_seen_being_written(
    tmp_path: Path,
) -> None:
    """The change-time rule (for checkpoints written before the watcher started) compared the
    wall clock with the files' change times: a jump forward (NTP, a resumed VM) made a
    checkpoint still being written look an hour old."""
    checkpoints = readiness_sweep(tmp_path, settle=10)
    folder = tmp_path / "ckpt" / "step-1"
    folder.mkdir(parents=True)
    shard = folder / "model.safetensors"
    shard.write_bytes(b"x")
    monotonic, wall = Clock(), Clock()
    wall.now = os.stat(shard).st_ctime
    tracker = ReadinessTracker(monotonic, wall)
    assert tracker.waiting_for(checkpoints, "step-1", folder) == "settling, 10 s"
    monotonic.now += 1
    shard.write_bytes(b"xy")
    assert tracker.waiting_for(checkpoints, "step-1", folder) == "settling, 10 s"
    monotonic.now, wall.now = monotonic.now + 1, wall.now + 3600  # the jump
    assert tracker.waiting_for(checkpoints, "step-1", folder) == "settling, 9 s"
    monotonic.now += 9
    assert tracker.waiting_for(checkpoints, "step-1", folder) is None


def test_a_checkpoint_whose_marker_cannot_be_looked_for_waits_saying_why(tmp_path: Path) -> None:
    """An OSError looking for the marker (a name too long here; permission below) stopped the
    watcher with an internal error."""
    checkpoints = readiness_sweep(tmp_path, ready_marker="{name}.done", settle=0)
    label = "step-1" + "x" * 245  # the file fits in 255 bytes; its marker does not
    weights = tmp_path / "ckpt" / f"{label}.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"w")
    tracker = ReadinessTracker()
    assert tracker.waiting_for(checkpoints, label, weights) == "cannot read it: File name too long"


def test_a_checkpoint_the_watcher_may_not_read_waits_and_the_others_are_scored(
    tmp_path: Path, fake: FakeServer
) -> None:
    """A trainer writing as another user with mode 700: the watcher stopped with an internal
    error (PermissionError) and scored nothing more."""
    config, events = watch_config(tmp_path, fake, settle=0)
    write_checkpoint(tmp_path / "checkpoints" / "step-1")
    write_checkpoint(tmp_path / "checkpoints" / "step-2")
    prefix = unprivileged(tmp_path / "checkpoints" / "step-1", 0o700)
    argv = [*prefix, sys.executable, "-m", "engine", "run", "-c", str(config), *WATCH]
    watcher = subprocess.Popen(
        [*argv, "--until-idle", "1.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = ended(watcher, timeout=60)
    assert watcher.returncode == 0, err
    assert [path.name for path in served_paths(events)] == ["step-2"]
    assert "step-1      waiting         0  (cannot read it: Permission denied)" in out


@pytest.mark.parametrize("mode", [0o700, 0o744])
def test_a_checkpoints_folder_the_watcher_may_not_list_is_refused_not_watched_all_night(
    tmp_path: Path, fake: FakeServer, mode: int
) -> None:
    """Unlistable (700 of another user), the glob matched nothing and the watcher said
    `waiting for new checkpoints` until --until-idle, the checkpoints right there. Listed but
    not searchable (`chmod -R a+r`), telling whether step-1 is a directory raised
    PermissionError: an internal error for the watcher and a plain run alike."""
    config, _ = watch_config(tmp_path, fake, settle=0)
    write_checkpoint(tmp_path / "checkpoints" / "step-1")
    prefix = unprivileged(tmp_path / "checkpoints", mode)
    argv = [*prefix, sys.executable, "-m", "engine", "run", "-c", str(config)]
    watcher = subprocess.run([*argv, *WATCH, "--until-idle", "1h"], capture_output=True, text=True)
    assert watcher.returncode == 2, watcher.stderr
    assert f"cannot list {tmp_path}/checkpoints (permission denied)" in watcher.stderr
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert "internal error" not in plain.stderr


def unprivileged(path: Path, mode: int = 0) -> list[str]:
    """A command prefix under which `path` is as accessible as `mode` lets others at it: root
    without its power to read anything (`path` then belongs to nobody), or, not root, as we are
    (`path` then ours, with the others' bits of `mode`)."""
    if os.geteuid() != 0:
        path.chmod((mode & 0o7) << 6)
        return []
    path.chmod(mode)
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop root's power to read any file")
    os.chown(path, 65534, 65534)
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def test_a_store_another_command_is_writing_makes_the_watcher_wait_not_stop(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mtbench judge` with a second judge on the same store while the watcher waited: the next
    checkpoint's run met the writer lock, and the watcher stopped (exit 2) for the night."""
    config, events = watch_config(tmp_path, fake, settle=0)
    write_checkpoint(tmp_path / "checkpoints" / "step-1")
    lock = take_writer_lock(tmp_path / "store.sqlite")  # as another run holds it
    releaser = threading.Timer(1.5, lock.release)
    releaser.start()
    try:
        code, out, err = mtbench(capsys, "run", "-c", str(config), *WATCH, "--until-idle", "4")
    finally:
        releaser.join()
    assert code == 0, err
    busy = f"step-1 (store busy: another mtbench run (pid {os.getpid()}) is writing it)"
    assert busy in err
    assert outcomes(out) == {"step-1": "scored"}
    assert [path.name for path in served_paths(events)] == ["step-1"]


def test_until_idle_does_not_end_the_watch_while_a_checkpoint_settles_or_awaits_its_retry(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --until-idle shorter than `settle` (README: `--until-idle 90`; `settle` defaults to
    60) the last checkpoint, still being written, was left `waiting` and the exit was 0; with
    --until-idle shorter than --poll a failed checkpoint was never retried."""
    config, events = watch_config(tmp_path, fake, settle=1.5)
    write_checkpoint(tmp_path / "checkpoints" / "step-1")  # just written: it settles for 1.5 s
    flags = ("--watch", "--poll", "0.1", "--until-idle", "0.3")
    code, out, err = mtbench(capsys, "run", "-c", str(config), *flags)
    assert code == 0, err
    assert outcomes(out) == {"step-1": "scored"}

    write_checkpoint(tmp_path / "checkpoints" / "step-2-broken")  # its server never starts
    flags = ("--watch", "--poll", "1", "--until-idle", "0.3")
    code, out, err = mtbench(capsys, "run", "-c", str(config), *flags)
    assert code == 1, err
    assert "step-2-broken  failed          2" in out  # max_checkpoint_attempts = 2
    assert [path.name for path in served_paths(events)] == ["step-1"]


def test_a_checkpoint_deleted_after_a_failed_run_is_gone_not_retrying(
    tmp_path: Path, fake: FakeServer
) -> None:
    """A trainer keeping its last few checkpoints deleted one whose first run had failed: the
    watcher said `retrying` (it never could) and exited 1, as if it had failed for good."""
    config, _ = watch_config(tmp_path, fake, settle=0, max_checkpoint_attempts=3)
    broken = tmp_path / "checkpoints" / "step-1-broken"
    write_checkpoint(broken)
    flags = ("--watch", "--poll", "2", "--until-idle", "1")
    watcher = start_engine("run", "-c", str(config), *flags)
    try:
        wait_until(lambda: failures(tmp_path / "store.sqlite"), timeout=60)
        shutil.rmtree(broken)
        out, err = ended(watcher, timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, err
    (line,) = [line for line in out.splitlines() if line.startswith("step-1-broken ")]
    assert line.split()[:3] == ["step-1-broken", "gone", "1"]
    assert "no longer matches the checkpoints glob, after 1 failed run(s): server: " in line


def failures(store: Path) -> int:
    return count(store, "failures")


def stored_runs(store: Path) -> int:
    return count(store, "runs")


def count(store: Path, table: str) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store) as db:
            return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:  # being created
        return 0


def test_a_stop_file_the_watcher_could_never_see_is_refused_at_start(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--stop-file ""` (an unset shell variable) is `.`, there already: the watcher stopped
    before it began, exit 0, nothing scored. A stop file in a directory the watcher may not
    search stopped it with an internal error at its first poll."""
    config, _ = watch_config(tmp_path, fake)
    code, _, err = mtbench(capsys, "run", "-c", str(config), *WATCH, "--stop-file", "")
    assert code == 2
    assert "--stop-file needs a path" in err
    too_long = str(tmp_path / ("D" * 300))
    code, _, err = mtbench(capsys, "run", "-c", str(config), *WATCH, "--stop-file", too_long)
    assert code == 2
    assert "cannot look for it (File name too long)" in err
    assert not (tmp_path / "store.sqlite").exists()


def test_a_stop_file_whose_directory_cannot_be_searched_is_refused_at_start(
    tmp_path: Path, fake: FakeServer
) -> None:
    config, _ = watch_config(tmp_path, fake)
    locked = tmp_path / "locked"
    locked.mkdir()
    prefix = unprivileged(locked, 0o700)
    argv = [*prefix, sys.executable, "-m", "engine", "run", "-c", str(config), *WATCH]
    watcher = subprocess.Popen(
        [*argv, "--stop-file", str(locked / "STOP")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = ended(watcher, timeout=60)
    assert watcher.returncode == 2, err
    assert "cannot look for it (Permission denied)" in err


def test_sighup_stops_a_watcher_as_sigterm_does_and_nohup_keeps_it_going(
    tmp_path: Path, fake: FakeServer
) -> None:
    """A watcher started over ssh gets SIGHUP when the connection drops: it died on the spot,
    the judgments in flight (paid for) thrown away and its run left `running`. Under `nohup`
    (SIGHUP ignored from the start) it must go on."""
    config, events = watch_config(tmp_path, fake, settle=0)
    fake.configure(latency_median=1.0)  # the judge is slow: judgments are in flight
    write_checkpoint(tmp_path / "checkpoints" / "step-1")
    watcher = start_engine("run", "-c", str(config), "--watch", "--poll", "0.1")
    wait_until(lambda: served_paths(events), timeout=60)
    wait_until(lambda: fake.stats()["by_kind"]["judge"], timeout=60)
    watcher.send_signal(signal.SIGHUP)
    _, err = ended(watcher, timeout=60)
    assert watcher.returncode == 129, err
    assert "SIGHUP: stopping; finishing the requests in flight" in err
    assert "resume with: mtbench run -c" in err
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        (status,) = db.execute("SELECT status FROM runs").fetchone()
        (judged,) = db.execute("SELECT COUNT(*) FROM judgments").fetchone()
    assert status == "interrupted"
    assert judged == fake.stats()["by_kind"]["judge"]  # every judgment asked for was kept

    fake.configure(latency_median=0.005)
    ignored = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "-c", str(config), *WATCH, "--until-idle", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    wait_until(lambda: stored_runs(tmp_path / "store.sqlite") == 2, timeout=60)
    ignored.send_signal(signal.SIGHUP)
    out, err = ended(ignored, timeout=60)
    assert ignored.returncode == 0, err
    assert outcomes(out) == {"step-1": "scored"}


def test_a_thousand_checkpoints_waiting_make_a_status_line_not_a_page(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each poll's line named every waiting checkpoint: 40 kB a poll for a run that keeps a
    thousand checkpoints without their marker. The line names ten; --json lists them all."""
    config, _ = watch_config(tmp_path, fake)
    for step in range(1, 1001):
        write_checkpoint(tmp_path / "checkpoints" / f"step-{step}", marker=False)
    code, out, err = mtbench(capsys, "run", "-c", str(config), *WATCH, "--until-idle", "0.5")
    assert code == 0, err
    line = err.splitlines()[-1]
    assert line.startswith("watch: 0 scored; waiting: step-1 (no config.json yet), step-2 (")
    assert line.endswith("step-10 (no config.json yet), and 990 more")
    assert len(outcomes(out)) == 1000  # the outcome table still names each one
    flags = ("--watch", "--poll", "0.1", "--until-idle", "0.5", "--json")
    code, _, err = mtbench(capsys, "run", "-c", str(config), *flags)
    assert code == 0, err
    (last,) = [line for line in err.splitlines() if '"watch"' in line][-1:]
    assert len(orjson.loads(last)["watch"]["waiting"]) == 1000


def test_the_trainers_last_checkpoint_is_scored_before_its_stop_file_ends_the_watch(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trainer writes its last checkpoint, then DONE: the watcher saw DONE at its next poll
    and ended at once, exit 0, the last checkpoint (still settling) not scored nor listed."""
    config, events = watch_config(tmp_path, fake, settle=1)
    write_checkpoint(tmp_path / "checkpoints" / "step-1000")  # the last, just written
    write_checkpoint(tmp_path / "checkpoints" / "step-1100", marker=False)  # never completed
    stop = tmp_path / "DONE"
    stop.touch()
    code, out, err = mtbench(capsys, "run", "-c", str(config), *WATCH, "--stop-file", str(stop))
    assert code == 0, err
    assert "watch ended (stop file); runs: 1" in out
    assert outcomes(out) == {"step-1000": "scored", "step-1100": "waiting"}
    assert [path.name for path in served_paths(events)] == ["step-1000"]


def test_a_restarted_watcher_stops_what_a_killed_one_left_running_before_anything_lands(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Leftover servers (a worker that outlived its leader, a Slurm job) were reaped by the next
    run, and a restarted watcher runs nothing until a checkpoint lands: hours of a GPU held."""
    events = tmp_path / "events.jsonl"
    server = f"{SERVED_FAKE} {shlex.quote(str(events))} {{path}} --port {{port}} --latency-median 5"
    serve = f"sh -c {shlex.quote(f'sleep 300 & exec {server}')}"  # a worker in its group
    sweep = {"serve": serve, "checkpoints": "checkpoints/step-*", "ready_marker": "config.json"}
    judge = {"name": "judge-w", "base_url": fake.base_url}
    config = write_config(tmp_path, models=[{**sweep, "settle": 0}], judge=judge, questions=[81])
    write_checkpoint(tmp_path / "checkpoints" / "step-1")
    killed = start_engine("run", "-c", str(config), "--watch", "--poll", "0.1")
    try:
        wait_until(lambda: served_paths(events), timeout=60)
        with sqlite3.connect(tmp_path / "store.sqlite") as db:
            (group,) = db.execute("SELECT pgid FROM servers").fetchone()
    finally:
        killed.kill()
        killed.wait()
    try:
        wait_until(lambda: group_members(group) == 1, timeout=30)  # the kernel stopped the leader
        (tmp_path / "checkpoints" / "step-1" / "config.json").unlink()  # nothing to run now
        code, _, err = mtbench(capsys, "run", "-c", str(config), *WATCH, "--until-idle", "0.3")
        assert code == 0, err
        assert "by a run that did not stop it" in caplog.text
        wait_until(lambda: group_members(group) == 0, timeout=30)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def group_members(group: int) -> int:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return 0
    return len(subprocess.run(["pgrep", "-g", str(group)], capture_output=True).stdout.split())


def test_a_checkpoint_appearing_after_the_first_look_settles_by_the_watchers_own_clock(
    tmp_path: Path,
) -> None:
    """A trainer on another node writes to NFS, whose server stamps change times with its own
    clock: five minutes behind ours, a checkpoint first seen mid-write looked five minutes
    old, complete at first sight (settle 60). Only what the first look finds (a restarted
    watcher's backlog) is judged by its change times."""
    checkpoints = readiness_sweep(tmp_path, settle=60)
    monotonic, wall = Clock(), Clock()
    tracker = ReadinessTracker(monotonic, wall)
    old = tmp_path / "ckpt" / "step-1"
    old.mkdir(parents=True)
    wall.now = os.stat(old).st_ctime + 300
    assert tracker.waiting_for(checkpoints, "step-1", old) is None  # the backlog: at once
    tracker.started()
    new = tmp_path / "ckpt" / "step-2"
    new.mkdir()
    wall.now = os.stat(new).st_ctime + 300  # the file server's clock is 5 minutes behind
    assert tracker.waiting_for(checkpoints, "step-2", new) == "settling, 60 s"
    monotonic.now += 60
    assert tracker.waiting_for(checkpoints, "step-2", new) is None
