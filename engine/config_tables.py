"""One table of settings in, one endpoint config out, or one line naming what is wrong.

A TOML `[[model]]` or `[judge]` table and the keyword arguments of `engine.Model(...)` or
`engine.Judge(...)` go through the same checks, so a value is refused with the same words
whichever way it was given; only the place named first differs (`config.toml: [[model]] #1 (alpha)`
or `engine.Model (alpha)`). Keys are checked against their schema (`engine.config_schema`), the
API key is read from its environment variable and registered for masking, and a `checkpoints`
glob becomes one model per match.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import orjson

from engine.config_reasoning import reasoning_options
from engine.config_schema import (
    SLURM_KEYS,
    KeySpec,
    api_key_problem,
    redact_url_credentials,
    serve_problem,
)
from engine.config_sweeps import (
    DEFAULT_CHECKPOINT_ATTEMPTS,
    DEFAULT_SETTLE,
    SWEEP_KEYS,
    CheckpointSweep,
    checkpoint_matches,
)
from engine.errors import ConfigError
from engine.redact import register_secret

if TYPE_CHECKING:
    from engine.config import EndpointConfig, JudgeConfig, ModelConfig

__all__ = [
    "DEFAULT_BASE_URLS",
    "JUDGE_MAX_TOKENS",
    "MODEL_MAX_TOKENS",
    "SlurmOptions",
    "TableChecker",
    "endpoint_from_table",
    "expand_checkpoints",
    "models_from_table",
    "reject_duplicates",
    "slurm_options",
    "sweep_from_table",
]

MODEL_MAX_TOKENS = 1024
JUDGE_MAX_TOKENS = 2048  # FastChat's judge default
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}
_FLOAT_KEYS = (
    "temperature",
    "timeout",
    "hedge_after",
    "stall_timeout",
    "max_retry_after",
    "price_in",
    "price_out",
    "ready_timeout",
)
_NOT_OPTIONS = ("name", "base_url", "base_urls", "checkpoints", *SWEEP_KEYS)
_SERVING_KEYS = ("gpus_per_server", "replicas", "launcher", "slurm")
Endpoint = TypeVar("Endpoint", bound="EndpointConfig")
# An unknown key named like one of these holds a secret (`api_key=` as the OpenAI SDK takes it):
# its value is never repeated in the message, which goes to terminals, CI logs and notebooks.
_SECRET_KEY_NAME = re.compile(r"key|token|secret|passw|auth|bearer|credential", re.IGNORECASE)
_VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")  # as variables are named by convention


@dataclass(frozen=True, slots=True)
class SlurmOptions:
    """The sbatch options of a served model's jobs (`[slurm]`, or a model's own `slurm`)."""

    partition: str | None = None
    gres: str | None = None  # default: gpu:<gpus_per_server>, unless `gpus` is given
    gpus: str | None = None
    time: str | None = None
    account: str | None = None
    qos: str | None = None
    cpus_per_task: int | None = None
    mem: str | None = None
    extra_args: tuple[str, ...] = ()
    # Job scripts, output and address files: a directory the nodes share (default: servers/)
    directory: str | None = None


def slurm_options(where: str, table: Any) -> SlurmOptions:
    """A `[slurm]` table checked key by key; gres and gpus are two ways to ask for one thing."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {shown(table)}")
    check = TableChecker(where, table, SLURM_KEYS)
    if check.get("gres") is not None and check.get("gpus") is not None:
        check.fail("gpus", check.get("gpus"), "give either gres or gpus")
    values = dict(table)
    if "gpus" in values:
        values["gpus"] = str(values["gpus"])
    values["extra_args"] = tuple(values.get("extra_args", ()))
    return SlurmOptions(**values)


def shown(value: Any) -> str:
    text = redact_url_credentials(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


class TableChecker:
    """Validates one table against its key schema; `where` names it first in every error."""

    def __init__(self, where: str, table: dict[str, Any], keys: dict[str, KeySpec]) -> None:
        self.where, self.table = where, table
        for key, value in table.items():
            spec = keys.get(key)
            if spec is None and _SECRET_KEY_NAME.search(key):
                raise ConfigError(
                    f"{where} key {key!r}: unknown key (its value is not shown); keys never go "
                    "in the config: export the key and give the variable's name as api_key_env"
                )
            if spec is None:
                known = ", ".join(sorted(keys))
                self.fail(key, value, f"unknown key (known keys: {known})")
            elif not spec.check(value):
                self.fail(key, value, f"expected {spec.kind}")
            elif spec.explain is not None and (problem := spec.explain(value)) is not None:
                self.fail(key, value, problem)

    def fail(self, key: str, value: Any, problem: str) -> NoReturn:
        raise ConfigError(f"{self.where} key {key!r} = {shown(value)}: {problem}")

    def get(self, key: str, default: Any = None) -> Any:
        return self.table.get(key, default)


def models_from_table(
    where: str, table: Any, base: Path, cls: type[ModelConfig], keys: dict[str, KeySpec]
) -> list[ModelConfig]:
    """One model, or one per checkpoint the `checkpoints` glob matches (label from the path)."""
    sweep = sweep_from_table(where, table, base, cls, keys)
    return [endpoint_from_table(where, table, cls, keys)] if sweep is None else sweep.expand()


def sweep_from_table(
    where: str, table: Any, base: Path, cls: type[ModelConfig], keys: dict[str, KeySpec]
) -> CheckpointSweep | None:
    """The sweep a `[[model]]` with `checkpoints` describes, checked; None for a plain model."""
    pattern = table.get("checkpoints") if isinstance(table, dict) else None
    if pattern is None:
        return None
    if "serve" not in table:
        raise ConfigError(
            f"{where} key 'checkpoints' = {shown(pattern)}: needs 'serve', the command "
            "that serves one checkpoint"
        )
    if "step" in table:
        raise ConfigError(
            f"{where} key 'step' = {shown(table['step'])}: a sweep's steps are read from its "
            "checkpoints' labels; give step only to a model without checkpoints"
        )
    template = endpoint_from_table(where, {"name": "checkpoint", **table}, cls, keys)
    return CheckpointSweep(
        where=where,
        pattern=str(base / pattern),
        template=template,
        prefix=f"{table['name']}-" if table.get("name") else "",
        model=table.get("model"),
        ready_marker=table.get("ready_marker"),
        settle=float(table.get("settle", DEFAULT_SETTLE)),
        max_attempts=table.get("max_checkpoint_attempts", DEFAULT_CHECKPOINT_ATTEMPTS),
    )


def endpoint_from_table(
    where: str, table: Any, cls: type[Endpoint], keys: dict[str, KeySpec]
) -> Endpoint:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {shown(table)}")
    check = TableChecker(where, table, keys)
    if "checkpoints" not in table:
        for key in sorted(SWEEP_KEYS.keys() & table.keys()):
            check.fail(key, table[key], "only a sweep takes it; add 'checkpoints' or remove it")
    name = check.get("name") or check.get("model")
    judging = cls.role == "judge"
    if name is None:
        required = "'name' or 'model'" if judging else "'name'"
        raise ConfigError(f"{where} key {required} is missing; give the model a label")
    if check.get("base_url") is not None and check.get("base_urls") is not None:
        check.fail("base_urls", check.get("base_urls"), "give either base_url or base_urls")
    api = check.get("api", "openai")
    if api == "anthropic":
        _check_anthropic(check)
    default_max_tokens = JUDGE_MAX_TOKENS if judging else MODEL_MAX_TOKENS
    reasoning = reasoning_options(check, api, check.get("model", name), default_max_tokens)
    options = {k: v for k, v in table.items() if k not in _NOT_OPTIONS}
    for number_key in _FLOAT_KEYS:
        if number_key in options:
            options[number_key] = float(options[number_key])
    if "extra_body" in options:
        options["extra_body"] = orjson.dumps(options["extra_body"], option=orjson.OPT_SORT_KEYS)
    if "slurm" in options:
        options["slurm"] = slurm_options(f"{where} key 'slurm'", options["slurm"])
    options.update(reasoning)
    return cls(
        name=name,
        model=check.get("model", name),
        base_urls=tuple(u.rstrip("/") for u in _base_urls(check, api, table)),
        api_key=_api_key(check),
        **{k: v for k, v in options.items() if k != "model"},
    )


def _base_urls(check: TableChecker, api: str, table: dict[str, Any]) -> list[str]:
    urls: list[str] = check.get("base_urls") or [check.get("base_url") or DEFAULT_BASE_URLS[api]]
    if check.get("serve") is None:
        for key in _SERVING_KEYS:
            if key in table:
                check.fail(key, table[key], "only a model the engine serves has it; add serve")
        return urls
    if check.get("base_url") or check.get("base_urls"):
        check.fail("serve", check.get("serve"), "the engine serves this model; drop base_url")
    problem = serve_problem(check.get("serve"), has_checkpoints="checkpoints" in table)
    if problem is not None:
        check.fail("serve", check.get("serve"), problem)
    return []  # known once the server is up


def _check_anthropic(check: TableChecker) -> None:
    """What Anthropic's Messages API would refuse (or silently ignore) is refused here."""
    if check.get("seed") is not None:
        check.fail("seed", check.get("seed"), "Anthropic's API has no seed; remove it")
    temperature = check.get("temperature")
    if temperature is not None and temperature > 1:
        check.fail("temperature", temperature, "Anthropic accepts temperatures from 0 to 1")


def _api_key(check: TableChecker) -> str | None:
    variable = check.get("api_key_env")
    if variable is None:
        return None
    key = os.environ.get(variable)
    if not key and not _VARIABLE_NAME.fullmatch(variable):  # the key itself, given by mistake?
        raise ConfigError(
            f"{check.where} key 'api_key_env': no environment variable of that name is set (its "
            "value is not shown: is it the key itself?); give the name of the variable holding "
            "the key, such as OPENAI_API_KEY"
        )
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


def reject_duplicates(
    source: str, models: Sequence[ModelConfig], judge: JudgeConfig | None
) -> None:
    """Model labels must be unique, and none may be the judge's label: results and progress
    are counted per label."""
    seen: set[str] = set()
    for model in models:
        if model.name in seen:
            raise ConfigError(
                f"{source}: [[model]] name {model.name!r} appears twice; labels must be unique"
            )
        seen.add(model.name)
    if judge is not None and judge.label in seen:
        raise ConfigError(
            f"{source}: [[model]] name {judge.label!r} is the judge's label; rename the model"
        )


def expand_checkpoints(pattern: str) -> list[tuple[str, Path]]:
    """(label, path) for every match of the glob (`checkpoint_matches`); none is an error."""
    checkpoints = checkpoint_matches(pattern)
    if not checkpoints:
        raise ConfigError(f"checkpoints {pattern!r}: no file or directory matches")
    return checkpoints
