"""What each run-config key accepts: types, ranges, and values checked as the run will use them.

A type check alone lets `base_url = "http://"` through, and `timeout = inf`, a seed wider than
SQLite's integers, a serve command with a misspelt `{placeholder}`, an `extra_body` that overrides
the prompt, or a key pasted with a line break. Each of these used to fail later: inside aiohttp, in
SQLite, at a server start, or as a hang half-way through a paid run. Here every number has a range
the run can live with, and URLs, serve commands, extra fields and keys are parsed or rendered the
way the run will use them, so `engine.config` reports the problem at load, naming file and key.
"""

from __future__ import annotations

import math
import re
import shlex
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

import orjson

from engine.reasoning import REASONING_EFFORTS

__all__ = [
    "DEFAULT_REFERENCE",
    "ENDPOINT_KEYS",
    "FASTCHAT_BASELINE",
    "INT64_MAX",
    "INT64_MIN",
    "JUDGE_KEYS",
    "JUDGE_MODES",
    "LAUNCHERS",
    "MAX_ATTEMPTS",
    "MAX_SAMPLES",
    "MAX_SECONDS",
    "MAX_TOKENS",
    "MIN_THINKING_TOKENS",
    "MODEL_KEYS",
    "SLURM_KEYS",
    "SUPPORTED_APIS",
    "TOP_KEYS",
    "EndpointRole",
    "JudgeMode",
    "KeySpec",
    "api_key_problem",
    "extra_body_problem",
    "redact_url_credentials",
    "serve_problem",
    "url_problem",
]

SUPPORTED_APIS = ("openai", "anthropic")
JudgeMode = Literal["single", "pairwise-baseline", "pairwise-all"]
JUDGE_MODES: tuple[JudgeMode, ...] = get_args(JudgeMode)
EndpointRole = Literal["model", "judge"]
# FastChat's pairwise baseline: the default of [judge] baseline, and of `show_result`'s tables.
FASTCHAT_BASELINE = "gpt-3.5-turbo"
# FastChat's reference answers (reference_answer/gpt-4.jsonl): the default of [judge] reference.
DEFAULT_REFERENCE = "gpt-4"
# SQLite stores signed 64-bit integers, and providers (OpenAI's `seed`, vLLM's) take no wider ones.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
SERVE_PLACEHOLDERS = ("path", "name", "port", "gpus", "num_gpus")
# What the providers set in the request body themselves; an extra_body copy would override the
# prompt or the sampling the cache key records, or switch the wire format under the reader.
ENGINE_BODY_FIELDS = (
    "model",
    "messages",
    "system",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "seed",
    "stream",
    "stream_options",
    "reasoning_effort",
    "thinking",
)
_URL_CREDENTIALS = re.compile(r"(://)[^/@\s'\"]*@")
_SAMPLE_SERVE_VALUES = {
    "path": "/checkpoints/step-100",
    "name": "step-100",
    "port": 8000,
    "gpus": "0,1",
    "num_gpus": 2,
}
# Upper bounds, documented in the README. No model writes a million tokens in one answer, and plan
# estimates and token windows are sized by max_tokens.
MAX_TOKENS = 1_000_000
MIN_THINKING_TOKENS = 1024  # the smallest budget Anthropic's extended thinking takes
# Backoff doubles per attempt: past ~1024 attempts its arithmetic overflows a float.
MAX_ATTEMPTS = 1000
# Every sample is a judge job per item: a typo of 1000 would plan hundreds of thousands of jobs.
MAX_SAMPLES = 100
# timeout and ready_timeout: a day; beyond that an event loop's timer arithmetic can overflow.
MAX_SECONDS = 86_400.0
MAX_PRICE = 10_000.0  # USD per 1M tokens
MAX_CONCURRENCY = 100_000
MAX_SERVER_SLOTS = 1024  # the slot pool holds one entry per slot
MAX_GPUS_PER_SERVER = 1024
LAUNCHERS = ("local", "slurm")


def url_problem(url: str) -> str | None:
    """Why aiohttp could not use `url` as a base URL, or None. Parsed with yarl, as aiohttp does."""
    import yarl

    if any(c.isspace() or not c.isprintable() for c in url):
        return "it contains a space or a control character"
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError) as exc:
        return f"not a URL aiohttp can use ({exc})"
    if parsed.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parsed.host:
        return "it has no host"
    if parsed.explicit_port == 0:
        return "port 0 cannot be connected to; use a port from 1 to 65535"
    if parsed.user is not None or parsed.password is not None:
        return "it holds credentials, which would be stored with the run; use api_key_env"
    if parsed.query_string or parsed.fragment:
        return "it has a query or fragment, and request paths are appended to base URLs"
    return None


def _first_url_problem(urls: list[str]) -> str | None:
    for url in urls:
        problem = url_problem(url)
        if problem is not None:
            return f"{redact_url_credentials(url)!r}: {problem}"
    return None


def redact_url_credentials(text: str) -> str:
    """`http://user:secret@host` -> `http://***@host`, so a message never repeats a password."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def serve_problem(command: str, *, has_checkpoints: bool) -> str | None:
    """Why `command` cannot start a model server the engine can reach, or None.

    Every word is filled in with sample values exactly as `engine.serving.serve.ServerSpec.argv`
    fills it, so a misspelt placeholder fails here instead of at the server start.
    """
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return f"cannot be split into words like a shell command ({exc})"
    if not words:
        return "is empty; give the command that starts the server"
    known = ", ".join("{" + name + "}" for name in SERVE_PLACEHOLDERS)
    used: set[str] = set()
    for word in words:
        try:
            word.format(**_SAMPLE_SERVE_VALUES)
            used.update(_placeholders(word))
        except KeyError as exc:
            return (
                f"unknown placeholder {{{exc.args[0]}}} (known: {known}; "
                "write {{ or }} for a literal brace)"
            )
        except (IndexError, ValueError, AttributeError, TypeError) as exc:
            return f"bad placeholder in {word!r} ({exc}; known: {known})"
    if "port" not in used:
        return "has no {port}: the engine picks a free port and waits for the server there"
    if has_checkpoints and "path" not in used:
        return "has no {path}: every checkpoint would start the same server"
    if not has_checkpoints and "path" in used:
        return "uses {path} but the model has no 'checkpoints' to fill it with"
    return None


def _placeholders(word: str) -> Iterator[str]:
    for _, field_name, _, _ in string.Formatter().parse(word):
        if field_name is not None:
            yield field_name.split(".")[0].split("[")[0]


def extra_body_problem(body: dict[str, Any]) -> str | None:
    """Why `body` cannot be sent as extra request fields as written, or None."""
    for key in body:
        if key in ENGINE_BODY_FIELDS:
            return f"field {key!r} is set by the engine; use the model's own key for it"
    for value in _leaves(body):
        if isinstance(value, float) and not math.isfinite(value):
            return f"{value!r} cannot be sent in JSON"
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            return f"{value} does not fit a signed 64-bit integer"
    try:  # from Python (engine.Model) it may hold what TOML cannot: a set, a key that is a number
        orjson.dumps(body)
    except TypeError as exc:
        return f"cannot be sent in JSON ({exc})"
    return None


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):  # a tuple, from Python: orjson sends it as a list
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def api_key_problem(key: str) -> str | None:
    """Why a key could not go into an HTTP header unchanged, or None. Never quotes the key."""
    if key != key.strip():
        return "has spaces or a line break around it"
    if not key.isascii() or not key.isprintable():
        return "has a non-ASCII or control character in it (a copy-paste accident?)"
    return None


Check = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What one config key accepts, as a check and as words for the error message."""

    kind: str  # shown to the user: "a string", "an integer >= 1", ...
    check: Check
    # For values whose type is right: what exactly is wrong with it, or None.
    explain: Callable[[Any], str | None] | None = None


def _is_int(low: int, high: int = INT64_MAX) -> Check:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _int_key(low: int, high: int = INT64_MAX, note: str = "") -> KeySpec:
    return KeySpec(f"an integer from {low} to {high}{note}", _is_int(low, high))


def _is_number(low: float, high: float) -> Check:
    # NaN fails both comparisons, and every bound is finite, so inf fails too.
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high


def _seconds_key() -> KeySpec:
    return KeySpec(
        f"a number of seconds from 0.001 to {MAX_SECONDS:.0f}", _is_number(1e-3, MAX_SECONDS)
    )


def _price_key(what: str) -> KeySpec:
    return KeySpec(
        f"USD per 1M {what} tokens, from 0 to {MAX_PRICE:.0f}", _is_number(0.0, MAX_PRICE)
    )


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _path_problem(v: str) -> str | None:
    """Why `v` cannot name a file (the store, the data dir, the bench folder), or None."""
    if "\x00" in v:
        return "it contains a NUL character, which no file name can hold"
    return None


def _reference_problem(v: str) -> str | None:
    """Why `v` cannot name a file in the bench's reference_answer/ folder, or None."""
    if "/" in v or "\\" in v or "\x00" in v or v in (".", ".."):
        return (
            "give the name of a file in reference_answer/ without '.jsonl' (e.g. 'gpt-4'), "
            "not a path"
        )
    return None


def _is_url_list(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(isinstance(u, str) for u in v)


def _is_extra_body(v: Any) -> bool:
    return isinstance(v, dict)


def _thinking_problem(budget: int) -> str | None:
    if budget < MIN_THINKING_TOKENS:
        return f"Anthropic's smallest thinking budget is {MIN_THINKING_TOKENS}; raise thinking"
    return None


ENDPOINT_KEYS: dict[str, KeySpec] = {
    "name": KeySpec("a non-empty string", _is_str),
    "model": KeySpec("a non-empty string", _is_str),
    "base_url": KeySpec("an http(s) URL", _is_str, url_problem),
    "base_urls": KeySpec("a non-empty list of http(s) URLs", _is_url_list, _first_url_problem),
    "api": KeySpec(f"one of {', '.join(SUPPORTED_APIS)}", lambda v: v in SUPPORTED_APIS),
    "api_key_env": KeySpec("an environment variable name", _is_str),
    "concurrency": _int_key(1, MAX_CONCURRENCY),
    "rpm": _int_key(0, note=" (0 = unlimited)"),
    "tpm": _int_key(0, note=" (0 = unlimited)"),
    "max_tokens": _int_key(1, MAX_TOKENS),
    "temperature": KeySpec("a number between 0 and 2", _is_number(0.0, 2.0)),
    "system_prompt": KeySpec("a string", lambda v: isinstance(v, str)),
    "stream": KeySpec("true or false", lambda v: isinstance(v, bool)),
    "timeout": _seconds_key(),
    "max_attempts": _int_key(1, MAX_ATTEMPTS),
    "hedge_after": KeySpec(
        f"a number of seconds from 0 (never hedge) to {MAX_SECONDS:.0f}",
        _is_number(0.0, MAX_SECONDS),
    ),
    "stall_timeout": _seconds_key(),
    "max_retry_after": KeySpec(
        f"a number of seconds from 0 to {MAX_SECONDS:.0f}", _is_number(0.0, MAX_SECONDS)
    ),
    "seed": _int_key(INT64_MIN),
    "extra_body": KeySpec("a table of extra request fields", _is_extra_body, extra_body_problem),
    "price_in": _price_key("prompt"),
    "price_out": _price_key("completion"),
    "reasoning": KeySpec("true or false", lambda v: isinstance(v, bool)),
    "reasoning_effort": KeySpec(
        f"one of {', '.join(REASONING_EFFORTS)}", lambda v: v in REASONING_EFFORTS
    ),
    "thinking": KeySpec(
        f"a budget of thinking tokens from {MIN_THINKING_TOKENS} to {MAX_TOKENS - 1}",
        _is_int(0, MAX_TOKENS - 1),
        _thinking_problem,
    ),
}
MODEL_KEYS: dict[str, KeySpec] = {
    **ENDPOINT_KEYS,
    "keep_thinking": KeySpec("true or false", lambda v: isinstance(v, bool)),
    "serve": KeySpec("a command template using {path}, {name} and {port}", _is_str),
    "gpus_per_server": _int_key(0, MAX_GPUS_PER_SERVER),
    "replicas": _int_key(1, MAX_SERVER_SLOTS),
    "launcher": KeySpec(f"one of {', '.join(LAUNCHERS)}", lambda v: v in LAUNCHERS),
    "slurm": KeySpec("a table of Slurm options (see [slurm])", lambda v: isinstance(v, dict)),
    "checkpoints": KeySpec("a glob of checkpoint files or directories", _is_str, _path_problem),
    "ready_path": KeySpec(
        "a URL path such as /v1/models or /health", lambda v: _is_str(v) and v.startswith("/")
    ),
    "ready_timeout": _seconds_key(),
    # The training step `show --sweep` plots this model at, where its label does not say it.
    "step": _int_key(0),
}
SLURM_KEYS: dict[str, KeySpec] = {
    "partition": KeySpec("a partition name", _is_str),
    "gres": KeySpec("a generic resource such as gpu:2 or gpu:a100:2", _is_str),
    "gpus": KeySpec("a GPU count such as 2 or a100:2", lambda v: _is_str(v) or _is_int(1)(v)),
    "time": KeySpec("a time limit such as 4:00:00 or 1-00:00:00", _is_str),
    "account": KeySpec("an account name", _is_str),
    "qos": KeySpec("a quality of service name", _is_str),
    "cpus_per_task": _int_key(1, 100_000),
    "mem": KeySpec("a memory size such as 64G", _is_str),
    "directory": KeySpec(
        "a directory the compute nodes share, for job scripts and output", _is_str, _path_problem
    ),
    "extra_args": KeySpec(
        'a list of sbatch arguments such as ["--constraint=a100"]',
        lambda v: isinstance(v, list) and all(_is_str(a) for a in v),
    ),
}
JUDGE_KEYS: dict[str, KeySpec] = {
    **ENDPOINT_KEYS,
    "mode": KeySpec(f"one of {', '.join(JUDGE_MODES)}", lambda v: v in JUDGE_MODES),
    "baseline": KeySpec("a model name", _is_str),
    "samples": _int_key(1, MAX_SAMPLES),
    "reference": KeySpec(
        "the name of a reference answer set (reads <bench>/reference_answer/NAME.jsonl)",
        _is_str,
        _reference_problem,
    ),
}
TOP_KEYS: dict[str, KeySpec] = {
    "store": KeySpec("a path", _is_str, _path_problem),
    "data": KeySpec("a path", _is_str, _path_problem),
    "bench": KeySpec("a bench name such as mt_bench", _is_str, _path_problem),
    "questions": KeySpec(
        f"a non-empty list of question ids (integers from 0 to {INT64_MAX})",
        lambda v: isinstance(v, list) and bool(v) and all(_is_int(0)(q) for q in v),
    ),
    "server_slots": _int_key(1, MAX_SERVER_SLOTS),
    "launcher": KeySpec(f"one of {', '.join(LAUNCHERS)}", lambda v: v in LAUNCHERS),
    "slurm": KeySpec("a [slurm] table of sbatch options", lambda v: isinstance(v, dict)),
    "model": KeySpec("an array of [[model]] tables", lambda v: isinstance(v, list)),
    "judge": KeySpec(
        "a [judge] table or [[judge]] tables", lambda v: isinstance(v, (dict, list)) and bool(v)
    ),
    "panel": KeySpec("a [panel] table", lambda v: isinstance(v, dict)),
}
