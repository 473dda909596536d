"""Every served model's log is a file of its own, however alike two labels are once made file-safe.

`step-1 a` and `step-1_a` both became `servers/step-1_a.log`, opened for append: two servers wrote
into one file, and one's failure read the other's lines. A log's name is now the label made
file-safe plus a short hash of the label itself.
"""

from __future__ import annotations

import shlex
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine.serving.sweep import server_log_stem
from tests.support.runconfig import mtbench, write_config
from tests.support.served_fake import COMMAND as SERVED_FAKE


def served(tmp_path: Path, name: str, checkpoint: str) -> dict[str, Any]:
    events = shlex.quote(str(tmp_path / "events.jsonl"))
    serve = f"{SERVED_FAKE} {events} {checkpoint} --port {{port}} --latency-median 0.005"
    return {"name": name, "serve": serve, "ready_timeout": 30}


def test_labels_alike_once_made_file_safe_get_logs_of_their_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both servers at once (two slots); the first one's checkpoint is broken.
    models = [served(tmp_path, "step-1 a", "broken-a"), served(tmp_path, "step-1_a", "fine")]
    config = write_config(tmp_path, models=models, questions=[81], server_slots=2)
    code, out, err = mtbench(capsys, "generate", "-c", str(config))
    assert code == 1, out + err
    broken = tmp_path / "servers" / f"{server_log_stem('step-1 a')}.log"
    fine = tmp_path / "servers" / f"{server_log_stem('step-1_a')}.log"
    assert sorted((tmp_path / "servers").iterdir()) == sorted([broken, fine])
    assert "bad magic number" in broken.read_text() and "LISTENING" not in broken.read_text()
    assert "LISTENING" in fine.read_text() and "bad magic number" not in fine.read_text()
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        answered = dict(db.execute("SELECT model, COUNT(*) FROM answers GROUP BY model"))
        failed = dict(db.execute("SELECT model, COUNT(*) FROM failures GROUP BY model"))
    assert answered == {"step-1_a": 2} and failed == {"step-1 a": 2}


def test_a_log_name_is_the_readable_label_and_a_hash_that_tells_alike_labels_apart() -> None:
    alike = ["step-1 a", "step-1_a", "step-1/a", "Step-1_a", "step-1\ta"]
    stems = [server_log_stem(label) for label in alike]
    assert len(set(stems)) == len(alike)
    assert len({stem.lower() for stem in stems}) == len(alike)  # case-insensitive file systems
    assert server_log_stem("step-1 a").startswith("step-1_a.")
    assert all("/" not in stem and " " not in stem for stem in stems)
    # A replica's suffix and a label that ends like one
    assert server_log_stem("a", "-replica2") != server_log_stem("a-replica2")
    # Labels beyond a file name's length, alike in their first 100 bytes
    long = [server_log_stem("é" * 200 + tail) for tail in ("x", "y")]
    assert long[0] != long[1] and all(len(stem.encode()) <= 110 for stem in long)
    assert server_log_stem("step-1 a") == server_log_stem("step-1 a")  # stable: reruns append
