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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import orjson

from engine.config_judges import both_judge_forms, judges_from_toml
from engine.config_panel import PanelConfig, grading_of, panel_from_table
from engine.config_schema import (
    DEFAULT_REFERENCE,
    FASTCHAT_BASELINE,
    JUDGE_KEYS,
    JUDGE_MODES,
    MAX_ATTEMPTS,
    MAX_SAMPLES,
    MAX_SECONDS,
    MAX_TOKENS,
    MODEL_KEYS,
    SUPPORTED_APIS,
    TOP_KEYS,
    EndpointRole,
    JudgeMode,
)
from engine.config_sweeps import SWEEP_KEYS, CheckpointSweep
from engine.config_tables import (
    JUDGE_MAX_TOKENS,
    MODEL_MAX_TOKENS,
    SlurmOptions,
    TableChecker,
    endpoint_from_table,
    reject_duplicates,
    slurm_options,
    sweep_from_table,
)
from engine.errors import ConfigError

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
    "SlurmOptions",
    "judge_config",
    "load_config",
    "model_config",
    "read_config_toml",
    "run_config",
]

MODEL_TABLE_KEYS = {**MODEL_KEYS, **SWEEP_KEYS}  # a [[model]] table's, sweeps' keys included
# Where a config built in Python (engine.evaluate, engine.Model) is named in messages.
PYTHON_SOURCE = "engine.evaluate"


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """Where and how fast to send one model's (or the judge's) requests."""

    role: ClassVar[EndpointRole] = "model"

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
        """The config as stored with a run: everything but the key (and where it was written)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        del values["api_key"]
        values.pop("table_name", None)
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
    gpus_per_server: int | None = None  # None: 1 where GPUs are visible, else none
    replicas: int = 1  # servers of this one model at once, each on its own GPUs
    launcher: str | None = None  # "local" or "slurm"; None: the config's top-level launcher
    slurm: SlurmOptions | None = None  # its sbatch options; None: the top-level [slurm]
    keep_thinking: bool = False  # judge and turn 2 see inline <think> blocks (FastChat's way)
    step: int | None = None  # training step for `show --sweep`; None: the label's last integer

    @property
    def label(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class JudgeConfig(EndpointConfig):
    """The judge: FastChat's defaults are temperature 0 and 2048 output tokens."""

    max_tokens: int = JUDGE_MAX_TOKENS
    temperature: float | None = 0.0
    role: ClassVar[EndpointRole] = "judge"
    mode: JudgeMode = "single"
    baseline: str = FASTCHAT_BASELINE
    samples: int = 1  # judge every item this many times; its score is the median
    reference: str = DEFAULT_REFERENCE  # reads <bench>/reference_answer/<reference>.jsonl
    # The table messages name: "[judge]", or "[[judge]] 'NAME'" (engine.config_judges)
    table_name: str = field(default="[judge]", compare=False, repr=False)

    @property
    def label(self) -> str:
        """Distinct from model labels: GPT-4 may well be judging GPT-4's answers."""
        return f"judge {self.name}"

    def table(self) -> str:
        return self.table_name


@dataclass(frozen=True, slots=True)
class RunConfig:
    path: Path | None  # the TOML file, None for a config built in Python
    store: Path
    data: Path | None
    bench: str
    models: tuple[ModelConfig, ...]
    judges: tuple[JudgeConfig, ...]  # one per [[judge]] table (or the [judge] table)
    questions: tuple[int, ...] | None = None  # a subset of question ids; None = all
    # Model servers (`serve`) that may run at once per launcher; None: locally, as many as the
    # visible GPUs hold (`engine.serving.gpus`), one otherwise; one Slurm job.
    server_slots: int | None = None
    sweeps: tuple[CheckpointSweep, ...] = ()  # the `checkpoints` tables, for `--watch`
    panel: PanelConfig | None = None  # judges pooled into one leaderboard (`[panel]`)

    @property
    def judge(self) -> JudgeConfig | None:
        """The first judge (a [judge] table's), None without one; `judges` holds them all."""
        return self.judges[0] if self.judges else None

    @property
    def source(self) -> str:
        """What messages name as the config: its file, or the Python call that built it."""
        return PYTHON_SOURCE if self.path is None else str(self.path)

    def snapshot(self) -> dict[str, Any]:
        return {
            "path": self.source,
            "store": str(self.store),
            "data": None if self.data is None else str(self.data),
            "bench": self.bench,
            "questions": self.questions,
            "server_slots": self.server_slots,
            "models": [m.snapshot() for m in self.models],
            "judge": None if self.judge is None else self.judge.snapshot(),
            "judges": [judge.snapshot() for judge in self.judges],
            **({} if self.panel is None else {"panel": self.panel.snapshot()}),
        }


def read_config_toml(path: Path) -> dict[str, Any]:
    """A config file's TOML; ConfigError (one line) when it is missing, unreadable or not TOML."""
    text = ""
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        # ValueError: an integer of thousands of digits, which Python refuses to convert
        clash = both_judge_forms(str(path), text)
        raise ConfigError(clash or f"{path}: not valid TOML ({exc})") from None


def load_config(path: Path | str, *, watch: bool = False) -> RunConfig:
    """Read and validate a run config; raise ConfigError with one line on the first problem.

    With `watch`, sweeps are not expanded (a glob may match nothing yet): `engine.run.watch`
    expands them as checkpoints land."""
    path = Path(path)
    raw = read_config_toml(path)
    top = TableChecker(f"{path}: top-level", raw, TOP_KEYS)
    base = path.resolve().parent
    if top.get("store") is None:
        raise ConfigError(f"{path}: top-level key 'store' is missing; give the SQLite file to use")
    models, sweeps = _model_tables(path, top.get("model", []), base, watch=watch)
    judges = judges_from_toml(str(path), top.get("judge"), JudgeConfig, JUDGE_KEYS)
    reject_duplicates(str(path), models, judges)
    grading = {judge.name: grading_of(judge.mode, judge.baseline) for judge in judges}
    panel = panel_from_table(str(path), top.get("panel"), list(grading), grading)
    models, sweeps = _with_launchers(path, top, models, sweeps)
    data = top.get("data")
    return RunConfig(
        path=path,
        store=base / Path(top.get("store")).expanduser(),
        data=None if data is None else base / Path(data).expanduser(),
        bench=top.get("bench", "mt_bench"),
        models=models,
        judges=judges,
        questions=None if top.get("questions") is None else tuple(top.get("questions")),
        server_slots=top.get("server_slots"),
        sweeps=sweeps,
        panel=panel,
    )


def _with_launchers(
    path: Path,
    top: TableChecker,
    models: tuple[ModelConfig, ...],
    sweeps: tuple[CheckpointSweep, ...],
) -> tuple[tuple[ModelConfig, ...], tuple[CheckpointSweep, ...]]:
    """Each served model's launcher and sbatch options: its own, else the top level's; a
    sweep's template too, so checkpoints a watcher finds later are launched the same way."""
    launcher = top.get("launcher", "local")
    table = top.get("slurm")
    slurm = None if table is None else slurm_options(f"{path}: [slurm]", table)
    base = path.resolve().parent

    def launched(model: ModelConfig) -> ModelConfig:
        if not model.serve:
            return model
        options = _resolved(model.slurm or slurm, base)
        return replace(model, launcher=model.launcher or launcher, slurm=options)

    return (
        tuple(launched(model) for model in models),
        tuple(replace(sweep, template=launched(sweep.template)) for sweep in sweeps),
    )


def _resolved(slurm: SlurmOptions | None, base: Path) -> SlurmOptions | None:
    """A relative `directory` is relative to the config file, as every path in it is."""
    if slurm is None or slurm.directory is None:
        return slurm
    return replace(slurm, directory=str(base / Path(slurm.directory).expanduser()))


def _model_tables(
    path: Path, tables: list[Any], base: Path, *, watch: bool
) -> tuple[tuple[ModelConfig, ...], tuple[CheckpointSweep, ...]]:
    """The models, with every sweep's matches among them (with `watch`, the sweeps' models are
    left to the watcher, which expands the globs at every poll), and the sweeps."""
    models: list[ModelConfig] = []
    sweeps: list[CheckpointSweep] = []
    keys = MODEL_TABLE_KEYS
    for i, table in enumerate(tables):
        where = f"{path}: [[model]] #{i + 1}"
        sweep = sweep_from_table(where, table, base, ModelConfig, keys)
        if sweep is None:
            models.append(endpoint_from_table(where, table, ModelConfig, keys))
            continue
        sweeps.append(sweep)
        if not watch:
            models.extend(sweep.expand())
    return tuple(models), tuple(sweeps)


def model_config(**keys: Any) -> ModelConfig:
    """A `[[model]]` table given as keyword arguments, checked as the TOML table would be.

    A sweep (`checkpoints`) is a TOML config's: from Python, give one model per checkpoint.
    """
    if "checkpoints" in keys:
        raise ConfigError(
            "engine.Model key 'checkpoints': a sweep is written in a TOML config; from Python, "
            "give one engine.Model per checkpoint"
        )
    return endpoint_from_table("engine.Model", keys, ModelConfig, MODEL_TABLE_KEYS)


def judge_config(**keys: Any) -> JudgeConfig:
    """A `[judge]` table given as keyword arguments, checked as the TOML table would be."""
    return endpoint_from_table("engine.Judge", keys, JudgeConfig, JUDGE_KEYS)


def run_config(
    models: Iterable[ModelConfig],
    *,
    judges: Sequence[JudgeConfig],
    store: Path | str,
    data: Path | str | None = None,
    bench: str = "mt_bench",
    questions: Iterable[int] | None = None,
    server_slots: int | None = None,
) -> RunConfig:
    """A run config built in Python, its top-level values checked as TOML's would be."""
    chosen = tuple(models)
    top: dict[str, Any] = {"store": _path(store), "bench": bench}
    if server_slots is not None:
        top["server_slots"] = server_slots
    if data is not None:
        top["data"] = _path(data)
    if questions is not None:  # `questions=81` or `"81"` is refused as given, not as ['8', '1']
        listed = isinstance(questions, Iterable) and not isinstance(questions, (str, bytes))
        top["questions"] = list(questions) if listed else questions
    TableChecker(f"{PYTHON_SOURCE}: top-level", top, TOP_KEYS)
    reject_duplicates(PYTHON_SOURCE, chosen, judges)
    return RunConfig(
        path=None,
        store=Path(store).expanduser(),
        data=None if data is None else Path(data).expanduser(),
        bench=bench,
        models=chosen,
        judges=tuple(judges),
        questions=None if questions is None else tuple(top["questions"]),
        server_slots=server_slots,
    )


def _path(value: Any) -> Any:
    """A path given from Python as TOML would give it (a string); anything else as it is, for the
    table's check to refuse in its words (`store=5`)."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value
