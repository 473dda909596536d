"""The fake server's Anthropic Messages route (POST /v1/messages): same limits, faults and stats.

The engine's Anthropic adapter is tested against this route, so it must answer, stream, refuse and
fail the way Anthropic's API does.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

import aiohttp
import pytest

from tests.support.fakeclient import (
    PAIRWISE_JUDGE,
    SINGLE_JUDGE,
    anthropic_events,
    chat,
    message,
    post,
    post_message,
)
from tests.support.fakeserver import FakeServer


@pytest.fixture
def server(fake: FakeServer) -> FakeServer:
    """The session's fake server, with default options and zeroed stats (see conftest)."""
    return fake


def test_messages_answer_is_a_message_with_one_text_block(server: FakeServer) -> None:
    body = post_message(server, message(max_tokens=5)).json()
    assert body["type"] == "message" and body["role"] == "assistant" and body["model"] == "m"
    assert body["content"] == [{"type": "text", "text": "This is a simulated answer"}]
    assert body["stop_reason"] == "max_tokens" and body["stop_sequence"] is None
    assert body["usage"] == {"input_tokens": math.ceil(30 / 4), "output_tokens": 5}
    assert post_message(server, message()).json()["stop_reason"] == "end_turn"


def test_messages_stream_sends_anthropics_events_in_order(server: FakeServer) -> None:
    plain = post_message(server, message())
    answer = post_message(server, message(stream=True))
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = anthropic_events(answer)
    names = [name for name, _ in events]
    head, tail = names[:3], names[-3:]
    assert head == ["message_start", "content_block_start", "ping"]
    assert set(names[3:-3]) == {"content_block_delta"} and len(names) > 7
    assert tail == ["content_block_stop", "message_delta", "message_stop"]
    assert all(name == data["type"] for name, data in events)
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == plain.json()["content"][0]["text"]
    assert events[0][1]["message"]["usage"]["input_tokens"] == plain.json()["usage"]["input_tokens"]
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["usage"] == {"output_tokens": len(text.split())}
    assert server.stats()["duplicates"] == 1  # streamed or not, the same request


def test_messages_judge_prompt_may_be_the_top_level_system(server: FakeServer) -> None:
    answer = post_message(server, message("The answer: Paris.", model="judge", system=SINGLE_JUDGE))
    assert re.search(r"Rating: \[\[\d+\]\]$", answer.json()["content"][0]["text"])
    blocks = [{"type": "text", "text": PAIRWISE_JUDGE}]
    pairwise = post_message(server, message("A vs B", model="judge", system=blocks))
    assert re.search(r"\[\[[ABC]\]\]$", pairwise.json()["content"][0]["text"])
    assert server.stats()["by_kind"] == {"generation": 0, "judge": 2}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"messages": [{"role": "system", "content": "x"}]}, "top-level `system`"),
        ({"max_tokens": None}, "max_tokens"),
        ({"temperature": 1.5}, "temperature"),
    ],
)
def test_messages_refuses_what_the_real_api_refuses(
    server: FakeServer, change: dict, complaint: str
) -> None:
    body = {k: v for k, v in {**message(), **change}.items() if v is not None}
    answer = post_message(server, body)
    assert answer.status == 400 and answer.json()["type"] == "error"
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert complaint in answer.json()["error"]["message"]


def test_messages_auth_key_must_come_as_x_api_key(server: FakeServer) -> None:
    server.configure(auth_key="sk-ant")
    refused = post_message(server, message())
    assert refused.status == 401
    assert refused.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Incorrect API key provided."},
    }
    assert post_message(server, message(), {"Authorization": "Bearer sk-ant"}).status == 401
    assert post_message(server, message(), {"x-api-key": "sk-ant"}).status == 200


def test_messages_429_says_when_each_bucket_resets(server: FakeServer) -> None:
    server.configure(tpm=600, rate_window=6.0)  # 60 tokens per window
    assert post_message(server, message("x" * 40, max_tokens=40)).status == 200
    before = datetime.now(timezone.utc)
    refused = post_message(server, message("x" * 40, max_tokens=40))
    assert refused.status == 429 and refused.json()["error"]["type"] == "rate_limit_error"
    headers = refused.headers
    assert 1 <= int(headers["retry-after"]) <= 6 and "retry-after-ms" not in headers

    def reset(bucket: str) -> float:
        value = headers[f"anthropic-ratelimit-{bucket}-reset"]
        assert value.endswith("Z")
        return (datetime.fromisoformat(value[:-1] + "+00:00") - before).total_seconds()

    assert 0 < reset("tokens") <= 6.1
    assert reset("input-tokens") == reset("output-tokens") == reset("tokens")
    assert reset("requests") < 1  # not the bucket that ran out
    assert server.stats()["rate_limited"] == 1


@pytest.mark.parametrize("route", ["openai", "anthropic"])
def test_fault_529_answers_overloaded_on_both_routes(server: FakeServer, route: str) -> None:
    server.configure(fault_529=1.0)
    answer = post(server, chat()) if route == "openai" else post_message(server, message())
    assert answer.status == 529 and "retry-after" not in answer.headers
    if route == "anthropic":
        assert answer.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert server.stats()["faults"]["529"] == 1


def test_messages_stream_faults_end_before_message_stop(server: FakeServer) -> None:
    server.configure(fault_truncate=1.0)
    with pytest.raises(aiohttp.ClientPayloadError):
        post_message(server, message(stream=True))
    server.configure(fault_truncate=0.0, fault_stream_error=1.0)
    events = anthropic_events(post_message(server, message(stream=True)))
    assert events[0][0] == "message_start" and "message_stop" not in [n for n, _ in events]
    assert events[-1] == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    assert post_message(server, message()).status == 529  # JSON answers overload the HTTP way
    faults = server.stats()["faults"]
    assert faults["truncate"] == 1 and faults["stream_error"] == 2


def test_messages_and_chat_completions_share_limits_and_stats(server: FakeServer) -> None:
    server.configure(rpm=120, rate_window=1.0)
    assert post(server, chat("one")).status == 200
    assert post_message(server, message("two")).status == 200
    assert post_message(server, message("three")).status == 429
    post_message(server, message(SINGLE_JUDGE, model="judge"))
    stats = server.stats()
    assert stats["by_model"] == {"m": 3, "judge": 1}
    assert stats["by_kind"] == {"generation": 3, "judge": 1}
    assert stats["status"] == {"200": 2, "429": 2} and stats["rate_limited"] == 2
