"""A real llama.cpp server separates a thinking model's reasoning, and the engine keeps it apart.

SmolLM2-135M is no thinking model, and its own chat template knows nothing of reasoning: served as
it is, llama.cpp leaves `<think>` blocks in the content. llama.cpp learns a model's thinking tags
from its chat template, so the bundled model is served with a ChatML template that renders
`reasoning_content` between `<think>` tags, with `--reasoning-format deepseek`; a GBNF grammar
then makes it think before it answers. The server sends the thoughts in `reasoning_content` (JSON
and SSE), and a request asking `reasoning_format: none` gets them inline: both paths, one real
server. A recording proxy in front of it shows what the model and the judge were sent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.bench.judge import parse_rating
from engine.bench.thinking import answer_text
from engine.serving.serve import ManagedServer
from tests.support.llamacpp import JUDGE_MAX_TOKENS, ServerThread, smollm2_spec
from tests.support.recording_proxy import RecordingProxy
from tests.support.runconfig import model, mtbench, write_config

ALIAS = "smollm2"
THOUGHT = "I should answer briefly."
DECOY = "Maybe [[11]] fits."  # a judge's musing: a rating FastChat's parser would take first
REASONING_TEMPLATE = (
    "{%- for message in messages %}{%- if message.role == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{%- if message.reasoning_content %}"
    "{{- '<think>\\n' + message.reasoning_content + '\\n</think>\\n\\n' }}{%- endif %}"
    "{{- message.content + '<|im_end|>\\n' }}{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
ANSWER_GRAMMAR = rf'root ::= "<think>\n{THOUGHT}\n</think>\n\n" [A-Za-z ,.]{{5,80}}'
JUDGE_GRAMMAR = (
    rf'root ::= "<think>\n{DECOY}\n</think>\n\n" [^\n\[\]]{{1,60}} '
    r'"\nRating: [[" ([1-9] | "10") "]]"'
)


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedServer]:
    directory = tmp_path_factory.mktemp("llamacpp-reasoning")
    template = directory / "reasoning.jinja"
    template.write_text(REASONING_TEMPLATE)
    extra = ("--chat-template-file", str(template), "--reasoning-format", "deepseek")
    spec = smollm2_spec(
        alias=ALIAS, n_parallel=2, log_file=directory / "server.log", extra_args=extra
    )
    with ServerThread(spec) as server:
        yield server


@pytest.fixture
def proxy(llama: ManagedServer) -> Iterator[RecordingProxy]:
    with RecordingProxy(llama.base_url.removesuffix("/v1")) as recording:
        yield recording


def run(
    tmp_path: Path,
    proxy: RecordingProxy,
    capsys: pytest.CaptureFixture[str],
    *,
    stream: bool = False,
    **extra: Any,
) -> None:
    """Question 81 (two turns) answered and judged by SmolLM2, thinking as the grammars say;
    `extra` goes into both request bodies."""
    smol = model(
        "smol",
        proxy.base_url,
        model=ALIAS,
        max_tokens=48,
        stream=stream,
        extra_body={"grammar": ANSWER_GRAMMAR, **extra},
    )
    judge = {
        "name": "smol-judge",
        "model": ALIAS,
        "base_url": proxy.base_url,
        "max_tokens": JUDGE_MAX_TOKENS,
        "stream": stream,
        "extra_body": {"grammar": JUDGE_GRAMMAR, **extra},
    }
    config = write_config(tmp_path, models=[smol], judge=judge, questions=[81])
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out


def stored(store: Path, table: str) -> list[tuple[Any, ...]]:
    """(turn, text, reasoning, score, parse status) of the answers or the judgments."""
    score = "j.score, j.parse_status" if table == "judgments" else "NULL, NULL"
    with sqlite3.connect(store) as db:
        return db.execute(
            f"SELECT j.turn, r.text, r.reasoning, {score} FROM {table} j "
            "JOIN responses r ON r.key = j.response_key ORDER BY j.turn"
        ).fetchall()


def check_what_was_sent(proxy: RecordingProxy, answers: list[tuple[Any, ...]]) -> None:
    """Turn 2 carried turn 1's answer without its thoughts; no prompt held any thinking."""
    # a retried request (a real server on a busy machine may drop one) is sent again as it was
    distinct = {json.dumps(b, sort_keys=True): b for b in proxy.bodies("/v1/chat/completions")}
    bodies = list(distinct.values())
    turn_2 = [b for b in bodies if len(b["messages"]) == 3]
    assert len(turn_2) == 1 and len(bodies) == 4  # two answers, two judgments
    assert turn_2[0]["messages"][1]["content"] == answer_text(answers[0][1], keep_thinking=False)
    for body in bodies:
        sent = "\n".join(message["content"] for message in body["messages"])
        assert "<think>" not in sent and THOUGHT not in sent and DECOY not in sent


def check_verdicts(judgments: list[tuple[Any, ...]]) -> None:
    for _, text, _, score, status in judgments:
        assert status == "ok" and 1 <= score <= 10, text  # never the decoy's 11
        assert score == parse_rating(answer_text(text, keep_thinking=False)).score


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_reasoning_content_from_llamacpp_is_stored_apart_and_never_judged(
    tmp_path: Path, proxy: RecordingProxy, capsys: pytest.CaptureFixture[str], stream: bool
) -> None:
    run(tmp_path, proxy, capsys, stream=stream)
    store = tmp_path / "store.sqlite"
    answers = stored(store, "answers")
    assert [turn for turn, *_ in answers] == [1, 2]
    for _, text, reasoning, *_ in answers:
        assert reasoning.strip() == THOUGHT  # the real server's reasoning_content
        assert text.strip() and "<think>" not in text and THOUGHT not in text
    judgments = stored(store, "judgments")
    assert len(judgments) == 2
    assert all(reasoning.strip() == DECOY for _, _, reasoning, *_ in judgments)
    check_verdicts(judgments)
    check_what_was_sent(proxy, answers)


def test_inline_thinking_from_llamacpp_is_kept_raw_but_cut_for_the_judge_and_turn_2(
    tmp_path: Path, proxy: RecordingProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    run(tmp_path, proxy, capsys, reasoning_format="none")  # llama.cpp leaves the tags inline
    store = tmp_path / "store.sqlite"
    answers = stored(store, "answers")
    for _, text, reasoning, *_ in answers:
        assert text.startswith(f"<think>\n{THOUGHT}\n</think>\n\n") and reasoning is None
    judgments = stored(store, "judgments")
    assert all(text.startswith(f"<think>\n{DECOY}") for _, text, *_ in judgments)
    check_verdicts(judgments)  # FastChat's parser, reading the raw text, would have taken 11
    check_what_was_sent(proxy, answers)
