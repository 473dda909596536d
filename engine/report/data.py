"""Everything the HTML report shows, read from the store once into frozen values.

The report is a snapshot: the store is opened read-only (so it works while a run writes), every
number is computed here with the same code `mtbench show` uses (`engine.report.results`,
`engine.scoring.summaries`; a judge run with several samples is scored by their median, as there),
and the renderer never touches SQLite. Answers are sample 0, as everywhere else; every judge reply
of every sample is kept, once, for the question browser. Answers and judge replies are shown as the
judge read them, without inline thinking (the default of `keep_thinking`; the report has no config),
and their thinking, inline or from a field of its own, beside them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from engine.bench.judge import rating_in_range
from engine.bench.thinking import split_thinking
from engine.errors import InputError
from engine.report.agreement_data import JudgeAgreement, gather_agreement
from engine.report.bt_table import pairwise_all_ratings
from engine.report.judged_views import JudgeViews, judge_views, judges_named
from engine.report.notes import judge_details
from engine.report.panel_data import PanelBoards, panel_boards
from engine.report.results import (
    UNKNOWN_CATEGORY,
    LastRun,
    expected_single_judgments,
    last_run,
    load_pair_matches,
    load_single_scores,
)
from engine.report.sweep_data import SweepBoard, gather_sweeps
from engine.scoring.bradley_terry import BradleyTerryBoard
from engine.scoring.reliability import (
    JudgeReliability,
    consistency,
    length_correlation,
    parse_rates,
    position_bias,
)
from engine.scoring.summaries import (
    PairModelSummary,
    SingleModelSummary,
    summarize_pairwise,
    summarize_single,
)
from engine.store import rows
from engine.store.rows import JudgeIdentity, judge_params
from engine.store.store import Store, open_store

__all__ = [
    "AnswerText",
    "JudgeReport",
    "JudgmentText",
    "QuestionView",
    "ReportData",
    "gather_report",
]


@dataclass(frozen=True, slots=True)
class QuestionView:
    question_id: int
    category: str
    turns: tuple[str, ...]  # empty when the store never recorded the question set
    reference: tuple[str, ...] | None  # the reference answer the judge was shown, if any


@dataclass(frozen=True, slots=True)
class AnswerText:
    model: str
    question_id: int
    turn: int
    text: str  # the answer as the judge saw it
    thinking: str | None = None  # its thinking: a reasoning field's, then the inline blocks'


@dataclass(frozen=True, slots=True)
class JudgmentText:
    """One stored judgment with the judge's reply. Single: game 0, no opponent; pair: winner."""

    kind: str  # 'single' | 'pair'
    model: str
    opponent: str
    question_id: int
    turn: int
    game: int
    sample: int
    score: float | None
    winner: str | None
    parse_status: str
    text: str  # the reply without inline thinking: what the verdict was read from
    thinking: str | None = None


@dataclass(frozen=True, slots=True)
class JudgeReport:
    """One judge identity's leaderboards, reliability figures and judgments."""

    identity: JudgeIdentity
    single: tuple[SingleModelSummary, ...]
    pairwise: tuple[PairModelSummary, ...]  # in the mode the matches were played, as in `show`
    pair_baseline: str | None  # the baseline of `pairwise`, None for all pairs
    expected: int | None  # single judgments each model should have
    reliability: JudgeReliability
    judgments: tuple[JudgmentText, ...]
    samples: int  # most judge samples stored for one item (1 unless run with `samples`)
    settings: tuple[str, ...] = ()  # reasoning settings (JSON) its judgments were made with
    bradley_terry: BradleyTerryBoard | None = None  # all-pairs judgments: ratings from every game

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def label(self) -> str:
        return f"{self.name} ({judge_details(self.identity, self.settings)})"


@dataclass(frozen=True, slots=True)
class ReportData:
    store: str
    bench: str
    created: float  # when the snapshot was taken (epoch seconds)
    models: tuple[str, ...]  # every model with an answer or a judgment, sorted
    questions: tuple[QuestionView, ...]
    answers: tuple[AnswerText, ...]
    judges: tuple[JudgeReport, ...]
    last_run: LastRun | None
    sweeps: tuple[SweepBoard, ...] = ()  # score against step, per sweep and judge
    panels: PanelBoards = field(default_factory=PanelBoards)  # recorded judge panels
    agreement: JudgeAgreement | None = None  # how much the judges agree, with two or more


async def gather_report(store_path: Path, bench: str, *, judge: str | None = None) -> ReportData:
    """Read a store into a `ReportData`; `judge` keeps only judges with that label."""
    store = await open_store(Path(store_path), write=False)
    try:
        every_judge = await judge_views(store, bench)
        advice = " (leave out --judge to report every judge)"
        judges = judges_named(every_judge, judge, store_path, bench, advice)
        answered = await store.answered_models(bench)
        answers = await _answers(store, bench)
        texts = {(a.model, a.question_id, a.turn): a.text for a in answers}
        reports = [await _judge_report(store, bench, views, texts) for views in judges]
        questions = await _questions(store, bench)
        latest = await last_run(store)
        sweeps = (await gather_sweeps(store, store_path, bench, judge, None))[0] if reports else []
        panels = await panel_boards(store, store_path, bench, judge=judge)
        agreement = await gather_agreement(store, bench, judges) if len(judges) > 1 else None
    finally:
        await store.close()
    if not texts and not reports:
        raise InputError(
            f"{store_path}: no answers or judgments for bench {bench}; "
            "run `mtbench generate` or `mtbench import` first"
        )
    models = set(answered)
    seen_ids = {answer.question_id for answer in answers}
    for report in reports:
        models.update(j.model for j in report.judgments)
        models.update(j.opponent for j in report.judgments if j.opponent)
        seen_ids.update(j.question_id for j in report.judgments)
    return ReportData(
        store=Path(store_path).name,
        bench=bench,
        created=time.time(),
        models=tuple(sorted(models)),
        questions=_with_unrecorded(questions, seen_ids),
        answers=answers,
        judges=tuple(reports),
        last_run=latest,
        sweeps=tuple(sweeps),
        panels=panels,
        agreement=agreement,
    )


async def _answers(store: Store, bench: str) -> tuple[AnswerText, ...]:
    found = await store.fetch(rows.ANSWERS_WITH_TEXT, {"bench": bench, "imported": None})
    return tuple(
        AnswerText(
            row["model"],
            row["question_id"],
            row["turn"],
            *_without_thinking(row["text"], row["reasoning"]),
        )
        for row in found
    )


def _without_thinking(text: str, reasoning: str | None) -> tuple[str, str | None]:
    """(the text as a judge reads it, all of its thinking)."""
    split = split_thinking(text)
    thoughts = [t for t in (reasoning, split.thinking) if t]
    return split.answer, "\n\n".join(thoughts) or None


async def _questions(store: Store, bench: str) -> list[QuestionView]:
    found = await store.fetch(rows.QUESTIONS, {"bench": bench})
    return [
        QuestionView(qid, category, _texts(turns) or (), _texts(reference))
        for qid, category, turns, reference in found
    ]


def _texts(column: str | None) -> tuple[str, ...] | None:
    return None if column is None else tuple(str(text) for text in orjson.loads(column))


def _with_unrecorded(questions: list[QuestionView], seen_ids: set[int]) -> tuple[QuestionView, ...]:
    """Answers imported without `--data` still get browsed: their question text is unknown."""
    known = {q.question_id for q in questions}
    missing = [QuestionView(qid, UNKNOWN_CATEGORY, (), None) for qid in seen_ids - known]
    return tuple(sorted([*questions, *missing], key=lambda q: q.question_id))


async def _judge_report(
    store: Store, bench: str, views: JudgeViews, answers: dict[tuple[str, int, int], str]
) -> JudgeReport:
    stored = views.judge
    identity = stored.identity
    judgments = await _judgment_texts(store, bench, views)
    scores = await load_single_scores(store, bench, identity) if "single" in stored.kinds else []
    single = summarize_single(scores) if scores else ()
    matches = await load_pair_matches(store, bench, identity) if "pair" in stored.kinds else []
    baseline = views.pair_view().baseline
    pairwise = summarize_pairwise(matches, baseline=baseline) if matches else ()
    # The judged turn's own answer: a turn-2 judgment grades the second answer.
    lengths = [
        (s.score, len(answers[(s.model, s.question_id, s.turn)]))
        for s in scores
        if (s.model, s.question_id, s.turn) in answers
    ]
    reliability = JudgeReliability(
        parse=parse_rates((j.kind, _flagged_status(j)) for j in judgments),
        position=position_bias(matches) if matches else None,
        consistency=consistency(matches) if matches else None,
        length=length_correlation(lengths) if single else None,
    )
    return JudgeReport(
        identity=identity,
        single=single,
        pairwise=pairwise,
        pair_baseline=baseline if pairwise else None,
        expected=await expected_single_judgments(store, bench) if single else None,
        reliability=reliability,
        judgments=judgments,
        samples=max((j.sample for j in judgments), default=0) + 1,
        settings=stored.settings,
        bradley_terry=pairwise_all_ratings(matches) if pairwise and baseline is None else None,
    )


def _flagged_status(judgment: JudgmentText) -> str:
    """Stores written before ratings were range-checked hold 'ok' for a rating of 11."""
    score = judgment.score
    if judgment.kind == "single" and score is not None and not rating_in_range(score):
        return "out_of_range"
    return judgment.parse_status


async def _judgment_texts(store: Store, bench: str, views: JudgeViews) -> tuple[JudgmentText, ...]:
    identity = views.judge.identity
    found = await store.fetch(rows.JUDGMENT_TEXTS, judge_params(identity, bench))
    judgments = []
    for *fields, text, reasoning in found:
        kind, model, opponent, qid, turn, game, sample, score, winner, status = fields
        reply, thinking = _without_thinking(text, reasoning)
        judgments.append(
            JudgmentText(
                kind,
                model,
                opponent,
                qid,
                turn,
                game,
                sample,
                score,
                winner,
                status,
                reply,
                thinking,
            )
        )
    return tuple(judgments)
