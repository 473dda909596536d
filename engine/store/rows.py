"""Every row the store holds and every SQL statement the engine runs, with named columns."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CompletionEstimate"]


@dataclass(frozen=True, slots=True)
class CompletionEstimate:
    """Plan: the mean completion tokens of a label's earlier answers (reasoning included) and of
    their reasoning tokens, when the server reported any."""

    completion: float
    reasoning: float | None = None
