"""The one refusal of a judge label the store does not hold, for every command that takes one.

`show`, `report` and `export` each take `--judge LABEL`. A label the store has no judgments by (a
typo, another bench) is refused with the same line everywhere, listing the labels it does hold,
so the user can correct the command at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.errors import InputError

__all__ = ["no_such_judge"]


def no_such_judge(
    store_path: object, bench: str, judge: str, labels: Iterable[str], advice: str = ""
) -> InputError:
    """The error for `--judge judge`: the labels judging `bench` in the store, then `advice`."""
    names = ", ".join(sorted({repr(label) for label in labels})) or "none"
    return InputError(
        f"{store_path}: no judgments by judge {judge!r} for bench {bench}; "
        f"judges in the store: {names}{advice}"
    )
