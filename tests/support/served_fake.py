"""A fake model server as a checkpoint sweep would launch it, logging when it starts and stops.

    env PYTHONPATH=REPOSITORY python -m tests.support.served_fake EVENTS.jsonl CHECKPOINT \
        --port N [fake server flags]

(`COMMAND` is that command's start, ready for a serve template.) Appends {"event": "start"|"stop",
"checkpoint", "t"} lines to EVENTS.jsonl, so a test can check that servers ran one after another.
A checkpoint whose path contains "broken" exits at start-up with an error message, like a server
given a corrupt checkpoint.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import orjson

REPOSITORY = Path(__file__).resolve().parents[2]
COMMAND = (
    f"env PYTHONPATH={shlex.quote(str(REPOSITORY))} {shlex.quote(sys.executable)} "
    "-m tests.support.served_fake"
)


def checkpoint_folder(directory: Path, names: list[str]) -> Path:
    """`directory/checkpoints` holding one `NAME.bin` per name: a sweep's checkpoints as files,
    their content never read (the served fake only logs which one it serves)."""
    folder = directory / "checkpoints"
    folder.mkdir()
    for name in names:
        (folder / f"{name}.bin").write_bytes(b"weights")
    return folder


def record(events: Path, event: str, checkpoint: str) -> None:
    record_event(events, event, checkpoint)


def record_event(events: Path, event: str, checkpoint: str, **fields: object) -> None:
    line = orjson.dumps({"event": event, "checkpoint": checkpoint, "t": time.time(), **fields})
    with events.open("ab") as handle:
        handle.write(line + b"\n")


def main() -> int:
    events, checkpoint, *flags = sys.argv[1:]
    if "broken" in checkpoint:
        print(f"error: cannot load checkpoint {checkpoint}: bad magic number", flush=True)
        return 3
    from benchmarks.fake import main as serve

    record(Path(events), "start", checkpoint)
    try:
        return serve(flags)
    finally:
        record(Path(events), "stop", checkpoint)


if __name__ == "__main__":
    raise SystemExit(main())
