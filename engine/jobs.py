"""The jobs of a run and the answer slots that link them into a DAG.

An `AnswerSlot` is one (model, question, turn) answer: filled from the store, or by a generation
job once its result is committed. A job lists the slots it needs; when the last one fills, the job
is ready and builds its request. Generation of turn 2 needs turn 1 (it carries the model's own
answer); a single judgment needs the turns it shows; a pairwise game needs both models' turns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

from engine.chat import ChatRequest, ChatResponse, Message
from engine.config import EndpointConfig, JudgeConfig, ModelConfig
from engine.data import BenchData, Question
from engine.judge import (
    game_winner,
    parse_pair_verdict,
    parse_rating,
    render_pair_game,
    render_single,
)
from engine.store import JudgeIdentity

__all__ = [
    "CATEGORY_TEMPERATURE",
    "AnswerSlot",
    "GenerationJob",
    "Job",
    "PairJudgeJob",
    "SingleJudgeJob",
    "SlotState",
]

# FastChat's `temperature_config`; unknown categories get 0.7 as in gen_api_answer.
CATEGORY_TEMPERATURE = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
    "arena-hard-200": 0.0,
}
DEFAULT_TEMPERATURE = 0.7

Row = tuple[str, tuple[Any, ...]]

INSERT_RESPONSE = (
    "INSERT OR IGNORE INTO responses (key, api, label, model, request, text, finish_reason, "
    "prompt_tokens, completion_tokens, latency, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_PAID_RESPONSE = (
    "INSERT OR IGNORE INTO responses (key, api, label, model, request, text, finish_reason, "
    "prompt_tokens, completion_tokens, latency, created, cost) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
UPSERT_ANSWER = (
    "INSERT OR REPLACE INTO answers (model, bench, question_id, turn, sample, response_key, "
    "source, run_id, created) VALUES (?,?,?,?,?,?,?,?,?)"
)
UPSERT_JUDGMENT = (
    "INSERT OR REPLACE INTO judgments (judge, judge_model, judge_api, bench, kind, model, "
    "opponent, question_id, turn, game, sample, prompt_name, score, winner, parse_status, "
    "response_key, run_id, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


class SlotState:
    PENDING = 0
    READY = 1
    FAILED = 2
    UNKNOWN = 3  # plan only: would be generated, so its text cannot be known yet


class AnswerSlot:
    __slots__ = ("model", "question_id", "state", "text", "turn", "waiters")

    def __init__(self, model: str, question_id: int, turn: int) -> None:
        self.model = model
        self.question_id = question_id
        self.turn = turn
        self.state = SlotState.PENDING
        self.text: str | None = None
        self.waiters: list[Job] = []

    def fill(self, text: str) -> None:
        self.state = SlotState.READY
        self.text = text


def response_row(key: str, request: ChatRequest, response: ChatResponse, cost: float | None) -> Row:
    return (
        INSERT_PAID_RESPONSE,
        (
            key,
            request.api,
            request.label,
            request.model,
            request.canonical_json(),
            response.text,
            response.finish_reason,
            response.prompt_tokens,
            response.completion_tokens,
            response.latency,
            time.time(),
            cost,
        ),
    )


class Job:
    """A unit of work: one request to one endpoint, ready once its slots are filled."""

    __slots__ = ("endpoint", "missing", "needs")
    kind: ClassVar[str]

    def __init__(self, endpoint: EndpointConfig, needs: Sequence[AnswerSlot]) -> None:
        self.endpoint = endpoint
        self.needs = tuple(needs)
        self.missing = 0

    @property
    def model(self) -> str:
        raise NotImplementedError

    @property
    def question_id(self) -> int:
        raise NotImplementedError

    @property
    def turn(self) -> int:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def build_request(self) -> ChatRequest:
        raise NotImplementedError

    def result_rows(self, key: str, text: str, run_id: int | None) -> list[Row]:
        """The answer or judgment row pointing at response `key` (written with it)."""
        raise NotImplementedError

    def stored_key(self) -> str | None:
        """The response key the store already links this job's slot to, if any."""
        raise NotImplementedError

    def produces(self) -> AnswerSlot | None:
        return None


class GenerationJob(Job):
    __slots__ = ("bench", "history", "question", "slot", "stored")
    kind = "generate"

    def __init__(
        self,
        model: ModelConfig,
        bench: str,
        question: Question,
        slot: AnswerSlot,
        history: Sequence[AnswerSlot],
        stored: str | None,
    ) -> None:
        super().__init__(model, history[-1:])
        self.bench = bench
        self.question = question
        self.slot = slot
        self.history = tuple(history)
        self.stored = stored

    @property
    def model(self) -> str:
        return self.slot.model

    @property
    def question_id(self) -> int:
        return self.slot.question_id

    @property
    def turn(self) -> int:
        return self.slot.turn

    def describe(self) -> str:
        return f"generate {self.model} q{self.question_id} t{self.turn}"

    def temperature(self) -> float:
        """FastChat's order: forced (config) > question's required > category table > 0.7."""
        if self.endpoint.temperature is not None:
            return self.endpoint.temperature
        if self.question.required_temperature is not None:
            return self.question.required_temperature
        return CATEGORY_TEMPERATURE.get(self.question.category, DEFAULT_TEMPERATURE)

    def build_request(self) -> ChatRequest:
        messages: list[Message] = []
        if self.endpoint.system_prompt:
            messages.append(("system", self.endpoint.system_prompt))
        for earlier, previous in zip(self.question.turns, self.history, strict=False):
            messages.append(("user", earlier))
            messages.append(("assistant", previous.text or ""))
        messages.append(("user", self.question.turns[self.turn - 1]))
        return ChatRequest(
            messages=tuple(messages),
            temperature=self.temperature(),
            **self.endpoint.request_options(),
        )

    def stored_key(self) -> str | None:
        return self.stored

    def result_rows(self, key: str, text: str, run_id: int | None) -> list[Row]:
        params = (
            self.model,
            self.bench,
            self.question_id,
            self.turn,
            0,
            key,
            "generated",
            run_id,
            time.time(),
        )
        return [(UPSERT_ANSWER, params)]

    def produces(self) -> AnswerSlot:
        return self.slot


class _JudgeJob(Job):
    """One judge request; `sample` k > 0 is the k-th repeat of the same judgment (own cache key)."""

    __slots__ = ("bench", "identity", "prompt_name", "question", "reference", "sample", "stored")

    def __init__(
        self,
        judge: JudgeConfig,
        identity: JudgeIdentity,
        bench: BenchData,
        question: Question,
        needs: Sequence[AnswerSlot],
        stored: str | None,
        sample: int,
    ) -> None:
        super().__init__(judge, needs)
        self.identity = identity
        self.bench = bench
        self.question = question
        self.reference = _reference(bench, question)
        self.stored = stored
        self.sample = sample
        self.prompt_name = ""

    def _sample_suffix(self) -> str:
        return f" sample {self.sample}" if self.sample else ""

    @property
    def question_id(self) -> int:
        return self.question.question_id

    def stored_key(self) -> str | None:
        return self.stored

    def _request(self, system_prompt: str, user_prompt: str) -> ChatRequest:
        judge = self.endpoint
        return ChatRequest(
            messages=(("system", system_prompt), ("user", user_prompt)),
            temperature=judge.temperature if judge.temperature is not None else 0.0,
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
        opponent: str,
        game: int,
        score: float | None,
        winner: str | None,
        status: str,
    ) -> Row:
        judge = self.identity
        return (
            UPSERT_JUDGMENT,
            (
                judge.name,
                judge.model,
                judge.api,
                self.bench.bench,
                kind,
                model,
                opponent,
                self.question_id,
                self.turn,
                game,
                self.sample,
                self.prompt_name,
                score,
                winner,
                status,
                key,
                run_id,
                time.time(),
            ),
        )


def _reference(bench: BenchData, question: Question) -> Sequence[str] | None:
    from engine.judge import reference_turns

    return reference_turns(question, bench.references)


class SingleJudgeJob(_JudgeJob):
    __slots__ = ("_model", "_turn")
    kind = "judge"

    def __init__(
        self,
        judge: JudgeConfig,
        identity: JudgeIdentity,
        bench: BenchData,
        question: Question,
        slots: Sequence[AnswerSlot],
        stored: str | None,
        sample: int = 0,
    ) -> None:
        super().__init__(judge, identity, bench, question, slots, stored, sample)
        self._model = slots[0].model
        self._turn = len(slots)

    @property
    def model(self) -> str:
        return self._model

    @property
    def turn(self) -> int:
        return self._turn

    def describe(self) -> str:
        where = f"{self.model} q{self.question_id} t{self.turn}{self._sample_suffix()}"
        return f"judge {self.identity.name} single {where}"

    def build_request(self) -> ChatRequest:
        answers = [slot.text or "" for slot in self.needs]
        rendered = render_single(
            self.bench.judge_prompts, self.question, answers, self.turn, self.reference
        )
        self.prompt_name = rendered.prompt_name
        return self._request(rendered.system_prompt, rendered.user_prompt)

    def result_rows(self, key: str, text: str, run_id: int | None) -> list[Row]:
        rating = parse_rating(text)
        return [
            self._judgment_row(
                key,
                run_id,
                kind="single",
                model=self.model,
                opponent="",
                game=0,
                score=float(rating.score),
                winner=None,
                status=rating.status,
            )
        ]


class PairJudgeJob(_JudgeJob):
    __slots__ = ("_turn", "game", "model_1", "model_2")
    kind = "judge"

    def __init__(
        self,
        judge: JudgeConfig,
        identity: JudgeIdentity,
        bench: BenchData,
        question: Question,
        slots_1: Sequence[AnswerSlot],
        slots_2: Sequence[AnswerSlot],
        game: int,
        stored: str | None,
        sample: int = 0,
    ) -> None:
        needs = (*slots_1, *slots_2)
        super().__init__(judge, identity, bench, question, needs, stored, sample)
        self.model_1 = slots_1[0].model
        self.model_2 = slots_2[0].model
        self._turn = len(slots_1)
        self.game = game

    @property
    def model(self) -> str:
        return self.model_1

    @property
    def turn(self) -> int:
        return self._turn

    def describe(self) -> str:
        return (
            f"judge {self.identity.name} pair {self.model_1} vs {self.model_2} "
            f"q{self.question_id} t{self.turn} game {self.game}{self._sample_suffix()}"
        )

    def build_request(self) -> ChatRequest:
        answers_1 = [slot.text or "" for slot in self.needs[: self.turn]]
        answers_2 = [slot.text or "" for slot in self.needs[self.turn :]]
        rendered = render_pair_game(
            self.bench.judge_prompts,
            self.question,
            answers_1,
            answers_2,
            self.turn,
            self.reference,
            self.game,
        )
        self.prompt_name = rendered.prompt_name
        return self._request(rendered.system_prompt, rendered.user_prompt)

    def result_rows(self, key: str, text: str, run_id: int | None) -> list[Row]:
        output_format = self.bench.judge_prompts[self.prompt_name].output_format
        verdict = parse_pair_verdict(text, output_format)
        status = "missing" if verdict == "error" else "ok"
        return [
            self._judgment_row(
                key,
                run_id,
                kind="pair",
                model=self.model_1,
                opponent=self.model_2,
                game=self.game,
                score=None,
                winner=game_winner(verdict, self.game),
                status=status,
            )
        ]
