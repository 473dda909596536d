"""A checkpoint rewritten after it was scored is reported, never silently kept (README, "Watch
mode").

Answers are cached under their label (`step-100`), not the checkpoint's content: a trainer that
writes `step-100/` again (a resumed run, a store reused for a new training run) used to get the
old scores from every later run, and a watcher never looked at it again. Each test runs `mtbench`
as a subprocess against the fake server, serving checkpoints with `tests.support.served_fake`,
which logs every server start.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import orjson

from engine.run.checkpoint_contents import changed_file, checkpoint_files
from tests.support.engineproc import ended, start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.test_watch import server_starts, stored, watch_config, write_checkpoint

ANSWERS = "SELECT model, COUNT(*) FROM answers GROUP BY model"
CHANGED = "changed after scoring"


def rewrite(folder: Path, name: str = "model.safetensors") -> None:
    """The same file written again by another training run: same size, a later mtime."""
    shard = folder / name
    before = shard.stat().st_mtime_ns
    shard.write_bytes(shard.read_bytes()[::-1])
    os.utime(shard, ns=(before + 5_000_000_000, before + 5_000_000_000))


def warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if CHANGED in line]


def generated(fake: FakeServer) -> int:
    return int(fake.stats()["by_kind"].get("generate", 0))


def test_a_checkpoint_rewritten_while_watched_is_reported_once_and_not_run_again(
    tmp_path: Path, fake: FakeServer
) -> None:
    config, events = watch_config(tmp_path, fake, settle=0)
    checkpoints = tmp_path / "checkpoints"
    write_checkpoint(checkpoints / "step-100")
    write_checkpoint(checkpoints / "step-200")
    (checkpoints / "step-200" / "optimizer.pt").write_bytes(b"state")
    stop = tmp_path / "STOP"
    store = tmp_path / "store.sqlite"
    watcher = start_engine(
        "run", "-c", str(config), "--watch", "--poll", "0.1", "--stop-file", str(stop), "--json",
    )  # fmt: skip
    try:
        wait_until(lambda: stored_judgments(store) == {"step-100": 4, "step-200": 4}, timeout=60)
        sent = generated(fake)
        rewrite(checkpoints / "step-100")  # scored, then written again
        (checkpoints / "step-200" / "optimizer.pt").unlink()  # a removed file is no change
        time.sleep(1.0)  # ten polls
        stop.touch()
        out, err = ended(watcher, timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, err
    outcomes = {c["checkpoint"]: c for c in orjson.loads(out)["checkpoints"]}
    assert {label: c["outcome"] for label, c in outcomes.items()} == {
        "step-100": "changed",
        "step-200": "scored",
    }
    reason = outcomes["step-100"]["reason"]
    assert reason.startswith("step-100 changed after scoring (model.safetensors is not the file")
    assert "give the new content a new label" in reason
    assert "no mtbench command does that" in reason
    (warning,) = warnings(err)  # reported once, not at every poll
    assert orjson.loads(warning)["log"] == reason
    statuses = [orjson.loads(line)["watch"] for line in err.splitlines() if '"watch"' in line]
    assert statuses[-1]["changed"] == ["step-100"]
    assert statuses[-1]["scored"] == ["step-200"]
    assert generated(fake) == sent  # nothing sent again
    assert sorted(name for name, _ in server_starts(events)) == ["step-100", "step-200"]
    assert stored(store, ANSWERS) == {"step-100": 4, "step-200": 4}


def stored_judgments(store: Path) -> dict[str, int]:
    if not store.exists():
        return {}
    try:
        return stored(store, "SELECT model, COUNT(*) FROM judgments GROUP BY model")
    except sqlite3.OperationalError:  # created, not yet migrated
        return {}


def run(config: Path, *flags: str) -> tuple[int, str, str]:
    process = start_engine("run", "-c", str(config), *flags)
    out, err = ended(process, timeout=120)
    return process.returncode, out, err


def test_a_plain_run_warns_once_per_rewritten_checkpoint_and_a_restarted_watcher_skips_it(
    tmp_path: Path, fake: FakeServer
) -> None:
    config, events = watch_config(tmp_path, fake, settle=0)
    checkpoints = tmp_path / "checkpoints"
    write_checkpoint(checkpoints / "step-100")
    write_checkpoint(checkpoints / "step-200")
    code, _, err = run(config)
    assert code == 0, err
    assert not warnings(err)
    code, _, err = run(config)  # unchanged: nothing reported, nothing sent
    assert code == 0, err
    assert not warnings(err)
    sent = generated(fake)

    rewrite(checkpoints / "step-100")
    code, out, err = run(config)
    assert code == 0, err  # a warning, not an error
    (warning,) = warnings(err)
    assert "step-100 changed after scoring (model.safetensors is not the file" in warning
    assert "error" not in out.lower()
    assert generated(fake) == sent  # the cache answered, as before: the line says so

    code, out, err = run(config, "--watch", "--poll", "0.1", "--until-idle", "1", "--json")
    assert code == 0, err
    outcomes = {c["checkpoint"]: c["outcome"] for c in orjson.loads(out)["checkpoints"]}
    assert outcomes == {"step-100": "changed", "step-200": "scored"}
    assert len(warnings(err)) == 1
    assert generated(fake) == sent
    assert sorted(name for name, _ in server_starts(events)) == ["step-100", "step-200"]


def test_deleting_a_rewritten_checkpoints_rows_as_the_readme_says_scores_it_again(
    tmp_path: Path, fake: FakeServer
) -> None:
    config, events = watch_config(tmp_path, fake, settle=0)
    write_checkpoint(tmp_path / "checkpoints" / "step-100")
    assert run(config)[0] == 0
    rewrite(tmp_path / "checkpoints" / "step-100")
    with sqlite3.connect(tmp_path / "store.sqlite") as db:  # README "Watch mode"
        db.execute("DELETE FROM answers WHERE model = 'step-100'")
        db.execute("DELETE FROM judgments WHERE model = 'step-100' OR opponent = 'step-100'")
        db.execute("DELETE FROM responses WHERE label = 'step-100'")
    code, _, err = run(config)
    assert code == 0, err
    assert not warnings(err)
    assert [name for name, _ in server_starts(events)] == ["step-100", "step-100"]  # served anew
    code, _, err = run(config)  # the new content's files are what its answers came from now
    assert code == 0, err
    assert not warnings(err)


def test_a_new_or_rewritten_file_is_a_change_and_a_removed_one_is_not(tmp_path: Path) -> None:
    checkpoint = tmp_path / "step-1"
    write_checkpoint(checkpoint)
    (checkpoint / "sub").mkdir()
    (checkpoint / "sub" / "optimizer.pt").write_bytes(b"state")
    recorded = checkpoint_files(checkpoint)
    assert recorded is not None
    assert [name for name, _, _ in recorded] == [
        "config.json",
        "model.safetensors",
        "sub/optimizer.pt",
    ]
    assert changed_file(recorded, recorded) is None
    (checkpoint / "sub" / "optimizer.pt").unlink()
    assert changed_file(recorded, checkpoint_files(checkpoint) or ()) is None
    (checkpoint / "extra.bin").write_bytes(b"x")
    assert changed_file(recorded, checkpoint_files(checkpoint) or ()) == "extra.bin"
    (checkpoint / "extra.bin").unlink()
    rewrite(checkpoint, "config.json")
    assert changed_file(recorded, checkpoint_files(checkpoint) or ()) == "config.json"
    assert checkpoint_files(tmp_path / "missing") is None


def test_a_checkpoint_holding_a_file_named_in_no_utf8_is_recorded_and_its_rewrite_reported(
    tmp_path: Path, fake: FakeServer
) -> None:
    """A file name is bytes on Linux (one copied from an old Latin-1 system: `r\\xe9sum\\xe9`):
    its record once failed every run that served the checkpoint with an internal error."""
    config, _ = watch_config(tmp_path, fake, settle=0)
    checkpoint = tmp_path / "checkpoints" / "step-100"
    write_checkpoint(checkpoint)
    odd = os.path.join(os.fsencode(checkpoint), b"notes-\xe9.txt")
    with open(odd, "wb") as file:
        file.write(b"latin-1")
    code, _, err = run(config)
    assert code == 0, err
    code, _, err = run(config)
    assert code == 0, err
    assert not warnings(err)
    before = os.stat(odd).st_mtime_ns
    os.utime(odd, ns=(before + 5_000_000_000, before + 5_000_000_000))
    code, _, err = run(config)
    assert code == 0, err
    (warning,) = warnings(err)
    assert "(notes-\\xe9.txt is not the file" in warning
