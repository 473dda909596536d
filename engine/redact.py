"""API keys go into request headers and nowhere else: the registry of keys, and their redaction.

A server may hand a key back: an error body quoting it ("Incorrect API key provided: sk-..."), an
answer echoing the request, a response header, a redirect's Location. The engine masks every key it
knows in whatever it prints, logs or stores, at a few choke points rather than at every `print`:
request-error messages (`engine.errors`), answers and failure rows before they are stored or reused
(`engine.run.scheduler`), every log record (`redact_log_records`), the CLI's stdout and stderr
(`RedactingStream`) and the output of the model servers it starts (`engine.serving.serve`).

The registry is filled by `engine.config` as it reads each `api_key_env` variable. Values shorter
than MIN_SECRET_LENGTH (placeholders such as `EMPTY` for a local vLLM) are not secrets, and masking
them would rewrite ordinary words in answers. A server's text is often cut before it reaches a
message (an 80-character excerpt of a malformed body), which can cut a key in two; so a run of at
least FRAGMENT_LENGTH characters from either end of a key is masked too.
"""

from __future__ import annotations

import logging
from typing import Any, TextIO, TypeVar

__all__ = [
    "FRAGMENT_LENGTH",
    "MIN_SECRET_LENGTH",
    "RedactingStream",
    "redact",
    "redact_fields",
    "redact_log_records",
    "register_secret",
]

MIN_SECRET_LENGTH = 8
FRAGMENT_LENGTH = 12

_Value = TypeVar("_Value")


class _Secret:
    __slots__ = ("head", "mask", "part_mask", "tail", "value")

    def __init__(self, value: str, source: str) -> None:
        self.value = value
        self.mask = f"[redacted ${source}]"
        self.part_mask = f"[redacted part of ${source}]"
        fragment = min(FRAGMENT_LENGTH, len(value))
        self.head = value[:fragment]
        self.tail = value[-fragment:]

    def redact(self, text: str) -> str:
        if self.head not in text and self.tail not in text:
            return text
        text = text.replace(self.value, self.mask)
        text = self._mask_from_head(text)
        return self._mask_to_tail(text)

    def _mask_from_head(self, text: str) -> str:
        """Mask each run of the key's first characters (a key cut short at its end)."""
        pieces: list[str] = []
        start = 0
        while (found := text.find(self.head, start)) != -1:
            length = len(self.head)
            while (
                length < len(self.value)
                and text[found + length : found + length + 1] == (self.value[length])
            ):
                length += 1
            pieces += [text[start:found], self.part_mask]
            start = found + length
        return "".join([*pieces, text[start:]])

    def _mask_to_tail(self, text: str) -> str:
        """Mask each run of the key's last characters (a key cut short at its start)."""
        pieces: list[str] = []
        end = len(text)
        while (found := text.rfind(self.tail, 0, end)) != -1:
            begin = found
            matched = len(self.tail)
            while (
                matched < len(self.value)
                and begin > 0
                and text[begin - 1] == (self.value[-matched - 1])
            ):
                begin -= 1
                matched += 1
            pieces += [text[found + len(self.tail) : end], self.part_mask]
            end = begin
        return "".join([text[:end], *reversed(pieces)])


_secrets: dict[str, _Secret] = {}
_ordered: list[_Secret] = []  # longest first, so a key inside another key is masked last


def register_secret(value: str, source: str) -> None:
    """Remember a key read from the environment variable `source`, to mask it from now on."""
    value = value.strip()
    if len(value) < MIN_SECRET_LENGTH or value in _secrets:
        return
    _secrets[value] = _Secret(value, source)
    _ordered[:] = sorted(_secrets.values(), key=lambda secret: -len(secret.value))


def redact(text: str) -> str:
    """`text` with every known key (or a long enough piece of one) masked."""
    for secret in _ordered:
        text = secret.redact(text)
    return text


def redact_fields(value: _Value, *names: str) -> _Value:
    """A copy of a dataclass instance with its string fields `names` redacted (itself if clean)."""
    if not _ordered:
        return value
    from dataclasses import replace  # here: the CLI imports this module before taking signals

    changes: dict[str, Any] = {}
    for name in names:
        field = getattr(value, name)
        if isinstance(field, str) and (clean := redact(field)) != field:
            changes[name] = clean
    return replace(value, **changes) if changes else value  # type: ignore[type-var]


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: the handler reports it as logging always does
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        trace = logging.Formatter().formatException(record.exc_info)
        if (clean_trace := redact(trace)) != trace:
            record.exc_text = clean_trace
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def redact_log_records() -> None:
    """Mask keys in every log record created from now on, whoever logs it and wherever it goes.

    A filter on the root logger would not see records propagated from the engine's own loggers
    (filters run only where a record is logged), and a filter on handlers would miss handlers added
    later (pytest's, a library user's); the record factory is the one place every record passes.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_secrets", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _ordered:
            _redact_record(record)
        return record

    make_record.redacts_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)


class RedactingStream:
    """A text stream that masks keys in everything written to it (the CLI's stdout and stderr).

    Everything else (isatty, fileno, encoding, ...) is the wrapped stream's, so a terminal is
    still recognised as one.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(redact(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
