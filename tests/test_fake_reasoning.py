"""The fake server behaves like reasoning models do: OpenAI's, open-weight thinking ones, Claude's.

Reasoning models will be judges and models under test, so the engine must be tested against what
their APIs do: OpenAI's refuse `max_tokens` and non-default sampling and bill hidden reasoning
tokens; vLLM/SGLang/llama.cpp show a checkpoint's thinking in a field or between `<think>` tags;
Claude's extended thinking answers with a signed thinking block first. A judge's thoughts toy with
a verdict it does not give, so a parser that reads them is caught.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.support.fakeclient import (
    PAIRWISE_JUDGE,
    SINGLE_JUDGE,
    Answer,
    anthropic_events,
    chat,
    message,
    post,
    post_message,
)
from tests.support.fakeserver import REPOSITORY, FakeServer

OPENING = "Let me think step by step about"
EFFORTS = ["minimal", "low", "medium", "high"]
CLAUDE_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
CONSIDERATIONS = f"{CLAUDE_DOCS}#important-considerations-when-using-extended-thinking"
THINKING = {"type": "enabled", "budget_tokens": 1024}
FASTCHAT_RATING = r"\[\[(\d+\.?\d*)\]\]"  # FastChat's single-answer pattern: the first match wins
ANSWER = r"This is a simulated answer from {}\. .* \(answer id [0-9a-f]{{8}}\)"


@pytest.fixture
def server(fake: FakeServer) -> FakeServer:
    """The session's fake server, with default options and zeroed stats (see conftest)."""
    return fake


def openai_error(message: str, param: str, code: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


def anthropic_error(message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


def thinking_message(content: str = "What is the capital of France?", **extra: Any) -> dict:
    return message(content, **{"max_tokens": 2048, "thinking": THINKING, **extra})


def reasoning_tokens(usage: dict[str, Any]) -> int:
    return int(usage["completion_tokens_details"]["reasoning_tokens"])


def deltas(answer: Answer) -> list[tuple[str, str]]:
    """(field, text) of every text-carrying delta of an OpenAI stream, in order."""
    return [
        (field, text)
        for event in answer.events()
        if isinstance(event, dict) and event["choices"]
        for field, text in event["choices"][0]["delta"].items()
        if field != "role"
    ]


def streamed_usage(server: FakeServer, body: dict) -> tuple[list[tuple[str, str]], dict, str]:
    """A stream's deltas, its usage chunk's usage and its finish reason."""
    answer = post(server, {**body, "stream": True, "stream_options": {"include_usage": True}})
    *_, final, usage, done = answer.events()
    assert done == "[DONE]" and usage["choices"] == []
    return deltas(answer), usage["usage"], final["choices"][0]["finish_reason"]


# --- OpenAI reasoning models -------------------------------------------------------------------


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5.1-codex"])
def test_reasoning_models_refuse_max_tokens_as_openai_does(server: FakeServer, model: str) -> None:
    expected = openai_error(
        "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
        "max_tokens",
        "unsupported_parameter",
    )
    for stream in (False, True):
        answer = post(server, chat(model=model, max_tokens=100, stream=stream))
        assert answer.status == 400 and answer.json() == expected
    stats = server.stats()
    assert stats["by_model"] == {model: 2} and stats["status"] == {"400": 2}


@pytest.mark.parametrize(
    ("field", "value", "printed"),
    [("temperature", 0, "0"), ("temperature", 0.0, "0.0"), ("temperature", 0.7, "0.7"),
     ("top_p", 0.5, "0.5")],
)  # fmt: skip
def test_reasoning_models_refuse_sampling_other_than_one(
    server: FakeServer, field: str, value: float, printed: str
) -> None:
    answer = post(server, chat(model="o3", max_completion_tokens=5000, **{field: value}))
    assert answer.status == 400
    assert answer.json() == openai_error(
        f"Unsupported value: '{field}' does not support {printed} with this model. "
        "Only the default (1) value is supported.",
        field,
        "unsupported_value",
    )


def test_reasoning_models_take_default_sampling_and_max_completion_tokens(
    server: FakeServer,
) -> None:
    for extra in ({}, {"temperature": 1, "top_p": 1}, {"temperature": 1.0, "max_tokens": None}):
        assert post(server, chat(model="o3", max_completion_tokens=5000, **extra)).status == 200
    assert server.stats()["status"] == {"200": 3}


def test_reasoning_tokens_are_billed_in_completion_tokens_json_and_sse(server: FakeServer) -> None:
    request = chat(model="o4-mini", max_completion_tokens=5000)
    body = post(server, request).json()
    choice, usage = body["choices"][0], body["usage"]
    text = choice["message"]["content"]
    assert choice["message"] == {"role": "assistant", "content": text}  # the thinking is hidden
    assert re.fullmatch(ANSWER.format("o4-mini"), text) and choice["finish_reason"] == "stop"
    assert reasoning_tokens(usage) > 0
    assert usage["completion_tokens"] == reasoning_tokens(usage) + len(text.split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    pieces, streamed, finish = streamed_usage(server, request)
    assert {field for field, _ in pieces} == {"content"} and len(pieces) > 1
    assert "".join(piece for _, piece in pieces) == text
    assert streamed == usage and finish == "stop"


def test_reasoning_effort_sets_the_reasoning_tokens(server: FakeServer) -> None:
    counts, texts = {}, set()
    for effort in EFFORTS:
        body = post(server, chat(model="gpt-5", reasoning_effort=effort)).json()
        counts[effort] = reasoning_tokens(body["usage"])
        texts.add(body["choices"][0]["message"]["content"])
    assert counts["minimal"] < counts["low"] < counts["medium"] < counts["high"]
    assert len(texts) == 1  # effort changes the thinking, not the answer
    assert reasoning_tokens(post(server, chat(model="gpt-5")).json()["usage"]) == counts["medium"]
    again = post(server, chat(model="gpt-5", reasoning_effort="high")).json()
    assert reasoning_tokens(again["usage"]) == counts["high"]
    refused = post(server, chat(model="gpt-5", reasoning_effort="maximal"))
    assert refused.status == 400
    assert refused.json() == openai_error(
        "Invalid value: 'maximal'. Supported values are: 'minimal', 'low', 'medium', and 'high'.",
        "reasoning_effort",
        "invalid_value",
    )


def test_max_completion_tokens_caps_reasoning_and_answer_together(server: FakeServer) -> None:
    # Minimal effort reasons for 8 to 15 tokens: 20 leave a few for the answer, 5 leave none.
    short = post(server, chat(model="o3", reasoning_effort="minimal", max_completion_tokens=20))
    choice, usage = short.json()["choices"][0], short.json()["usage"]
    spent = reasoning_tokens(usage)
    assert 8 <= spent <= 15 and choice["finish_reason"] == "length"
    assert choice["message"]["content"].startswith("This is a simulated answer")
    assert len(choice["message"]["content"].split()) == 20 - spent
    assert usage["completion_tokens"] == 20
    starved = post(server, chat(model="o3", reasoning_effort="minimal", max_completion_tokens=5))
    choice, usage = starved.json()["choices"][0], starved.json()["usage"]
    assert choice["message"]["content"] == "" and choice["finish_reason"] == "length"
    assert reasoning_tokens(usage) == usage["completion_tokens"] == 5
    pieces, streamed, finish = streamed_usage(
        server, chat(model="o3", reasoning_effort="minimal", max_completion_tokens=5)
    )
    assert "".join(piece for _, piece in pieces) == "" and streamed == usage and finish == "length"


def test_reasoning_model_judges_still_give_verdicts(server: FakeServer) -> None:
    single = post(server, chat(f"{SINGLE_JUDGE} answer", model="o3")).json()
    assert re.search(r"Rating: \[\[\d+\]\]$", single["choices"][0]["message"]["content"])
    assert reasoning_tokens(single["usage"]) > 0
    pairwise = post(server, chat(f"{PAIRWISE_JUDGE} answers", model="gpt-5")).json()
    assert re.search(r"\[\[[ABC]\]\]$", pairwise["choices"][0]["message"]["content"])
    assert server.stats()["by_kind"] == {"generation": 0, "judge": 2}


def test_non_reasoning_models_are_unchanged(server: FakeServer) -> None:
    capped = post(server, chat(model="gpt-4o", max_tokens=5, temperature=0, top_p=0.5)).json()
    assert capped["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "This is a simulated answer"},
        "finish_reason": "length",
    }
    assert capped["usage"] == {"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13}
    newer = post(server, chat(model="gpt-4o", max_completion_tokens=5)).json()
    assert newer["choices"][0] == capped["choices"][0] and newer["usage"] == capped["usage"]
    plain = post(server, chat(model="gpt-4o")).json()
    effort = post(server, chat(model="gpt-4o", reasoning_effort="high")).json()
    assert effort["choices"] == plain["choices"] and effort["usage"] == plain["usage"]
    assert "completion_tokens_details" not in plain["usage"]
    _, streamed, _ = streamed_usage(server, chat(model="gpt-4o"))
    assert streamed == plain["usage"]


def test_reasoning_models_option_names_the_reasoning_models(server: FakeServer) -> None:
    server.configure(reasoning_models=["corp-r*"])
    assert post(server, chat(model="o3", max_tokens=5)).status == 200
    assert post(server, chat(model="corp-r1", max_tokens=5)).status == 400
    server.configure(reasoning_models=[])
    plain = post(server, chat(model="gpt-5", max_tokens=5, temperature=0)).json()
    assert "completion_tokens_details" not in plain["usage"]


# --- open-weight thinking models (vLLM, SGLang, llama.cpp) -------------------------------------


@pytest.mark.parametrize("style", ["reasoning_content", "reasoning"])
def test_thinking_models_show_thoughts_in_a_separate_field(server: FakeServer, style: str) -> None:
    server.configure(thinking_models=["qwen3-*", "*-r1"], thinking_style=style)
    request = chat(model="deepseek-r1", max_tokens=1000)
    body = post(server, request).json()
    said, usage = body["choices"][0]["message"], body["usage"]
    assert said.keys() == {"role", "content", style}
    thinking, text = said[style], said["content"]
    assert thinking.startswith(OPENING) and thinking.count(". ") >= 3
    assert re.fullmatch(ANSWER.format("deepseek-r1"), text)
    assert reasoning_tokens(usage) == len(thinking.split())
    assert usage["completion_tokens"] == len(thinking.split()) + len(text.split())
    pieces, streamed, finish = streamed_usage(server, request)
    fields = [field for field, _ in pieces]
    thoughts = fields.count(style)
    assert fields == [style] * thoughts + ["content"] * (len(fields) - thoughts)
    assert thoughts > 1 and len(fields) - thoughts > 1
    assert "".join(piece for field, piece in pieces if field == style) == thinking
    assert "".join(piece for field, piece in pieces if field == "content") == text
    assert streamed == usage and finish == "stop"


def test_inline_thinking_opens_the_content_with_a_think_block(server: FakeServer) -> None:
    server.configure(thinking_models=["qwen3-*"], thinking_style="inline")
    request = chat(model="qwen3-8b", max_tokens=1000)
    body = post(server, request).json()
    said, usage = body["choices"][0]["message"], body["usage"]
    assert said.keys() == {"role", "content"}
    parts = re.fullmatch(r"<think>\n(.*)\n</think>\n\n(.*)", said["content"], re.DOTALL)
    assert parts is not None
    thinking, text = parts.groups()
    assert thinking.startswith(OPENING) and re.fullmatch(ANSWER.format("qwen3-8b"), text)
    assert reasoning_tokens(usage) == len(thinking.split())
    assert usage["completion_tokens"] == len(thinking.split()) + len(text.split())
    pieces, streamed, _ = streamed_usage(server, request)
    texts = [piece for _, piece in pieces]
    assert {field for field, _ in pieces} == {"content"} and "".join(texts) == said["content"]
    assert not any("<think>" in piece or "</think>" in piece for piece in texts)  # tags cut
    assert len(texts) > 6 and streamed == usage


@pytest.mark.parametrize("style", ["reasoning_content", "inline"])
def test_thinking_counts_against_max_tokens_before_the_answer(
    server: FakeServer, style: str
) -> None:
    server.configure(thinking_models=["qwen3-*"], thinking_style=style)
    request = chat(model="qwen3-8b", max_tokens=10)
    body = post(server, request).json()
    choice, usage = body["choices"][0], body["usage"]
    assert choice["finish_reason"] == "length"
    assert reasoning_tokens(usage) == usage["completion_tokens"] == 10
    thoughts = " ".join([*OPENING.split(), "what", "the", "question"])
    if style == "inline":  # the think block never closes
        assert choice["message"]["content"] == f"<think>\n{thoughts}"
    else:  # a reasoning parser that never saw the end of the thinking leaves no content
        assert choice["message"] == {"role": "assistant", style: thoughts, "content": None}
    pieces, streamed, finish = streamed_usage(server, request)
    assert streamed == usage and finish == "length"
    if style != "inline":
        assert {field for field, _ in pieces} == {style}


@pytest.mark.parametrize("style", ["reasoning_content", "inline"])
def test_thinking_judges_give_their_verdict_after_thoughts_that_toy_with_another(
    server: FakeServer, style: str
) -> None:
    server.configure(thinking_models=["judge-*"], thinking_style=style)
    for i in range(8):
        said = post(server, chat(f"{SINGLE_JUDGE} answer {i}", model="judge-r1")).json()
        said = said["choices"][0]["message"]
        if style == "inline":
            thinking, text = said["content"].removeprefix("<think>\n").split("\n</think>\n\n")
            # FastChat's parser, fed the raw content, would take the decoy: the trap works.
            assert re.search(FASTCHAT_RATING, said["content"])[1] == decoy_rating(thinking)
        else:
            thinking, text = said[style], said["content"]
        rating = re.search(r"Rating: \[\[(\d+)\]\]$", text)
        assert rating and rating[1] != decoy_rating(thinking)
    pairwise = post(server, chat(f"{PAIRWISE_JUDGE} answers", model="judge-r1")).json()
    content = pairwise["choices"][0]["message"]["content"]
    thinking = pairwise["choices"][0]["message"].get(style) or content.split("</think>")[0]
    decoy = re.search(r"maybe \[\[([ABC])\]\]", thinking)
    verdict = re.search(r"verdict: \[\[([ABC])\]\]$", content)
    assert decoy and verdict and decoy[1] != verdict[1]


def decoy_rating(thinking: str) -> str:
    """The rating a judge's thoughts toy with (and its answer does not give)."""
    assert thinking.startswith(OPENING) and "Rating" not in thinking
    decoy = re.search(r"maybe \[\[(\d+)\]\] fits", thinking)
    assert decoy, thinking
    return decoy[1]


# --- Anthropic extended thinking ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (
            {"thinking": {"type": "enabled", "budget_tokens": 1023}},
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            {"max_tokens": 1024},
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
            f"documentation at {CLAUDE_DOCS}#max-tokens-and-context-window-size",
        ),
        (
            {"temperature": 0},
            "`temperature` may only be set to 1 when thinking is enabled. "
            f"Please consult our documentation at {CONSIDERATIONS}",
        ),
        (
            {"temperature": 0.7},
            "`temperature` may only be set to 1 when thinking is enabled. "
            f"Please consult our documentation at {CONSIDERATIONS}",
        ),
        (
            {"top_k": 40},
            "`top_k` must be unset when thinking is enabled. "
            f"Please consult our documentation at {CONSIDERATIONS}",
        ),
        (
            {"top_p": 0.9},
            "`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. "
            f"Please consult our documentation at {CONSIDERATIONS}",
        ),
    ],
)
def test_extended_thinking_refuses_what_the_messages_api_refuses(
    server: FakeServer, change: dict, complaint: str
) -> None:
    for stream in (False, True):
        answer = post_message(server, {**thinking_message(stream=stream), **change})
        assert answer.status == 400 and answer.json() == anthropic_error(complaint)
    stats = server.stats()
    assert stats["by_model"] == {"m": 2} and stats["status"] == {"400": 2}


def test_extended_thinking_takes_what_the_messages_api_takes(server: FakeServer) -> None:
    for change in (
        {"temperature": 1},
        {"top_p": 0.95},
        {"top_p": 1},
        {"thinking": {"type": "enabled", "budget_tokens": 2047}},
        {"thinking": {"type": "disabled"}, "temperature": 0, "top_k": 5},
    ):
        assert post_message(server, {**thinking_message(), **change}).status == 200


def test_extended_thinking_answers_with_a_thinking_block_then_the_text(server: FakeServer) -> None:
    plain = post_message(server, message(max_tokens=2048)).json()
    body = post_message(server, thinking_message()).json()
    thinking, text = body["content"]
    assert thinking.keys() == {"type", "thinking", "signature"} and thinking["type"] == "thinking"
    assert thinking["thinking"].startswith(OPENING) and thinking["thinking"].count(". ") >= 3
    assert len(base64.b64decode(thinking["signature"], validate=True)) >= 64
    assert text == plain["content"][0] and body["stop_reason"] == "end_turn"
    words = len(thinking["thinking"].split()) + len(text["text"].split())
    assert body["usage"]["output_tokens"] == words
    disabled = post_message(server, thinking_message(thinking={"type": "disabled"})).json()
    assert disabled["content"] == plain["content"] and disabled["usage"] == plain["usage"]


def test_extended_thinking_streams_thoughts_and_signature_before_the_text(
    server: FakeServer,
) -> None:
    body = post_message(server, thinking_message()).json()
    thinking, text = body["content"]
    events = anthropic_events(post_message(server, thinking_message(stream=True)))
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert events[1][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    deltas = [data for name, data in events if name == "content_block_delta"]
    kinds = [(data["index"], data["delta"]["type"]) for data in deltas]
    thoughts = kinds.count((0, "thinking_delta"))
    texts = kinds.count((1, "text_delta"))
    assert thoughts > 1 and texts > 1
    assert (
        kinds
        == [(0, "thinking_delta")] * thoughts
        + [(0, "signature_delta")]
        + [(1, "text_delta")] * texts
    )
    middle = names[3 + thoughts + 1 : 3 + thoughts + 3]
    assert middle == ["content_block_stop", "content_block_start"]
    assert events[3 + thoughts + 1][1]["index"] == 0
    assert events[3 + thoughts + 2][1] == {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "text", "text": ""},
    }
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events[-3][1]["index"] == 1
    assert "".join(d["delta"]["thinking"] for d in deltas[:thoughts]) == thinking["thinking"]
    assert deltas[thoughts]["delta"]["signature"] == thinking["signature"]
    assert "".join(d["delta"]["text"] for d in deltas[thoughts + 1 :]) == text["text"]
    assert events[-2][1]["usage"] == {"output_tokens": body["usage"]["output_tokens"]}


def test_thinking_claude_judges_rate_only_in_the_text_block(server: FakeServer) -> None:
    for i in range(8):
        request = thinking_message(f"The answer {i}", model="judge", system=SINGLE_JUDGE)
        thinking, text = post_message(server, request).json()["content"]
        rating = re.search(r"Rating: \[\[(\d+)\]\]$", text["text"])
        assert rating and rating[1] != decoy_rating(thinking["thinking"])
        # a parser reading every block in order would take the decoy: the trap works
        every_block = thinking["thinking"] + text["text"]
        assert re.search(FASTCHAT_RATING, every_block)[1] == decoy_rating(thinking["thinking"])
    request = thinking_message("A vs B", model="judge", system=PAIRWISE_JUDGE, stream=True)
    deltas = [
        d["delta"]
        for n, d in anthropic_events(post_message(server, request))
        if n == "content_block_delta"
    ]
    thoughts = "".join(delta.get("thinking", "") for delta in deltas)
    verdict = "".join(delta.get("text", "") for delta in deltas)
    decoy = re.search(r"maybe \[\[([ABC])\]\]", thoughts)
    winner = re.search(r"verdict: \[\[([ABC])\]\]$", verdict)
    assert decoy and winner and decoy[1] != winner[1] and "[[" not in verdict[: winner.start()]


# --- options -----------------------------------------------------------------------------------


def test_reasoning_options_come_from_cli_flags_and_admin_config() -> None:
    flags = {
        "reasoning_models": ["corp-o*"],
        "thinking_models": ["qwen3-*", "*-r1"],
        "thinking_style": "inline",
    }
    with FakeServer(**flags) as server:
        options = server.current_options()
        assert {name: options[name] for name in flags} == flags
        assert post(server, chat(model="corp-o9", max_tokens=5)).status == 400
        assert post(server, chat(model="o3", max_tokens=5)).status == 200
        assert post(server, chat(model="qwen3-8b")).text().startswith(f"<think>\n{OPENING}")
        server.configure(thinking_style="reasoning")
        said = post(server, chat(model="deepseek-r1")).json()["choices"][0]["message"]
        assert said["reasoning"].startswith(OPENING)
        for bad in ({"thinking_style": "hidden"}, {"thinking_models": 5}):
            with pytest.raises(RuntimeError, match="400"):
                server.configure(**bad)
        assert server.current_options()["thinking_style"] == "reasoning"
    refused = subprocess.run(
        [sys.executable, "-m", "benchmarks.fake", "--thinking-style=hidden"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2 and "--thinking-style" in refused.stderr
