"""Expand a run config into the job DAG: models × questions × turns, then the judgments on top.

Answers the run does not generate (imported ones, the pairwise baseline, everything when only
judging) are read from the store into filled slots. An answer that is neither generated nor stored
becomes a failed slot, so the judgments that need it fail visibly instead of silently vanishing.
A slot shows its answer without inline thinking unless the config's model has `keep_thinking`
(stored models the config does not name get the default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

from engine.bench.data import BenchData, Question
from engine.config import JudgeConfig, ModelConfig
from engine.errors import InputError
from engine.run.jobs import AnswerSlot, GenerationJob, Job, SlotState
from engine.run.judge_jobs import Judging, PairJudgeJob, SingleJudgeJob
from engine.store.store import JudgeIdentity, Store

if TYPE_CHECKING:
    from engine.run.judge_setups import JudgeSetup

__all__ = ["RunGraph", "build_graph", "judge_identity", "judged_pairs", "judged_turns"]

SlotKey = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class RunGraph:
    jobs: list[Job]  # in the order they are attached: generation first, then judging


def judge_identity(judge: JudgeConfig) -> JudgeIdentity:
    return JudgeIdentity(judge.name, judge.model, judge.api)


def judged_turns(question: Question) -> tuple[int, ...]:
    """FastChat's rule: turn 1 of every question, turn 2 only of questions with exactly two."""
    return (1, 2) if len(question.turns) == 2 else (1,)


def judged_pairs(judge: JudgeConfig, models: Sequence[str]) -> list[tuple[str, str]]:
    """FastChat's matches: every model against the baseline, or every pair in name order."""
    if judge.mode == "pairwise-baseline":
        return [(model, judge.baseline) for model in models if model != judge.baseline]
    return list(combinations(sorted(models), 2))


async def build_graph(
    store: Store,
    bench: BenchData,
    *,
    generate: Sequence[ModelConfig],
    judges: Sequence[JudgeSetup] = (),
    keep_thinking: frozenset[str] = frozenset(),
) -> RunGraph:
    """`judges`: every judge with the models it judges, each its own jobs on the same answers;
    `keep_thinking`: the models whose answers are shown with their inline thinking."""
    answers = await store.answer_index(bench.bench)
    slots: dict[SlotKey, AnswerSlot] = {}
    jobs: list[Job] = []
    generated = {model.name for model in generate}
    from_store = {m for setup in judges for m in setup.judged if m not in generated}
    imported = {
        m for (m, _, _, s), (_, source) in answers.items() if source == "imported" and s == 0
    }
    texts = await store.answer_texts(bench.bench, sorted(from_store | (imported & generated)))

    for model in generate:
        for question in bench.questions:
            history: list[AnswerSlot] = []
            for turn in range(1, len(question.turns) + 1):
                slot = _slot(slots, model.name, question, turn, model.keep_thinking)
                stored = answers.get((model.name, question.question_id, turn, 0))
                if stored is not None and stored[1] == "imported":
                    slot.fill(texts[(model.name, question.question_id, turn)])
                else:
                    key = stored[0] if stored is not None else None
                    jobs.append(GenerationJob(model, bench.bench, question, slot, history, key))
                history.append(slot)

    for name in sorted(from_store):
        for question in bench.questions:
            for turn in range(1, len(question.turns) + 1):
                slot = _slot(slots, name, question, turn, name in keep_thinking)
                text = texts.get((name, question.question_id, turn))
                if text is None:
                    slot.state = SlotState.FAILED
                else:
                    slot.fill(text)

    for setup in judges:
        jobs.extend(await _judge_jobs(store, setup.bench, setup.judge, setup.judged, slots))
    return RunGraph(jobs)


def _slot(
    slots: dict[SlotKey, AnswerSlot],
    model: str,
    question: Question,
    turn: int,
    keep_thinking: bool,
) -> AnswerSlot:
    key = (model, question.question_id, turn)
    slot = slots.get(key)
    if slot is None:
        slot = slots[key] = AnswerSlot(model, question.question_id, turn, keep_thinking)
    return slot


async def _judge_jobs(
    store: Store,
    bench: BenchData,
    judge: JudgeConfig,
    judged_models: Sequence[str],
    slots: dict[SlotKey, AnswerSlot],
) -> list[Job]:
    judging = Judging(judge, judge_identity(judge), bench)
    stored = await store.judgment_index(judging.identity, bench.bench)
    jobs: list[Job] = []
    for question in bench.questions:
        qid = question.question_id
        for turn in judged_turns(question):
            for sample in range(judge.samples):
                if judge.mode == "single":
                    for model in judged_models:
                        needs = [slots[(model, qid, t)] for t in range(1, turn + 1)]
                        key = stored.get(("single", model, "", qid, turn, 0, sample))
                        jobs.append(SingleJudgeJob(judging, question, needs, key, sample))
                    continue
                for model_1, model_2 in judged_pairs(judge, judged_models):
                    needs_1 = [slots[(model_1, qid, t)] for t in range(1, turn + 1)]
                    needs_2 = [slots[(model_2, qid, t)] for t in range(1, turn + 1)]
                    for game in (1, 2):
                        key = stored.get(("pair", model_1, model_2, qid, turn, game, sample))
                        jobs.append(
                            PairJudgeJob(judging, question, needs_1, needs_2, game, key, sample)
                        )
    return jobs


def check_baseline(judge: JudgeConfig | None, available: Sequence[str], store_path: object) -> None:
    """Pairwise-baseline needs the baseline's answers: generated in this run or already stored."""
    if judge is None or judge.mode != "pairwise-baseline" or judge.baseline in available:
        return
    raise InputError(
        f"{store_path}: baseline {judge.baseline!r} has no answers in the store; add it as a "
        f"[[model]], import its FastChat answers, or set {judge.table()} baseline"
    )
