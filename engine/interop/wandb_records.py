"""What an offline W&B run wrote: its history, config and summary, read from its `.wandb` file.

An offline run (`WANDB_MODE=offline`) has no server to ask which steps it already holds, and
each `wandb.init` of it starts a new `offline-run-*-<id>` folder that `wandb sync` later merges
into one run. So a re-export reads the earlier folders of the same run id to log only new steps,
and the tests read a run back the same way. The file is a LevelDB-style log (W&B's own format
since its first versions: a 7-byte `:W&B` header, then 32 KiB blocks of records, each a 7-byte
header of checksum, length and type, a record split across blocks as first/middle/last pieces)
of `wandb_internal_pb2.Record` protobufs, which W&B ships with its library.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["OfflineRun", "offline_runs", "read_offline_run"]

_MAGIC = b":W&B"
_FILE_HEADER = 7
_BLOCK = 32 * 1024
_RECORD_HEADER = struct.Struct("<IHB")  # checksum, length, type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """One offline folder's records: `history` maps each logged step to its values."""

    run_id: str = ""
    project: str = ""
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: dict[int, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def offline_runs(wandb_dir: Path, run_id: str) -> list[Path]:
    """The `.wandb` files of every offline folder of `run_id` under `wandb_dir`, oldest first."""
    return sorted(wandb_dir.glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))


def read_offline_run(path: Path) -> OfflineRun:
    from wandb.proto import wandb_internal_pb2

    run = OfflineRun()
    for payload in _payloads(path.read_bytes()):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run_id, run.project = record.run.run_id, record.run.project
            run.name = record.run.display_name
            _update(run.config, record.run.config.update)
        elif kind == "config":
            _update(run.config, record.config.update)
        elif kind == "history":
            values: dict[str, Any] = {}
            _update(values, record.history.item)
            run.history.setdefault(record.history.step.num, {}).update(values)
        elif kind == "summary":
            _update(run.summary, record.summary.update)
    return run


def _update(target: dict[str, Any], items: Any) -> None:
    for item in items:
        key = item.key or "/".join(item.nested_key)
        target[key] = orjson.loads(item.value_json)


def _payloads(data: bytes) -> Iterator[bytes]:
    if data[: len(_MAGIC)] != _MAGIC:
        raise ValueError("not a W&B run file (no :W&B header)")
    position, pending = _FILE_HEADER, b""
    while position + _RECORD_HEADER.size <= len(data):
        left_in_block = _BLOCK - position % _BLOCK
        if left_in_block < _RECORD_HEADER.size:  # a block's tail too short for a header: padding
            position += left_in_block
            continue
        _, length, kind = _RECORD_HEADER.unpack_from(data, position)
        start = position + _RECORD_HEADER.size
        piece = data[start : start + length]
        position = start + length
        if kind == _FULL:
            yield piece
        elif kind == _FIRST:
            pending = piece
        elif kind == _MIDDLE:
            pending += piece
        elif kind == _LAST:
            yield pending + piece
            pending = b""
        else:  # zero padding at the end of a block or of a file not yet flushed
            position += left_in_block - _RECORD_HEADER.size - length
