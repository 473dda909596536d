"""Judge prompts and verdicts built and parsed exactly as FastChat's `llm_judge` (fschat 0.2.36).

Scores are only comparable with published MT-Bench numbers if the judge sees byte-identical prompts
and its replies are parsed by the same rules, quirks included (first `[[n]]` wins, a one-bracket
`[n]` fallback, `ast.literal_eval` typing, substring checks for `[[A]]`). This module reproduces
`common.py`'s `run_judge_single` / `run_judge_pair` and `gen_judgment.py`'s prompt choice as pure
functions; sending the prompt and storing the reply belong to other modules.

The judge receives `[system, user]` messages: FastChat's gpt-4 conversation template with the
system message set to the prompt's `system_prompt`; FastChat omits an empty system message.
"""

from __future__ import annotations

import ast
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.bench.data import JudgePrompt, Question
from engine.errors import DataError

__all__ = [
    "NEED_REF_CATEGORIES",
    "RATING_MAX",
    "RATING_MIN",
    "TIE_DELTA",
    "RatingParse",
    "RenderedJudgePrompt",
    "game_winner",
    "needs_reference",
    "pair_prompt_name",
    "parse_pair_verdict",
    "parse_rating",
    "rating_in_range",
    "rating_literal",
    "reference_turns",
    "render_pair",
    "render_pair_game",
    "render_single",
    "single_prompt_name",
]

NEED_REF_CATEGORIES = ("math", "reasoning", "coding", "arena-hard-200")
# Two-score verdicts closer than this count as a tie (FastChat's `TIE_DELTA`).
TIE_DELTA = 0.1
# The scale every single-grading prompt asks for ("on a scale of 1 to 10").
RATING_MIN = 1
RATING_MAX = 10
MISSING_RATING = -1

_ONE_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_ONE_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
_TWO_SCORE = re.compile(r"\[\[(\d+\.?\d*),\s?(\d+\.?\d*)\]\]")
_TWO_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*),\s?(\d+\.?\d*)\]")

_LARGEST_FLOAT_INT = int(sys.float_info.max)

_GAME_WINNERS = {1: {"A": "model_1", "B": "model_2"}, 2: {"A": "model_2", "B": "model_1"}}


@dataclass(frozen=True, slots=True)
class RenderedJudgePrompt:
    """One judge request: which prompt was chosen and the two message texts it produced."""

    prompt_name: str
    system_prompt: str
    user_prompt: str


@dataclass(frozen=True, slots=True)
class RatingParse:
    """A `[[rating]]` verdict. `status` is "ok" (`[[n]]`), "fallback" (`[n]`), "missing" (no
    rating; FastChat records -1), "invalid" (a match `ast.literal_eval` rejects, such as "[[05]]"
    or a number of more than 4300 digits: FastChat's run crashes there, we record -1) or
    "out_of_range" (a number outside 1-10, such as "[[11]]" or "[[0]]": FastChat averages it as it
    is, and so do we, but it is flagged). `score` is always a float-convertible number: a rating
    too large for a float (FastChat keeps the int, and its averages fail) is infinity."""

    score: int | float
    status: str


def needs_reference(category: str) -> bool:
    return category in NEED_REF_CATEGORIES


def single_prompt_name(category: str, turn: int) -> str:
    _check_turn(turn)
    base = "single-math-v1" if needs_reference(category) else "single-v1"
    return base if turn == 1 else f"{base}-multi-turn"


def pair_prompt_name(category: str, turn: int) -> str:
    _check_turn(turn)
    base = "pair-math-v1" if needs_reference(category) else "pair-v2"
    return base if turn == 1 else f"{base}-multi-turn"


def reference_turns(
    question: Question, references: Mapping[int, Sequence[str]]
) -> Sequence[str] | None:
    """The reference answer FastChat passes for this question: only for reference categories."""
    if not needs_reference(question.category):
        return None
    reference = references.get(question.question_id)
    if reference is None:
        raise DataError(
            f"question {question.question_id} ({question.category}) needs a reference answer "
            "but the reference answer file has none"
        )
    return reference


def render_single(
    prompts: Mapping[str, JudgePrompt],
    question: Question,
    answer_turns: Sequence[str],
    turn: int,
    reference: Sequence[str] | None,
) -> RenderedJudgePrompt:
    """The prompt FastChat's `run_judge_single` sends for one answer's turn 1 or turn 2."""
    prompt = _prompt(prompts, single_prompt_name(question.category, turn))
    _check_turns(question.turns, turn, "question")
    _check_turns(answer_turns, turn, "answer")
    fields = _reference_fields(question, reference, turn)
    if turn == 1:
        fields.update(question=question.turns[0], answer=answer_turns[0])
    else:
        fields.update(
            question_1=question.turns[0],
            question_2=question.turns[1],
            answer_1=answer_turns[0],
            answer_2=answer_turns[1],
        )
    return _render(prompt, fields)


def render_pair(
    prompts: Mapping[str, JudgePrompt],
    question: Question,
    answers_a: Sequence[str],
    answers_b: Sequence[str],
    turn: int,
    reference: Sequence[str] | None,
) -> RenderedJudgePrompt:
    """The prompt FastChat's `run_judge_pair` sends with assistant A and B in that order."""
    prompt = _prompt(prompts, pair_prompt_name(question.category, turn))
    _check_turns(question.turns, turn, "question")
    _check_turns(answers_a, turn, "answer A")
    _check_turns(answers_b, turn, "answer B")
    fields = _reference_fields(question, reference, turn)
    if turn == 1:
        fields.update(question=question.turns[0], answer_a=answers_a[0], answer_b=answers_b[0])
    else:
        fields.update(
            question_1=question.turns[0],
            question_2=question.turns[1],
            answer_a_1=answers_a[0],
            answer_b_1=answers_b[0],
            answer_a_2=answers_a[1],
            answer_b_2=answers_b[1],
        )
    return _render(prompt, fields)


def render_pair_game(
    prompts: Mapping[str, JudgePrompt],
    question: Question,
    answers_1: Sequence[str],
    answers_2: Sequence[str],
    turn: int,
    reference: Sequence[str] | None,
    game: int,
) -> RenderedJudgePrompt:
    """Game 1 shows model_1 as assistant A; game 2 swaps them to cancel position bias."""
    _check_game(game)
    if game == 2:
        answers_1, answers_2 = answers_2, answers_1
    return render_pair(prompts, question, answers_1, answers_2, turn, reference)


def parse_rating(text: str) -> RatingParse:
    """FastChat's `[[rating]]` parser: the first `[[n]]`, else the first `[n]`, else -1."""
    match = _ONE_SCORE.search(text)
    status = "ok"
    if match is None:
        match = _ONE_SCORE_BACKUP.search(text)
        status = "fallback"
    if match is None:
        return RatingParse(MISSING_RATING, "missing")
    score = _literal_number(match.group(1))
    if score is None:
        return RatingParse(MISSING_RATING, "invalid")
    if not rating_in_range(score):
        return RatingParse(_float_safe(score), "out_of_range")
    return RatingParse(score, status)


def rating_literal(text: str) -> int | float | None:
    """The number FastChat's parser takes from `text`, exactly as it types it (an int may exceed
    a float's range), or None when it finds no rating or rejects it."""
    match = _ONE_SCORE.search(text) or _ONE_SCORE_BACKUP.search(text)
    return None if match is None else _literal_number(match.group(1))


def rating_in_range(score: float) -> bool:
    """Whether a rating is on the 1-10 scale; -1 (no rating) is not a rating and counts as in."""
    return score == MISSING_RATING or RATING_MIN <= score <= RATING_MAX


def _float_safe(score: int | float) -> int | float:
    if isinstance(score, int) and abs(score) > _LARGEST_FLOAT_INT:
        return math.inf
    return score


def parse_pair_verdict(text: str, output_format: str) -> str:
    """FastChat's pairwise parser: "A", "B", "tie" or "error" (no verdict found)."""
    if output_format == "[[A]]":
        return _parse_letter_verdict(text)
    if output_format == "[[rating_a,rating_b]]":
        return _parse_two_scores(text)
    raise ValueError(f"unsupported pairwise output format {output_format!r}")


def game_winner(verdict: str, game: int) -> str:
    """Map a game's "A"/"B" verdict to "model_1"/"model_2"; "tie" and "error" pass through."""
    _check_game(game)
    return _GAME_WINNERS[game].get(verdict, verdict)


def _parse_letter_verdict(text: str) -> str:
    # Substring checks in FastChat's order: a reply mentioning both "[[A]]" and "[[B]]" is "A".
    if "[[A]]" in text:
        return "A"
    if "[[B]]" in text:
        return "B"
    if "[[C]]" in text:
        return "tie"
    return "error"


def _parse_two_scores(text: str) -> str:
    match = _TWO_SCORE.search(text) or _TWO_SCORE_BACKUP.search(text)
    if match is None:
        return "error"
    score_a, score_b = (_literal_number(group.strip()) for group in match.groups())
    if score_a is None or score_b is None:
        return "error"
    if abs(score_a - score_b) <= TIE_DELTA:
        return "tie"
    return "A" if score_a > score_b else "B"


def _literal_number(token: str) -> int | float | None:
    # `ast.literal_eval` is what keeps "7" an int and turns "5." into 5.0, as in FastChat's files.
    # Its answer for ASCII digits is computed directly (it costs ~20 µs a call); a leading zero
    # ("05") is a SyntaxError for it, and an int of more than 4300 digits a ValueError, so None
    # here too.
    try:
        if token.isascii():
            if "." in token:
                return float(token)
            if token[0] == "0" and token.strip("0"):
                return None
            return int(token)
        value = ast.literal_eval(token)
    except (SyntaxError, ValueError):
        return None
    return value if isinstance(value, (int, float)) else None


def _reference_fields(
    question: Question, reference: Sequence[str] | None, turn: int
) -> dict[str, str]:
    if not needs_reference(question.category):
        return {}
    if reference is None or len(reference) < turn:
        raise DataError(
            f"question {question.question_id} ({question.category}) needs a reference answer "
            f"with {turn} turn(s) to be judged"
        )
    fields = {"ref_answer_1": reference[0]}
    if turn == 2:
        fields["ref_answer_2"] = reference[1]
    return fields


def _render(prompt: JudgePrompt, fields: dict[str, str]) -> RenderedJudgePrompt:
    return RenderedJudgePrompt(
        prompt_name=prompt.name,
        system_prompt=prompt.system_prompt,
        user_prompt=prompt.prompt_template.format(**fields),
    )


def _prompt(prompts: Mapping[str, JudgePrompt], name: str) -> JudgePrompt:
    prompt = prompts.get(name)
    if prompt is None:
        raise DataError(f"judge_prompts.jsonl has no prompt named {name!r}")
    return prompt


def _check_turns(turns: Sequence[str], turn: int, what: str) -> None:
    if len(turns) < turn:
        raise ValueError(f"{what} has {len(turns)} turn(s); cannot judge turn {turn}")


def _check_turn(turn: int) -> None:
    if turn not in (1, 2):
        raise ValueError(f"MT-Bench judges turn 1 or 2, not {turn}")


def _check_game(game: int) -> None:
    if game not in (1, 2):
        raise ValueError(f"a pairwise match has game 1 or 2, not {game}")
