"""Run configs: TOML in, validated frozen dataclasses out, or one line saying what is wrong.

Every problem is reported before any request is sent, naming the file, the table, the key and the
offending value, because a typo found after an hour of paid generation is a typo found too late.
Relative paths are resolved against the config file's directory, so a config works from any cwd.
Numbers have ranges the run can live with (finite, within SQLite's 64-bit integers, sane maxima),
and URLs, serve commands, extra_body and keys are checked as the run will use them
(`engine.config_schema`). What reasoning endpoints refuse (a temperature, a thinking budget not
below max_tokens) is refused here too, naming the key to change (`engine.reasoning`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import orjson

from engine.config_reasoning import reasoning_options
from engine.config_schema import (
    JUDGE_KEYS,
    JUDGE_MODES,
    MAX_ATTEMPTS,
    MAX_SAMPLES,
    MAX_SECONDS,
    MAX_TOKENS,
    MODEL_KEYS,
    SUPPORTED_APIS,
    TOP_KEYS,
    KeySpec,
    api_key_problem,
    redact_url_credentials,
    serve_problem,
)
from engine.errors import ConfigError
from engine.redact import register_secret

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "JUDGE_MODES",
    "MAX_ATTEMPTS",
    "MAX_SAMPLES",
    "MAX_SECONDS",
    "MAX_TOKENS",
    "SUPPORTED_APIS",
    "EndpointConfig",
    "JudgeConfig",
    "ModelConfig",
    "RunConfig",
    "load_config",
]

MODEL_MAX_TOKENS = 1024
JUDGE_MAX_TOKENS = 2048  # FastChat's judge default
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """Where and how fast to send one model's (or the judge's) requests."""

    name: str
    model: str
    base_urls: tuple[str, ...]
    api: str = "openai"
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False, compare=False)
    concurrency: int = 16
    rpm: int = 0
    tpm: int = 0
    max_tokens: int = MODEL_MAX_TOKENS
    temperature: float | None = None
    system_prompt: str | None = None
    stream: bool = False
    timeout: float = 600.0  # one attempt, however it is going (stalls are caught far sooner)
    max_attempts: int = 8
    hedge_after: float | None = None  # seconds of silence before a twin; None: learned, 0: off
    stall_timeout: float | None = None  # seconds of silence before giving up; None: learned
    max_retry_after: float = 120.0  # the longest wait a server's Retry-After is honoured for
    seed: int | None = None
    extra_body: bytes | None = None  # canonical JSON; see ChatRequest.extra_body
    price_in: float | None = None  # USD per 1M prompt tokens
    price_out: float | None = None  # USD per 1M completion tokens
    reasoning: bool = False  # OpenAI reasoning model: max_completion_tokens, no temperature/top_p
    reasoning_effort: str | None = None
    thinking: int | None = None  # Anthropic extended thinking budget (tokens), no temperature

    @property
    def sends_temperature(self) -> bool:
        """Reasoning models and extended thinking refuse a temperature: none is sent."""
        return not self.reasoning and self.thinking is None

    def table(self) -> str:
        """The config table this endpoint comes from, for messages that say what to change."""
        return f"[[model]] {self.name!r}"

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        """Dollars for one response; None when no price is configured."""
        if self.price_in is None and self.price_out is None:
            return None
        return (
            (prompt_tokens or 0) * (self.price_in or 0.0)
            + (completion_tokens or 0) * (self.price_out or 0.0)
        ) / 1e6

    def request_options(self) -> dict[str, Any]:
        """The ChatRequest fields every request to this endpoint shares."""
        return {
            "api": self.api,
            "label": self.name,
            "model": self.model,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "extra_body": self.extra_body,
            "reasoning": self.reasoning,
            "reasoning_effort": self.reasoning_effort,
            "thinking": self.thinking,
        }

    @property
    def label(self) -> str:
        return self.name

    def snapshot(self) -> dict[str, Any]:
        """The config as stored with a run: everything but the key itself."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        del values["api_key"]
        if self.extra_body is not None:
            values["extra_body"] = orjson.loads(self.extra_body)
        return values


@dataclass(frozen=True, slots=True)
class ModelConfig(EndpointConfig):
    """A model under test; with `serve`, the engine starts and stops its server itself."""

    serve: str | None = None  # command template: {path}, {name}, {port}
    checkpoint: str | None = None  # the {path} of this model's server (one checkpoint of a sweep)
    ready_path: str = "/v1/models"
    ready_timeout: float = 600.0
    keep_thinking: bool = False  # judge and turn 2 see inline <think> blocks (FastChat's way)

    @property
    def label(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class JudgeConfig(EndpointConfig):
    """The judge: FastChat's defaults are temperature 0 and 2048 output tokens."""

    max_tokens: int = JUDGE_MAX_TOKENS
    temperature: float | None = 0.0
    mode: str = "single"
    baseline: str = "gpt-3.5-turbo"
    samples: int = 1  # judge every item this many times; its score is the median

    @property
    def label(self) -> str:
        """Distinct from model labels: GPT-4 may well be judging GPT-4's answers."""
        return f"judge {self.name}"

    def table(self) -> str:
        return "[judge]"


@dataclass(frozen=True, slots=True)
class RunConfig:
    path: Path
    store: Path
    data: Path | None
    bench: str
    models: tuple[ModelConfig, ...]
    judge: JudgeConfig | None
    questions: tuple[int, ...] | None = None  # a subset of question ids; None = all
    server_slots: int = 1  # model servers (`serve`) that may run at once, e.g. GPUs

    def snapshot(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "store": str(self.store),
            "data": None if self.data is None else str(self.data),
            "bench": self.bench,
            "questions": self.questions,
            "server_slots": self.server_slots,
            "models": [m.snapshot() for m in self.models],
            "judge": None if self.judge is None else self.judge.snapshot(),
        }


def _show(value: Any) -> str:
    text = redact_url_credentials(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker:
    """Validates one table against its key schema, naming the file and table in every error."""

    def __init__(self, path: Path, where: str, table: dict[str, Any], keys: dict[str, KeySpec]):
        self.path, self.where, self.table = path, where, table
        for key, value in table.items():
            spec = keys.get(key)
            if spec is None:
                known = ", ".join(sorted(keys))
                self.fail(key, value, f"unknown key (known keys: {known})")
            elif not spec.check(value):
                self.fail(key, value, f"expected {spec.kind}")
            elif spec.explain is not None and (problem := spec.explain(value)) is not None:
                self.fail(key, value, problem)

    def fail(self, key: str, value: Any, problem: str) -> NoReturn:
        raise ConfigError(f"{self.path}: {self.where} key {key!r} = {_show(value)}: {problem}")

    def get(self, key: str, default: Any = None) -> Any:
        return self.table.get(key, default)


def load_config(path: Path | str) -> RunConfig:
    """Read and validate a run config; raise ConfigError with one line on the first problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        # ValueError: an integer of thousands of digits, which Python refuses to convert
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None

    top = _Checker(path, "top-level", raw, TOP_KEYS)
    base = path.resolve().parent
    if top.get("store") is None:
        raise ConfigError(f"{path}: top-level key 'store' is missing; give the SQLite file to use")
    models = tuple(
        model
        for i, table in enumerate(top.get("model", []))
        for model in _models(path, f"[[model]] #{i + 1}", table, base)
    )
    judge_table = top.get("judge")
    judge = None
    if judge_table is not None:
        judge = _endpoint(path, "[judge]", judge_table, JudgeConfig, JUDGE_KEYS)
    _reject_duplicates(path, models, judge)
    data = top.get("data")
    return RunConfig(
        path=path,
        store=base / Path(top.get("store")).expanduser(),
        data=None if data is None else base / Path(data).expanduser(),
        bench=top.get("bench", "mt_bench"),
        models=models,
        judge=judge,
        questions=None if top.get("questions") is None else tuple(top.get("questions")),
        server_slots=top.get("server_slots", 1),
    )


def _models(path: Path, where: str, table: Any, base: Path) -> list[ModelConfig]:
    """One model, or one per checkpoint the `checkpoints` glob matches (label from the path)."""
    pattern = table.get("checkpoints") if isinstance(table, dict) else None
    if pattern is None:
        return [_endpoint(path, where, table, ModelConfig, MODEL_KEYS)]
    if "serve" not in table:
        raise ConfigError(
            f"{path}: {where} key 'checkpoints' = {_show(pattern)}: needs 'serve', the command "
            "that serves one checkpoint"
        )
    from engine.serving.serve import expand_checkpoints

    prefix = f"{table['name']}-" if table.get("name") else ""
    template = _endpoint(path, where, {"name": "checkpoint", **table}, ModelConfig, MODEL_KEYS)
    try:
        found = expand_checkpoints(str(base / pattern))
    except ConfigError as error:
        raise ConfigError(f"{path}: {where} key 'checkpoints': {error}") from None
    return [
        replace(
            template,
            name=prefix + label,
            model=table.get("model", prefix + label),
            checkpoint=str(checkpoint),
        )
        for label, checkpoint in found
    ]


def _endpoint(
    path: Path, where: str, table: Any, cls: type[EndpointConfig], keys: dict[str, KeySpec]
) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where} must be a table, got {_show(table)}")
    check = _Checker(path, where, table, keys)
    name = check.get("name") or check.get("model")
    if name is None:
        required = "'name'" if cls is ModelConfig else "'name' or 'model'"
        raise ConfigError(f"{path}: {where} key {required} is missing; give the model a label")
    where = f"{where} ({name})"
    if check.get("base_url") is not None and check.get("base_urls") is not None:
        check.fail("base_urls", check.get("base_urls"), "give either base_url or base_urls")
    api = check.get("api", "openai")
    if api == "anthropic":
        _check_anthropic(check)
    default_max_tokens = JUDGE_MAX_TOKENS if cls is JudgeConfig else MODEL_MAX_TOKENS
    reasoning = reasoning_options(check, api, check.get("model", name), default_max_tokens)
    urls = check.get("base_urls") or [check.get("base_url") or DEFAULT_BASE_URLS[api]]
    if check.get("serve") is not None:
        if check.get("base_url") or check.get("base_urls"):
            check.fail("serve", check.get("serve"), "the engine serves this model; drop base_url")
        problem = serve_problem(check.get("serve"), has_checkpoints="checkpoints" in table)
        if problem is not None:
            check.fail("serve", check.get("serve"), problem)
        urls = []  # known once the server is up
    skip = ("name", "base_url", "base_urls", "checkpoints")
    options = {k: v for k, v in table.items() if k not in skip}
    for number_key in (
        "temperature",
        "timeout",
        "hedge_after",
        "stall_timeout",
        "max_retry_after",
        "price_in",
        "price_out",
        "ready_timeout",
    ):
        if number_key in options:
            options[number_key] = float(options[number_key])
    if "extra_body" in options:
        options["extra_body"] = orjson.dumps(options["extra_body"], option=orjson.OPT_SORT_KEYS)
    options.update(reasoning)
    return cls(
        name=name,
        model=check.get("model", name),
        base_urls=tuple(u.rstrip("/") for u in urls),
        api_key=_api_key(check),
        **{k: v for k, v in options.items() if k != "model"},
    )


def _check_anthropic(check: _Checker) -> None:
    """What Anthropic's Messages API would refuse (or silently ignore) is refused here."""
    if check.get("seed") is not None:
        check.fail("seed", check.get("seed"), "Anthropic's API has no seed; remove it")
    temperature = check.get("temperature")
    if temperature is not None and temperature > 1:
        check.fail("temperature", temperature, "Anthropic accepts temperatures from 0 to 1")


def _api_key(check: _Checker) -> str | None:
    variable = check.get("api_key_env")
    if variable is None:
        return None
    key = os.environ.get(variable)
    if not key:
        check.fail(
            "api_key_env",
            variable,
            f"environment variable {variable} is not set; export it or remove api_key_env",
        )
    problem = api_key_problem(key)
    if problem is not None:
        check.fail("api_key_env", variable, f"the key in {variable} {problem}; export it again")
    register_secret(key, variable)  # so that no output, log or store row can show it
    return key


def _reject_duplicates(
    path: Path, models: tuple[ModelConfig, ...], judge: JudgeConfig | None
) -> None:
    """Model labels must be unique, and none may be the judge's label: results and progress
    are counted per label."""
    seen: set[str] = set()
    for model in models:
        if model.name in seen:
            raise ConfigError(
                f"{path}: [[model]] name {model.name!r} appears twice; labels must be unique"
            )
        seen.add(model.name)
    if judge is not None and judge.label in seen:
        raise ConfigError(
            f"{path}: [[model]] name {judge.label!r} is the judge's label; rename the model"
        )
