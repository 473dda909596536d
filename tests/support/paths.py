"""Where the third-party MT-Bench data lives: beside the repository, never inside it."""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared"
MTBENCH_DATA = SHARED / "mtbench-data"
FASTCHAT_REFERENCE = SHARED / "fastchat-reference"
