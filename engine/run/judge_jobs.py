"""Judge jobs: one request to the judge for one answer (single) or one game of a pair.

A single judgment needs the turns it shows (turn 2 shows the whole conversation); a pairwise game
needs both models' turns, and is played twice with the answers swapped (FastChat's position-bias
control). Prompts and verdict parsing are `engine.bench.judge`'s, FastChat's to the byte; the
verdict is read from the reply's answer only, never from thinking (inline blocks are cut first, and
thinking sent in a field of its own is not in the text at all): a judge that muses "maybe [[3]]"
before answering "[[8]]" gave 8. Each judgment row records the judge's reasoning settings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from engine.bench.data import BenchData, Question
from engine.bench.judge import (
    RenderedJudgePrompt,
    game_winner,
    parse_pair_verdict,
    parse_rating,
    reference_turns,
    render_pair_game,
    render_single,
)
from engine.bench.thinking import split_thinking
from engine.chat import ChatRequest
from engine.config import JudgeConfig
from engine.reasoning import judge_settings_json
from engine.run.jobs import AnswerSlot, Job
from engine.store.rows import JudgeIdentity, JudgmentRow, Write

__all__ = ["Judging", "PairJudgeJob", "SingleJudgeJob"]


@dataclass(frozen=True, slots=True)
class Judging:
    """What every judge job of a run shares: the judge, its stored identity, the bench."""

    judge: JudgeConfig
    identity: JudgeIdentity
    bench: BenchData


class _JudgeJob(Job):
    """One judge request; `sample` k > 0 is the k-th repeat of the same judgment (own cache key)."""

    __slots__ = ("_turn", "bench", "identity", "prompt_name", "question", "reference", "sample")

    def __init__(
        self,
        judging: Judging,
        question: Question,
        needs: Sequence[AnswerSlot],
        stored: str | None,
        sample: int,
        turn: int,
    ) -> None:
        super().__init__(judging.judge, needs, stored)
        self.identity = judging.identity
        self.bench = judging.bench
        self.question = question
        self.reference = reference_turns(question, judging.bench.references)
        self.sample = sample
        self.prompt_name = ""
        self._turn = turn

    def _sample_suffix(self) -> str:
        return f" sample {self.sample}" if self.sample else ""

    @property
    def question_id(self) -> int:
        return self.question.question_id

    @property
    def turn(self) -> int:
        return self._turn

    def _request(self, rendered: RenderedJudgePrompt) -> ChatRequest:
        self.prompt_name = rendered.prompt_name
        judge = self.endpoint
        temperature = judge.temperature if judge.temperature is not None else 0.0
        return ChatRequest(
            messages=(("system", rendered.system_prompt), ("user", rendered.user_prompt)),
            temperature=temperature if judge.sends_temperature else None,
            sample=self.sample,
            **judge.request_options(),
        )

    def _judgment_row(
        self,
        key: str,
        run_id: int | None,
        *,
        kind: str,
        model: str,
        status: str,
        opponent: str = "",
        game: int = 0,
        score: float | None = None,
        winner: str | None = None,
    ) -> Write:
        judge = self.identity
        return JudgmentRow(
            judge=judge.name,
            judge_model=judge.model,
            judge_api=judge.api,
            bench=self.bench.bench,
            kind=kind,
            model=model,
            opponent=opponent,
            question_id=self.question_id,
            turn=self.turn,
            game=game,
            sample=self.sample,
            prompt_name=self.prompt_name,
            score=score,
            winner=winner,
            parse_status=status,
            response_key=key,
            run_id=run_id,
            created=time.time(),
            judge_settings=judge_settings_json(
                self.endpoint, None if self.reference is None else self.bench.own_reference_set
            ),
        ).write()


class SingleJudgeJob(_JudgeJob):
    __slots__ = ("_model",)
    kind = "judge"

    def __init__(
        self,
        judging: Judging,
        question: Question,
        slots: Sequence[AnswerSlot],
        stored: str | None,
        sample: int = 0,
    ) -> None:
        super().__init__(judging, question, slots, stored, sample, len(slots))
        self._model = slots[0].model

    @property
    def model(self) -> str:
        return self._model

    def describe(self) -> str:
        where = f"{self.model} q{self.question_id} t{self.turn}{self._sample_suffix()}"
        return f"judge {self.identity.name} single {where}"

    def build_request(self) -> ChatRequest:
        answers = [slot.text or "" for slot in self.needs]
        return self._request(
            render_single(
                self.bench.judge_prompts, self.question, answers, self.turn, self.reference
            )
        )

    def result_rows(self, key: str, text: str, run_id: int | None) -> list[Write]:
        rating = parse_rating(split_thinking(text).answer)
        score, status = float(rating.score), rating.status
        return [
            self._judgment_row(
                key, run_id, kind="single", model=self.model, score=score, status=status
            )
        ]


class PairJudgeJob(_JudgeJob):
    __slots__ = ("game", "model_1", "model_2")
    kind = "judge"

    def __init__(
        self,
        judging: Judging,
        question: Question,
        slots_1: Sequence[AnswerSlot],
        slots_2: Sequence[AnswerSlot],
        game: int,
        stored: str | None,
        sample: int = 0,
    ) -> None:
        needs = (*slots_1, *slots_2)
        super().__init__(judging, question, needs, stored, sample, len(slots_1))
        self.model_1 = slots_1[0].model
        self.model_2 = slots_2[0].model
        self.game = game

    @property
    def model(self) -> str:
        return self.model_1

    def describe(self) -> str:
        return (
            f"judge {self.identity.name} pair {self.model_1} vs {self.model_2} "
            f"q{self.question_id} t{self.turn} game {self.game}{self._sample_suffix()}"
        )

    def build_request(self) -> ChatRequest:
        answers_1 = [slot.text or "" for slot in self.needs[: self.turn]]
        answers_2 = [slot.text or "" for slot in self.needs[self.turn :]]
        return self._request(
            render_pair_game(
                self.bench.judge_prompts,
                self.question,
                answers_1,
                answers_2,
                self.turn,
                self.reference,
                self.game,
            )
        )

    def result_rows(self, key: str, text: str, run_id: int | None) -> list[Write]:
        output_format = self.bench.judge_prompts[self.prompt_name].output_format
        verdict = parse_pair_verdict(split_thinking(text).answer, output_format)
        status = "missing" if verdict == "error" else "ok"
        return [
            self._judgment_row(
                key,
                run_id,
                kind="pair",
                model=self.model_1,
                status=status,
                opponent=self.model_2,
                game=self.game,
                winner=game_winner(verdict, self.game),
            )
        ]
