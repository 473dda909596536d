"""Write run configs and run the `mtbench` CLI in-process, as a user would from a shell."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from engine.cli.main import main
from tests.support.paths import MTBENCH_DATA


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        # TOML strings hold control characters only as escapes.
        return '"' + "".join(_toml_char(c) for c in escaped) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def _toml_char(char: str) -> str:
    return f"\\u{ord(char):04x}" if ord(char) < 0x20 or ord(char) == 0x7F else char


def write_config(
    directory: Path,
    *,
    models: Sequence[dict[str, Any]] = (),
    judge: dict[str, Any] | None = None,
    judges: Sequence[dict[str, Any]] = (),
    name: str = "run.toml",
    **top: Any,
) -> Path:
    """A config file; `store` defaults to store.sqlite beside it, `data` to the shared data.

    A top-level value of None leaves the key out; `judges` are written as [[judge]] tables.
    """
    top.setdefault("store", str(directory / "store.sqlite"))
    top.setdefault("data", str(MTBENCH_DATA))
    lines = [f"{key} = {toml_value(value)}" for key, value in top.items() if value is not None]
    for model in models:
        lines.append("\n[[model]]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in model.items())
    if judge is not None:
        lines.append("\n[judge]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in judge.items())
    for table in judges:
        lines.append("\n[[judge]]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in table.items())
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return path


def model(name: str, base_url: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "base_url": base_url, **options}


def mtbench(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI; returns (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
