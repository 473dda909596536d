"""The question browser of the HTML report: its controls, and the data its script reads.

Answers and judge replies are most of a report's bytes (31 models x 80 questions x 2 turns, plus
every judge reply), so each text is stored exactly once and referred to by index: model, judge
and question are numbers into lists, not repeated names. The data goes into a
`<script type="application/json">` block, which the browser never runs; `embed_json` escapes
every `<`, `>` and `&` so that no text, however hostile, can end that block early.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from engine.report.data import AnswerText, JudgmentText, ReportData
from engine.report.packing import pack

__all__ = ["QuestionRows", "browser_payload", "browser_section", "embed_json"]


def embed_json(value: Any) -> str:
    """JSON safe inside `<script type="application/json">`: no `</script>` or `<!--` possible."""
    raw = orjson.dumps(value).decode()
    return raw.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def browser_section() -> str:
    return (
        '<section id="questions"><h2>Questions</h2>'
        "<p class=\"note\">Every question with each model's answers and each judge's reply. "
        "Link to a question with <code>#q-ID</code>.</p>"
        '<div class="browser-controls">'
        '<button type="button" id="previous-question" aria-label="previous question">◀</button>'
        '<label>Question <select id="question-select"></select></label>'
        '<button type="button" id="next-question" aria-label="next question">▶</button>'
        '<label>Model <select id="model-filter"><option value="">all models</option></select>'
        '</label></div><div id="question-view"></div></section>'
    )


def browser_payload(
    data: ReportData, colors: dict[str, str], *, texts: bool = True
) -> dict[str, Any]:
    """Indexes instead of repeated names; each answer and judge reply appears exactly once.

    What the script (`REPORT_JS`) reads: models, colors, judges and questions, and per question
    id, `questionTexts[q]`, that question's rows packed by `engine.report.packing` (gzip, then
    base64; the script unpacks a question when it is shown, so a report of 50 checkpoints opens
    as fast as one of 2). A packed question holds:
    answers[model] = [turn 1 text, turn 2 text] or null;
    thinking[model] = [turn 1 thinking, turn 2 thinking] or null (only answers that thought);
    single = [[judge, model, turn, score, parse_status, text, sample, thinking], ...];
    pair = [[judge, model_1, model_2, turn, game, winner, parse_status, text, sample,
    thinking], ...].
    Without `texts` (`report --no-texts`), every answer and judge reply is `false` and no
    thinking is kept (scores and parse statuses stay), and `textsLeftOut` is true.
    """
    model_index = {model: i for i, model in enumerate(data.models)}
    rows: dict[int, QuestionRows] = {}
    for answer in data.answers:
        question = rows.setdefault(answer.question_id, QuestionRows(len(model_index)))
        question.put_answer(model_index[answer.model], answer, texts=texts)
    for j_index, judge in enumerate(data.judges):
        for j in judge.judgments:
            question = rows.setdefault(j.question_id, QuestionRows(len(model_index)))
            question.put_judgment(j_index, model_index, j, texts=texts)
    return {
        "models": list(data.models),
        "colors": [colors[model] for model in data.models],
        "judges": [{"name": j.name, "label": j.label, "samples": j.samples} for j in data.judges],
        "questions": [
            {
                "id": q.question_id,
                "category": q.category,
                "turns": list(q.turns),
                "reference": None if q.reference is None else list(q.reference),
            }
            for q in data.questions
        ],
        "questionTexts": {str(qid): pack(question.as_dict()) for qid, question in rows.items()},
        "textsLeftOut": not texts,
    }


class QuestionRows:
    """One question's answers and judgments, as the script reads them once unpacked."""

    def __init__(self, models: int) -> None:
        self.models = models
        self.answers: list[list[str | bool | None] | None] = [None] * models
        self.thinking: list[list[str | bool | None] | None] = [None] * models
        self.single: list[list[Any]] = []
        self.pair: list[list[Any]] = []

    def put_answer(self, model: int, answer: AnswerText, *, texts: bool) -> None:
        _put_turn(self.answers, model, answer.turn, answer.text if texts else False)
        if answer.thinking is not None and texts:
            _put_turn(self.thinking, model, answer.turn, answer.thinking)

    def put_judgment(
        self, judge: int, model_index: dict[str, int], j: JudgmentText, *, texts: bool
    ) -> None:
        text, thinking = (j.text, j.thinking) if texts else (False, None)
        if j.kind == "single":
            self.single.append(
                [judge, model_index[j.model], j.turn, _score(j.score), j.parse_status, text,
                 j.sample, thinking]
            )  # fmt: skip
        else:
            self.pair.append(
                [judge, model_index[j.model], model_index[j.opponent], j.turn, j.game, j.winner,
                 j.parse_status, text, j.sample, thinking]
            )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "answers": self.answers,
            "thinking": self.thinking,
            "single": self.single,
            "pair": self.pair,
        }


def _put_turn(
    rows: list[list[str | bool | None] | None], model: int, turn: int, text: str | bool
) -> None:
    turns = rows[model] or []
    turns.extend([None] * (turn - len(turns)))
    turns[turn - 1] = text
    rows[model] = turns


def _score(score: float | None) -> float | str | None:
    """JSON has no infinity (orjson would write null, read as "no rating"): say "inf"."""
    if score is not None and not math.isfinite(score):
        return str(score)
    return score
