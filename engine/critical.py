"""Stretches that a cancellation must not cut short, and who waits for them to end.

Opening or closing a database connection through aiosqlite hands work to its thread; cancelled
half-way, that thread is left without a loop and writes a traceback. The store marks such a
stretch `critical()`; whoever turns a signal into a cancellation (the CLI, `engine.cli.interrupts`)
holds a first signal while `in_critical()` and is told by the callback it registered with
`when_critical_ends` as soon as the last stretch ends. Without such a registration, a stretch
only counts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = ["critical", "in_critical", "when_critical_ends"]

_depth = 0  # nesting depth of `critical` stretches
_on_end: Callable[[], None] | None = None


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """A stretch a first signal must not cut short; it takes effect as soon as the stretch ends."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _on_end is not None:
            _on_end()


def in_critical() -> bool:
    return _depth > 0


def when_critical_ends(callback: Callable[[], None] | None) -> None:
    """Call `callback` each time the last open stretch ends (None: call nothing)."""
    global _on_end
    _on_end = callback
