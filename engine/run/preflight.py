"""Everything about a run that can be checked before its first request, checked then.

`engine.config` checks each value at load; this module checks the run as a whole against the data
it will use. Every judge prompt the judge mode needs, for the selected questions' categories and
the turns FastChat's rule judges, exists, has an output format the parsers read, and renders; every
question of a reference category has a reference answer with as many turns as will be judged; each
question's required temperature is one the generating model's API accepts; there is something to
judge. Each of these used to surface mid-run, after answers were paid for: a judge job whose prompt
cannot be built stalled the pipeline until a signal. A problem is an InputError (exit 2) raised
before the store is opened, so nothing is sent and nothing stored is touched.

It also returns notes for the summary: what the run does that a user may not expect (turns that are
answered but, by FastChat's rule, not judged).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from engine.bench.data import (
    BenchData,
    Question,
    judge_prompts_file,
    question_file,
    reference_file,
)
from engine.bench.judge import (
    needs_reference,
    pair_prompt_name,
    render_pair,
    render_single,
    single_prompt_name,
)
from engine.config import JudgeConfig, ModelConfig, RunConfig
from engine.errors import ConfigError, DataError, StoreError
from engine.run.graph import judged_pairs, judged_turns
from engine.serving.slots import plan_slots
from engine.serving.sweep import log_dir_problem, server_log_dir

__all__ = ["preflight"]

ANTHROPIC_MAX_TEMPERATURE = 1.0
PARSED_FORMATS = {"single": ("[[rating]]",), "pairwise": ("[[A]]", "[[rating_a,rating_b]]")}
IDS_SHOWN = 10
_RESTORE = "restore FastChat's file (`mtbench data fetch`) or leave the question out (`questions`)"


def preflight(
    config: RunConfig,
    bench: BenchData,
    *,
    generate: Sequence[ModelConfig],
    judge: JudgeConfig | None,
    judged: Sequence[str],
) -> tuple[str, ...]:
    """Raise an InputError for the first problem the run would meet; else the notes to print."""
    _check_temperatures(bench, generate)
    _check_server_logs(config, generate)
    plan_slots(config, generate)  # asking for more GPUs or slots than there are: a ConfigError
    if judge is None:
        return ()
    _check_something_to_judge(config, judge, judged)
    _check_judge_prompts(bench, judge)
    _check_references(bench)
    return _turn_notes(bench)


def _check_temperatures(bench: BenchData, generate: Sequence[ModelConfig]) -> None:
    """A question's required temperature is sent as it is; Anthropic refuses anything above 1.
    A thinking model is sent none."""
    for model in generate:
        if model.api != "anthropic" or model.temperature is not None or not model.sends_temperature:
            continue
        for question in bench.questions:
            required = question.required_temperature
            if required is not None and required > ANTHROPIC_MAX_TEMPERATURE:
                raise DataError(
                    f"{_where(bench, question_file, bench.bench)}: question "
                    f"{question.question_id} has required_temperature {required:g}, and "
                    f"Anthropic accepts 0 to 1; set [[model]] {model.name!r} temperature, or "
                    "fix the question"
                )


def _check_server_logs(config: RunConfig, generate: Sequence[ModelConfig]) -> None:
    """Servers the engine starts write their output under the store's `servers/`; a file there,
    or a directory it may not write, would fail every served model at its server's start."""
    if not any(model.serve for model in generate):
        return
    directory = server_log_dir(config.store)
    problem = log_dir_problem(directory)
    if problem is not None:
        raise StoreError(
            f"{directory}: served models write their logs there, but {problem}; move it away "
            f"or choose another `store` in {config.source}"
        )


def _check_something_to_judge(config: RunConfig, judge: JudgeConfig, judged: Sequence[str]) -> None:
    if not judged:
        raise ConfigError(
            f"{config.store}: no answers to judge (the store has none for {config.bench} and "
            f"{config.source} has no [[model]]); run `mtbench generate` or `mtbench import` first"
        )
    if judge.mode != "single" and not judged_pairs(judge, judged):
        raise ConfigError(
            f"{config.source}: {judge.table()} key 'mode' = {judge.mode!r}: nothing to compare "
            f"among {', '.join(judged)}; add models, or use mode = 'single'"
        )


def _check_judge_prompts(bench: BenchData, judge: JudgeConfig) -> None:
    kind = "single" if judge.mode == "single" else "pairwise"
    name_for = single_prompt_name if kind == "single" else pair_prompt_name
    needed: dict[str, tuple[Question, int]] = {}
    for question in bench.questions:
        for turn in judged_turns(question):
            needed.setdefault(name_for(question.category, turn), (question, turn))
    where = _where(bench, judge_prompts_file)
    for name, (question, turn) in needed.items():
        prompt = bench.judge_prompts.get(name)
        if prompt is None:
            raise DataError(
                f"{where}: no judge prompt named {name!r}, which {judge.mode} judging of turn "
                f"{turn} of question {question.question_id} ({question.category}) needs; "
                "restore FastChat's file (`mtbench data fetch`)"
            )
        if prompt.output_format not in PARSED_FORMATS[kind]:
            raise DataError(
                f"{where}: judge prompt {name!r} has output_format {prompt.output_format!r}; "
                f"{kind} judging reads {' or '.join(PARSED_FORMATS[kind])}"
            )
        problem = _render_problem(bench, question, turn, kind)
        if problem is not None:
            raise DataError(f"{where}: judge prompt {name!r} cannot be filled in: {problem}")


def _render_problem(bench: BenchData, question: Question, turn: int, kind: str) -> str | None:
    """Render the prompt as the judge job will, with stand-in answers; why it fails, or None."""
    answers = tuple(f"answer {t}" for t in range(1, turn + 1))
    reference = None
    if needs_reference(question.category):
        reference = tuple(f"reference {t}" for t in range(1, turn + 1))
    try:
        if kind == "single":
            render_single(bench.judge_prompts, question, answers, turn, reference)
        else:
            render_pair(bench.judge_prompts, question, answers, answers, turn, reference)
    except KeyError as exc:
        return f"its prompt_template has a placeholder {{{exc.args[0]}}} FastChat never fills"
    except (IndexError, ValueError, AttributeError) as exc:
        return f"its prompt_template cannot be formatted ({type(exc).__name__}: {exc})"
    return None


def _check_references(bench: BenchData) -> None:
    where = _where(bench, reference_file, bench.bench, bench.reference_set)
    for question in bench.questions:
        if not needs_reference(question.category):
            continue
        turns = max(judged_turns(question))
        reference = bench.references.get(question.question_id)
        if reference is None:
            raise DataError(
                f"{where}: no reference answer for question {question.question_id}, which the "
                f"judge needs for {question.category} questions; {_RESTORE}"
            )
        if len(reference) < turns:
            raise DataError(
                f"{where}: the reference answer of question {question.question_id} "
                f"({question.category}) has {len(reference)} turn(s), and judging turn {turns} "
                f"needs {turns}; {_RESTORE}"
            )


def _turn_notes(bench: BenchData) -> tuple[str, ...]:
    """Questions whose turns are answered but not all judged (FastChat judges turn 2 only of
    two-turn questions), grouped by turn count."""
    by_turns: dict[int, list[int]] = {}
    for question in bench.questions:
        if len(question.turns) > 2:
            by_turns.setdefault(len(question.turns), []).append(question.question_id)
    return tuple(
        f"{_ids(ids)} {'has' if len(ids) == 1 else 'have'} {turns} turns: all {turns} are "
        f"answered, only turn 1 is judged (FastChat judges turn 2 only of two-turn questions)"
        for turns, ids in sorted(by_turns.items())
    )


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:IDS_SHOWN])
    more = f" and {len(ids) - IDS_SHOWN} more" if len(ids) > IDS_SHOWN else ""
    return f"question{'s' if len(ids) > 1 else ''} {shown}{more}"


def _where(bench: BenchData, file_of: Callable[..., Path], *args: str) -> str:
    """The data file a message is about, by its full path when the data dir is known."""
    if bench.data_dir is None:
        return file_of(Path(), *args).as_posix()
    return str(file_of(bench.data_dir, *args))
