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

from engine.report.data import AnswerText, ReportData

__all__ = ["browser_payload", "browser_section", "embed_json"]


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


def browser_payload(data: ReportData, colors: dict[str, str]) -> dict[str, Any]:
    """Indexes instead of repeated names; each answer and judge reply appears exactly once.

    The rows the script (`REPORT_JS`) reads, keyed by question id:
    answers[q][model] = [turn 1 text, turn 2 text] or null;
    thinking[q][model] = [turn 1 thinking, turn 2 thinking] or null (only answers that thought);
    single[q] = [[judge, model, turn, score, parse_status, text, sample, thinking], ...];
    pair[q] = [[judge, model_1, model_2, turn, game, winner, parse_status, text, sample,
    thinking], ...].
    """
    model_index = {model: i for i, model in enumerate(data.models)}
    answers: dict[str, list[list[str | None] | None]] = {}
    thinking: dict[str, list[list[str | None] | None]] = {}
    for answer in data.answers:
        _put_turn(answers, model_index, answer, answer.text)
        if answer.thinking is not None:
            _put_turn(thinking, model_index, answer, answer.thinking)
    single: dict[str, list[list[Any]]] = {}
    pair: dict[str, list[list[Any]]] = {}
    for j_index, judge in enumerate(data.judges):
        for j in judge.judgments:
            key = str(j.question_id)
            if j.kind == "single":
                single.setdefault(key, []).append(
                    [j_index, model_index[j.model], j.turn, _score(j.score), j.parse_status,
                     j.text, j.sample, j.thinking]
                )  # fmt: skip
            else:
                pair.setdefault(key, []).append(
                    [j_index, model_index[j.model], model_index[j.opponent], j.turn, j.game,
                     j.winner, j.parse_status, j.text, j.sample, j.thinking]
                )  # fmt: skip
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
        "answers": answers,
        "thinking": thinking,
        "single": single,
        "pair": pair,
    }


def _put_turn(
    rows: dict[str, list[list[str | None] | None]],
    model_index: dict[str, int],
    answer: AnswerText,
    text: str,
) -> None:
    row = rows.setdefault(str(answer.question_id), [None] * len(model_index))
    turns = row[model_index[answer.model]] or []
    turns.extend([None] * (answer.turn - len(turns)))
    turns[answer.turn - 1] = text
    row[model_index[answer.model]] = turns


def _score(score: float | None) -> float | str | None:
    """JSON has no infinity (orjson would write null, read as "no rating"): say "inf"."""
    if score is not None and not math.isfinite(score):
        return str(score)
    return score
