"""A question's texts packed for the report: JSON, gzip, base64, unpacked by the page on demand.

Answers and judge replies are nearly all of a report's bytes: a 50-checkpoint sweep's are tens of
megabytes of JSON, which the browser used to parse, whole, before it showed anything. Packed per
question they take about a third of the room (text compresses well; base64 gives back a third of
the gain), and the page's script unpacks only the question on screen, with the browser's own
`DecompressionStream`. A packed string is plain ASCII (`A-Za-z0-9+/=`), so it needs no escaping
inside the report's JSON block, and the same input packs to the same bytes (no gzip timestamp).
"""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson

__all__ = ["pack", "unpack"]

COMPRESSION_LEVEL = 6  # level 9 takes twice as long for about 2% less


def pack(value: Any) -> str:
    raw = orjson.dumps(value)
    return base64.b64encode(gzip.compress(raw, COMPRESSION_LEVEL, mtime=0)).decode("ascii")


def unpack(packed: str) -> Any:
    """What the page's script reads back (for tests and tools that read a report)."""
    return orjson.loads(gzip.decompress(base64.b64decode(packed)))
