"""The config keys of reasoning endpoints, checked together at load: `reasoning`, `thinking`.

OpenAI's reasoning models and Claude's extended thinking refuse a temperature (and top_p, top_k),
and a thinking budget must leave room for the answer under max_tokens. A config that would earn
those 400s from the API on every request is refused at load instead, naming the key to change.
`reasoning` defaults from the model string (`engine.reasoning`); a judge or model with `thinking`
and no `max_tokens` gets its default max_tokens on top of the budget.
"""

from __future__ import annotations

from typing import Any, NoReturn, Protocol

from engine.config_schema import MAX_TOKENS
from engine.reasoning import is_reasoning_model

__all__ = ["TableValues", "reasoning_options"]


class TableValues(Protocol):
    """One config table's values, and how to refuse one of them (`engine.config`'s checker)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def fail(self, key: str, value: Any, problem: str) -> NoReturn: ...


def reasoning_options(
    table: TableValues, api: str, model: str, default_max_tokens: int
) -> dict[str, Any]:
    """`reasoning` (defaulted from the model string), and what reasoning and thinking imply:
    no temperature, and a max_tokens that leaves room for the answer after the thinking."""
    _check_api(table, api)
    reasoning = table.get("reasoning", api == "openai" and is_reasoning_model(model))
    thinking = table.get("thinking")
    options: dict[str, Any] = {"reasoning": reasoning}
    if not reasoning and thinking is None:
        return options
    why = "OpenAI's reasoning models take" if reasoning else "Claude with extended thinking takes"
    if table.get("temperature") is not None:
        unless = "; or set reasoning = false if this model takes one" if reasoning else ""
        table.fail("temperature", table.get("temperature"), f"{why} no temperature{unless}")
    refused = "top_p" if reasoning else "top_k"
    if refused in (table.get("extra_body") or {}):
        table.fail("extra_body", table.get("extra_body"), f"{why} no {refused}; remove it")
    options["temperature"] = None
    if thinking is not None:
        options["max_tokens"] = _thinking_max_tokens(table, thinking, default_max_tokens)
    return options


def _thinking_max_tokens(table: TableValues, thinking: int, default: int) -> int:
    max_tokens: int = table.get("max_tokens", min(MAX_TOKENS, thinking + default))
    if thinking >= max_tokens:
        table.fail(
            "max_tokens",
            max_tokens,
            f"must be above thinking = {thinking} (it caps thinking and answer together); "
            "raise max_tokens",
        )
    return max_tokens


def _check_api(table: TableValues, api: str) -> None:
    """Each reasoning key belongs to one API; the other would refuse it or ignore it."""
    if api == "anthropic":
        if table.get("reasoning"):
            table.fail("reasoning", True, "Claude reasons with thinking = BUDGET; remove it")
        if table.get("reasoning_effort") is not None:
            table.fail(
                "reasoning_effort",
                table.get("reasoning_effort"),
                "this is OpenAI's key; Claude takes thinking = BUDGET",
            )
    elif table.get("thinking") is not None:
        table.fail(
            "thinking",
            table.get("thinking"),
            'extended thinking is Anthropic\'s (api = "anthropic"); OpenAI reasoning models '
            "take reasoning_effort",
        )
