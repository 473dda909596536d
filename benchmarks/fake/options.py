"""The fake server's knobs, one frozen dataclass, settable from the command line or at run time.

Benchmarks and tests need to change latency, limits and faults without restarting the server, so
every option has a CLI flag (`--latency-median 0.2`) and can be merged in later from a JSON object
(`POST /admin/config`). Both paths go through the same per-type coercion and the same validation,
so a bad value is refused the same way wherever it comes from.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin, get_type_hints

__all__ = [
    "FAULT_NAMES",
    "THINKING_STYLES",
    "FakeServerOptions",
    "OptionsError",
    "ThinkingStyle",
    "add_option_flags",
    "options_from_args",
    "options_to_json",
    "updated_options",
]

FAULT_NAMES = (
    "500",
    "503",
    "429",
    "hang",
    "reset",
    "malformed",
    "truncate",
    "529",
    "stream_error",
    "slow",
)

# How an OpenAI-compatible server shows a model's thoughts: a `reasoning_content` field (vLLM,
# SGLang, DeepSeek), a `reasoning` field (OpenRouter and some servers), or `<think>...</think>`
# at the start of the content (llama.cpp without a reasoning parser, raw Qwen/R1 templates).
ThinkingStyle = Literal["reasoning_content", "reasoning", "inline"]
THINKING_STYLES: tuple[ThinkingStyle, ...] = get_args(ThinkingStyle)


class OptionsError(ValueError):
    """An option name is unknown or its value has the wrong type or range."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class FakeServerOptions:
    """Everything that shapes the fake server's answers; replaced whole, never mutated."""

    seed: int = field(default=0, metadata=_help("seed of the latency, fault and noise RNGs"))
    latency_median: float = field(default=0.0, metadata=_help("median answer latency, seconds"))
    latency_sigma: float = field(default=0.0, metadata=_help("lognormal sigma; 0 = fixed median"))
    judge_latency_median: float | None = field(
        default=None, metadata=_help("median latency of judge requests (default: latency_median)")
    )
    answer_min_words: int = field(default=20, metadata=_help("fewest words in a generated answer"))
    answer_max_words: int = field(default=120, metadata=_help("most words in a generated answer"))
    stream_chunk_words: int = field(default=8, metadata=_help("words per SSE chunk"))
    sample_noise: bool = field(
        default=False, metadata=_help("vary answers to identical requests when temperature > 0")
    )
    judge_noise: bool = field(
        default=False,
        metadata=_help("vary judge replies to identical prompts even at temperature 0, like GPT-4"),
    )
    judge_one_bracket: float = field(default=0.0, metadata=_help("share of 'Rating: [k]'"))
    judge_decimal: float = field(default=0.0, metadata=_help("share of 'Rating: [[k.5]]'"))
    judge_no_verdict: float = field(
        default=0.0, metadata=_help("share of judge replies sans verdict")
    )
    rpm: float = field(default=0.0, metadata=_help("requests per minute; 0 = unlimited"))
    tpm: float = field(default=0.0, metadata=_help("prompt + max tokens per minute; 0 = unlimited"))
    rate_window: float = field(default=60.0, metadata=_help("sliding rate-limit window, seconds"))
    limits_per_model: bool = field(default=False, metadata=_help("one rate window per model"))
    auth_key: str | None = field(
        default=None, metadata=_help("required key (OpenAI: Bearer token; Anthropic: x-api-key)")
    )
    reject_models: tuple[str, ...] = field(
        default=(), metadata=_help("comma-separated models answered 404 model_not_found")
    )
    auth_fail_models: tuple[str, ...] = field(
        default=(), metadata=_help("comma-separated models always answered 401")
    )
    fault_500: float = field(default=0.0, metadata=_help("probability of a 500"))
    fault_503: float = field(default=0.0, metadata=_help("probability of a 503"))
    fault_429: float = field(default=0.0, metadata=_help("probability of a spurious 429"))
    fault_429_retry_after: float = field(
        default=1.0, metadata=_help("Retry-After of a spurious 429, seconds")
    )
    fault_hang: float = field(default=0.0, metadata=_help("probability of never answering"))
    fault_reset: float = field(default=0.0, metadata=_help("probability of a connection reset"))
    fault_malformed: float = field(default=0.0, metadata=_help("probability of a broken JSON body"))
    fault_truncate: float = field(default=0.0, metadata=_help("probability of a cut SSE stream"))
    fault_529: float = field(
        default=0.0, metadata=_help("probability of a 529 overloaded_error (Anthropic's overload)")
    )
    fault_stream_error: float = field(
        default=0.0,
        metadata=_help("probability of an SSE stream ending in an error event (JSON: a 529)"),
    )
    fault_slow: float = field(
        default=0.0,
        metadata=_help("probability of a slow, healthy answer sent in pieces over slow_factor x"),
    )
    slow_factor: float = field(
        default=20.0,
        metadata=_help("a slow answer takes this many times the latency median, sending all along"),
    )
    hang_seconds: float = field(default=3600.0, metadata=_help("how long a hung request sleeps"))
    faults_only_for: tuple[str, ...] = field(
        default=(), metadata=_help("comma-separated models that get faults (default: all)")
    )
    reasoning_models: tuple[str, ...] = field(
        default=("o1*", "o3*", "o4*", "gpt-5*"),
        metadata=_help(
            "comma-separated fnmatch patterns of OpenAI reasoning models: max_tokens and "
            "temperature/top_p other than 1 refused, reasoning_effort, reasoning_tokens billed"
        ),
    )
    thinking_models: tuple[str, ...] = field(
        default=(),
        metadata=_help("comma-separated fnmatch patterns of models that show their thinking"),
    )
    thinking_style: ThinkingStyle = field(
        default="reasoning_content",
        metadata=_help(f"how thinking models show it: {', '.join(THINKING_STYLES)}"),
    )

    def __post_init__(self) -> None:
        shares = ["judge_one_bracket", "judge_decimal", "judge_no_verdict"]
        shares += [f"fault_{name}" for name in FAULT_NAMES]
        for name in shares:
            if getattr(self, name) > 1:
                raise OptionsError(f"option {name!r} is a probability and must be <= 1")
        if not 0 <= self.answer_min_words <= self.answer_max_words:
            raise OptionsError("need 0 <= answer_min_words <= answer_max_words")
        if self.stream_chunk_words < 1:
            raise OptionsError("stream_chunk_words must be >= 1")
        if self.rate_window <= 0:
            raise OptionsError("rate_window must be > 0")

    def fault_probabilities(self) -> tuple[tuple[str, float], ...]:
        """(fault name, probability) in the fixed order in which one draw is compared."""
        return tuple((name, getattr(self, f"fault_{name}")) for name in FAULT_NAMES)


def _to_float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("a number")
    if not math.isfinite(value) or value < 0:
        raise ValueError("a finite number >= 0")
    return float(value)


def _to_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an integer")
    return value


def _to_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError("true or false")
    return value


def _to_optional_str(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("a string or null")
    return value or None


def _to_optional_float(value: object) -> float | None:
    return None if value is None else _to_float(value)


def _to_thinking_style(value: object) -> ThinkingStyle:
    for style in THINKING_STYLES:
        if value == style:
            return style
    raise ValueError(f"one of {', '.join(THINKING_STYLES)}")


def _to_names(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(name for name in value.split(",") if name)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise TypeError("a list of strings")
    return tuple(value)


_COERCERS: dict[object, Callable[[object], Any]] = {
    float: _to_float,
    int: _to_int,
    bool: _to_bool,
    str | None: _to_optional_str,
    float | None: _to_optional_float,
    tuple[str, ...]: _to_names,
    ThinkingStyle: _to_thinking_style,
}

_HINTS = get_type_hints(FakeServerOptions)
_CLI_PARSERS: dict[object, Callable[[str], object]] = {
    float: float,
    int: int,
    str | None: str,
    float | None: float,
    tuple[str, ...]: str,
    ThinkingStyle: str,
}


def _coerce(name: str, value: object) -> Any:
    if name not in _HINTS:
        raise OptionsError(f"unknown option {name!r}")
    try:
        return _COERCERS[_HINTS[name]](value)
    except (TypeError, ValueError) as exc:
        raise OptionsError(f"option {name!r} must be {exc}, got {value!r}") from None


def updated_options(options: FakeServerOptions, updates: Mapping[str, object]) -> FakeServerOptions:
    """`options` with `updates` (option name -> JSON value) merged in; OptionsError if invalid."""
    changes = {name: _coerce(name, value) for name, value in updates.items()}
    return dataclasses.replace(options, **changes)


def options_to_json(options: FakeServerOptions) -> dict[str, object]:
    """The options as a JSON-ready object that `updated_options` accepts back."""
    return {
        f.name: list(value) if isinstance(value := getattr(options, f.name), tuple) else value
        for f in dataclasses.fields(options)
    }


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per option: `--latency-median 0.2`, `--sample-noise/--no-sample-noise`."""
    for f in dataclasses.fields(FakeServerOptions):
        flag = "--" + f.name.replace("_", "-")
        hint = _HINTS[f.name]
        help_text = f.metadata.get("help")
        if hint is bool:
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, dest=f.name, action=action, default=f.default, help=help_text)
        else:
            parser_of = _CLI_PARSERS[hint]
            choices = get_args(hint) if get_origin(hint) is Literal else None
            parser.add_argument(
                flag,
                dest=f.name,
                type=parser_of,
                default=f.default,
                choices=choices,
                help=help_text,
            )


def options_from_args(args: argparse.Namespace) -> FakeServerOptions:
    """The options named by the flags that `add_option_flags` added; OptionsError if invalid."""
    names = [f.name for f in dataclasses.fields(FakeServerOptions)]
    return updated_options(FakeServerOptions(), {name: getattr(args, name) for name in names})
