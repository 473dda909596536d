"""The jobs of a run and the answer slots that link them into a DAG; generation jobs.

An `AnswerSlot` is one (model, question, turn) answer: filled from the store, or by a generation
job once its result is committed. A job lists the slots it needs; when the last one fills, the job
is ready and builds its request. Generation of turn 2 needs turn 1 (it carries the model's own
answer); judgments (`engine.run.judge_jobs`) need the turns they show. A slot holds the answer as
they see it: without its inline thinking, unless its model keeps it (`engine.bench.thinking`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

from engine.bench.data import Question
from engine.bench.thinking import answer_text
from engine.chat import ChatRequest, ChatResponse, Message
from engine.config import EndpointConfig, ModelConfig
from engine.store.rows import AnswerRow, ResponseRow, Write

__all__ = [
    "CATEGORY_TEMPERATURE",
    "AnswerSlot",
    "GenerationJob",
    "Job",
    "SlotState",
    "response_row",
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


class SlotState:
    PENDING = 0
    READY = 1
    FAILED = 2
    UNKNOWN = 3  # plan only: would be generated, so its text cannot be known yet


class AnswerSlot:
    __slots__ = ("keep_thinking", "model", "question_id", "state", "text", "turn", "waiters")

    def __init__(
        self, model: str, question_id: int, turn: int, keep_thinking: bool = False
    ) -> None:
        self.model = model
        self.question_id = question_id
        self.turn = turn
        self.keep_thinking = keep_thinking
        self.state = SlotState.PENDING
        self.text: str | None = None
        self.waiters: list[Job] = []

    def fill(self, stored: str) -> None:
        """Fill with an answer as stored (generated, cached or read from the store): the slot
        keeps what the judge and turn 2 see of it."""
        self.state = SlotState.READY
        self.text = answer_text(stored, self.keep_thinking)


def response_row(
    key: str, request: ChatRequest, response: ChatResponse, cost: float | None
) -> Write:
    return ResponseRow(
        key=key,
        api=request.api,
        label=request.label,
        model=request.model,
        request=request.canonical_json(),
        text=response.text,
        finish_reason=response.finish_reason,
        prompt_tokens=response.prompt_tokens,
        completion_tokens=response.completion_tokens,
        latency=response.latency,
        created=time.time(),
        cost=cost,
        reasoning=response.reasoning,
        reasoning_tokens=response.reasoning_tokens,
    ).write()


class Job:
    """A unit of work: one request to one endpoint, ready once its slots are filled."""

    __slots__ = ("endpoint", "missing", "needs", "stored")
    kind: ClassVar[str]

    def __init__(
        self, endpoint: EndpointConfig, needs: Sequence[AnswerSlot], stored: str | None
    ) -> None:
        self.endpoint = endpoint
        self.needs = tuple(needs)
        self.stored = stored  # the response key the store links this job's result to, if any
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

    def result_rows(self, key: str, text: str, run_id: int | None) -> list[Write]:
        """The answer or judgment row pointing at response `key` (written with it)."""
        raise NotImplementedError

    def produces(self) -> AnswerSlot | None:
        return None

    def shown(self) -> Sequence[AnswerSlot]:
        """The answers whose text this job's prompt shows (plan estimates their tokens)."""
        return self.needs


class GenerationJob(Job):
    __slots__ = ("bench", "history", "question", "slot")
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
        super().__init__(model, history[-1:], stored)
        self.bench = bench
        self.question = question
        self.slot = slot
        self.history = tuple(history)

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

    def temperature(self) -> float | None:
        """FastChat's order: forced (config) > question's required > category table > 0.7;
        None for a reasoning model, which takes none."""
        if not self.endpoint.sends_temperature:
            return None
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

    def result_rows(self, key: str, text: str, run_id: int | None) -> list[Write]:
        answer = AnswerRow(
            self.model, self.bench, self.question_id, self.turn, 0, key, "generated", run_id,
            time.time(),
        )  # fmt: skip
        return [answer.write()]

    def produces(self) -> AnswerSlot:
        return self.slot

    def shown(self) -> Sequence[AnswerSlot]:
        return self.history
