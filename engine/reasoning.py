"""Reasoning endpoints: which models reason by default, how a judge's settings are recorded, and
what to tell the user when a server refuses a parameter that only reasoning models refuse.

OpenAI's reasoning models (the o-series, GPT-5) answer `max_tokens` and any temperature but 1 with
a 400; they take `max_completion_tokens` and `reasoning_effort` instead. The engine cannot ask the
API which models those are, so it knows a small list of model-string patterns (`reasoning` on an
endpoint overrides it either way), and turns the 400 of a model missing from the list into one
line naming the key to set. A judge's reasoning settings change its grades, so they are stored
with every judgment and shown with its identity; so is a reference answer set of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

import orjson

from engine.chat import reasoning_settings

if TYPE_CHECKING:
    from engine.config import EndpointConfig

__all__ = [
    "REASONING_EFFORTS",
    "REASONING_MODEL_PATTERNS",
    "describe_settings",
    "is_reasoning_model",
    "judge_settings",
    "judge_settings_json",
    "stored_settings",
    "unsupported_parameter_hint",
]

# Matched against the model string after its last `/` (`openai/gpt-5` behind a proxy counts).
REASONING_MODEL_PATTERNS = ("o1*", "o3*", "o4*", "gpt-5*")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
# OpenAI's wording: "Unsupported parameter: 'max_tokens' ..." / "Unsupported value: 'temperature'".
_UNSUPPORTED = re.compile(r"Unsupported (parameter|value): '(\w+)'")
_REASONING_REFUSES = ("max_tokens", "temperature", "top_p")


def is_reasoning_model(model: str) -> bool:
    """Whether an OpenAI model string names a reasoning model (the default of `reasoning`)."""
    name = model.rsplit("/", 1)[-1]
    return any(fnmatchcase(name, pattern) for pattern in REASONING_MODEL_PATTERNS)


def judge_settings(endpoint: EndpointConfig, reference: str | None = None) -> dict[str, Any] | None:
    """The settings stored with a judge's judgments (None when it has none): its reasoning
    settings, and `reference`, the reference answer set the judgment showed when it was not
    FastChat's own (it changes grades of math, reasoning and coding answers just as much)."""
    settings: dict[str, Any] = {} if reference is None else {"reference": reference}
    settings |= reasoning_settings(endpoint.reasoning, endpoint.reasoning_effort, endpoint.thinking)
    return settings or None


def judge_settings_json(endpoint: EndpointConfig, reference: str | None = None) -> str | None:
    """`judge_settings` as stored in `judgments.judge_settings` (JSON, keys sorted)."""
    settings = judge_settings(endpoint, reference)
    return (
        None if settings is None else orjson.dumps(settings, option=orjson.OPT_SORT_KEYS).decode()
    )


def describe_settings(stored: Iterable[str]) -> str:
    """Stored settings (JSON objects) as `key=value`s, e.g. "reasoning=true,
    reasoning_effort=high"; several sets (a judge re-run with other settings) joined by " | "."""
    return " | ".join(_settings_text(text) for text in stored)


def stored_settings(stored: str) -> dict[str, Any] | str:
    """Settings as stored, read back: the object, or the text itself if it is not one."""
    try:
        settings = orjson.loads(stored)
    except orjson.JSONDecodeError:
        return stored
    return settings if isinstance(settings, dict) else stored


def _settings_text(stored: str) -> str:
    settings = stored_settings(stored)
    if isinstance(settings, str):
        return settings
    return ", ".join(f"{key}={_value_text(value)}" for key, value in settings.items())


def _value_text(value: object) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def unsupported_parameter_hint(message: str, endpoint: EndpointConfig) -> str | None:
    """The config change a 400 about an unsupported parameter asks for, or None."""
    match = _UNSUPPORTED.search(message)
    if match is None:
        return None
    kind, parameter = match.groups()
    table = endpoint.table()
    if parameter in _REASONING_REFUSES and not endpoint.reasoning:
        return (
            f"{endpoint.model} looks like a reasoning model, which takes no {parameter}: set "
            f"reasoning = true on {table}"
        )
    if parameter == "reasoning_effort" and kind == "value":  # it takes others ("minimal", ...)
        return (
            f"this model takes no reasoning_effort = {endpoint.reasoning_effort!r}: set "
            f"reasoning_effort on {table} to a value it supports"
        )
    if parameter == "reasoning_effort":
        return f"this model takes no reasoning_effort: remove it from {table}"
    return None
