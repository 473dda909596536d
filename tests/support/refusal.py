"""What every refusal of bad input must look like: exit 2, one line naming the culprit, nothing
sent, nothing created (store, -wal, -shm, .lock, servers/), and a writable copy of the MT-Bench
data to break on purpose."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import mtbench

__all__ = ["assert_refused", "copy_data", "edit_jsonl", "store_files"]

STORE_SUFFIXES = ("", "-wal", "-shm", ".lock")


def store_files(store: Path) -> list[Path]:
    """Whatever a run would have created next to `store`, if anything exists."""
    candidates = [store.with_name(store.name + suffix) for suffix in STORE_SUFFIXES]
    candidates.append(store.parent / "servers")
    return [path for path in candidates if path.exists()]


def assert_refused(
    capsys: pytest.CaptureFixture[str],
    fake: FakeServer | None,
    store: Path,
    argv: list[str],
    *needles: str,
) -> str:
    """Run `mtbench argv`; it must exit 2 with one line holding every needle, having sent and
    created nothing. Returns the line."""
    code, out, err = mtbench(capsys, *argv)
    assert code == 2, out + err
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("mtbench: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    if fake is not None:
        assert fake.stats(arrivals=False)["requests"] == 0
    assert store_files(store) == []
    return err


def copy_data(tmp_path: Path) -> Path:
    """A private copy of the MT-Bench data dir (questions, references, judge prompts)."""
    data = tmp_path / "data"
    shutil.copytree(MTBENCH_DATA / "mt_bench", data / "mt_bench")
    shutil.copy(MTBENCH_DATA / "judge_prompts.jsonl", data)
    return data


def edit_jsonl(
    path: Path, edit: Callable[[dict[str, Any]], dict[str, Any] | None], *, raw: bool = False
) -> None:
    """Rewrite a JSONL file line by line; `edit` returns the new object, or None to drop the line.
    With `raw`, the edited objects are written with Python's float spellings (NaN, Infinity)."""
    lines = []
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        edited = edit(orjson.loads(line))
        if edited is not None:
            lines.append(_dump(edited, raw))
    path.write_text("\n".join(lines) + "\n")


def _dump(obj: dict[str, Any], raw: bool) -> str:
    if raw:
        import json

        return json.dumps(obj)
    return orjson.dumps(obj).decode()
