"""Text for display: escaped names, compact numbers, JSON-only stderr. Nothing mis-renders.

Model and judge names come from configs and imported files, failure messages from servers: all
untrusted. A tab, newline or NUL in one shifts every column after it or splits a line in two, an
ANSI escape can clear the screen, and a right-to-left override reverses the text that follows.
Everything printed for a human goes through `terminal_text`, which shows such characters as
visible escapes (`\\t`, `\\n`, `\\x00`, `\\u202e`) and leaves all else alone; `cell_width` measures
what is left as a terminal does (an East Asian wide character takes two cells, a combining mark
none), so tables stay aligned.

`format_number` keeps a rating of 1e23 (a judge can write one) from widening a column to 24
characters, in the terminal and in the HTML report alike.

With `--json`, every line on stderr must be JSON: `JsonLogFormatter` writes log records as
`{"log": ...}` objects, and `JsonLinesStderr` wraps any other line written to stderr (a warning, a
message printed by a library) the same way, so no plain-text line can slip in.
"""

from __future__ import annotations

import io
import logging
import math
import re
import unicodedata
from collections.abc import Sequence
from typing import TextIO

import orjson

__all__ = [
    "JsonLinesStderr",
    "JsonLogFormatter",
    "TerminalLogFormatter",
    "cell_width",
    "error_line",
    "format_dollars",
    "format_number",
    "format_table",
    "terminal_text",
]

# Beyond this magnitude fixed-point notation stops fitting a column: 1e+23, not 23 digits.
COMPACT_ABOVE = 1e6

_ASCII_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_ASCII_UNSAFE_OR_BACKSLASH = re.compile(r"[\x00-\x1f\x7f\\]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}
# Format characters (bidi overrides and isolates, zero-width joiners, BOM), line and paragraph
# separators, and lone surrogates (undecodable bytes) are invisible or move other text.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zl", "Zp", "Cs"})


def terminal_text(value: object, *, name: bool = False) -> str:
    """`value` as text that shows every character it holds and moves no other text.

    With `name=True` a backslash is doubled too, so two names that differ only in a control
    character against its escape (`a<TAB>b` and `a\\tb`) never look the same in a table.
    """
    text = str(value)
    if text.isascii():
        pattern = _ASCII_UNSAFE_OR_BACKSLASH if name else _ASCII_UNSAFE
        return pattern.sub(lambda match: _escape(match.group()), text)
    return "".join(_escape(c) if _unsafe(c, name) else c for c in text)


def _unsafe(char: str, name: bool) -> bool:
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return True
    if char == "\\":
        return name
    return code > 0x9F and unicodedata.category(char) in _INVISIBLE_CATEGORIES


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def cell_width(text: str) -> int:
    """Terminal cells `text` takes (after `terminal_text`): wide characters two, marks none."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def format_number(value: float | None, digits: int) -> str:
    """`digits` decimals, or three significant digits once that would not fit a column."""
    if value is None:
        return "-"
    if not math.isfinite(value) or abs(value) >= COMPACT_ABOVE:
        return f"{value:.3g}"
    return f"{value:.{digits}f}"


def format_dollars(cost: float | None) -> str:
    """Dollars for tables and progress lines; "-" when the endpoint has no price."""
    if cost is None:
        return "-"
    if not math.isfinite(cost) or abs(cost) >= COMPACT_ABOVE:
        return f"${cost:.3g}"
    return f"${cost:,.2f}"


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, left_columns: int = 1
) -> str:
    """Left-align the first `left_columns` columns (names), right-align the rest (numbers)."""
    cells = [[_cell(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(cell_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            _pad(cell, width, left=column < left_columns)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _pad(text: str, width: int, *, left: bool) -> str:
    padding = " " * (width - cell_width(text))
    return text + padding if left else padding + text


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format_number(value, 4)
    return terminal_text(value, name=True)


def error_line(message: str, exit_code: int, *, json_lines: bool) -> str:
    """The one line an error ends a command with: escaped text, or a JSON object with --json."""
    if json_lines:
        return orjson.dumps({"error": message, "exit_code": exit_code}).decode()
    return f"mtbench: error: {terminal_text(message)}"


class TerminalLogFormatter(logging.Formatter):
    """A log line whose message (which may quote a server) is escaped for the terminal."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = terminal_text(record.message)
        return super().formatMessage(record)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per log record: {"log": message, "level", "logger", "time"}."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "log": record.getMessage(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "time": record.created,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class JsonLinesStderr(io.TextIOBase):
    """A stderr through which only JSON lines pass: any other line becomes {"log": line}.

    Lines that already are JSON objects (progress, log records, the error line) pass unchanged.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self._pending = ""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream.fileno()

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            self._emit(line)
        self._stream.flush()

    def _emit(self, line: str) -> None:
        if line.strip():
            self._stream.write(_json_line(line) + "\n")


def _json_line(line: str) -> str:
    if line.startswith("{"):
        try:
            if isinstance(orjson.loads(line), dict):
                return line
        except orjson.JSONDecodeError:
            pass
    return orjson.dumps({"log": line}).decode()
