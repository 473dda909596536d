"""The fake server behaves like a real provider: answers, judges, limits, faults, stats.

These use the OpenAI route; `test_fake_anthropic.py` checks the Anthropic one.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from typing import Any

import aiohttp
import pytest

from tests.support.fakeclient import (
    MODEL_FIELDS,
    PAIRWISE_JUDGE,
    SINGLE_JUDGE,
    chat,
    post,
    post_many,
    wait_for,
)
from tests.support.fakeserver import FakeServer


@pytest.fixture
def server(fake: FakeServer) -> FakeServer:
    """The session's fake server, with default options and zeroed stats (see conftest)."""
    return fake


def test_identical_requests_get_identical_answers(server: FakeServer) -> None:
    first, second = post(server, chat(seed=1)), post(server, chat(seed=1))
    assert first.status == second.status == 200
    assert first.text() == second.text()
    assert post(server, chat(seed=2)).text() != first.text()
    assert post(server, chat(temperature=0.0)).text() != post(server, chat(temperature=0.7)).text()


def test_answer_follows_openai_schema_and_counts_tokens(server: FakeServer) -> None:
    content = "x" * 101
    answer = post(server, chat(content, model="gpt-fake"))
    body = answer.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-fake"
    assert body["id"] and isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] == "stop"
    text = choice["message"]["content"]
    assert re.fullmatch(
        r"This is a simulated answer from gpt-fake\. .* \(answer id [0-9a-f]{8}\)", text
    )
    words = len(text.split())
    assert 20 <= words <= 120
    assert body["usage"] == {
        "prompt_tokens": math.ceil(101 / 4),
        "completion_tokens": words,
        "total_tokens": math.ceil(101 / 4) + words,
    }


def test_max_tokens_cuts_the_answer_and_reports_length(server: FakeServer) -> None:
    answer = post(server, chat(max_tokens=5)).json()
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["choices"][0]["message"]["content"] == "This is a simulated answer"
    assert answer["usage"]["completion_tokens"] == 5
    server.configure(answer_min_words=30, answer_max_words=30)
    assert post(server, chat(max_tokens=30)).json()["choices"][0]["finish_reason"] == "stop"


def test_stream_sends_word_chunks_then_finish_reason_usage_and_done(server: FakeServer) -> None:
    plain = post(server, chat(max_tokens=500)).text()
    options = {"include_usage": True}
    answer = post(server, chat(max_tokens=500, stream=True, stream_options=options))
    assert answer.headers["content-type"].startswith("text/event-stream")
    *chunks, final, usage, done = answer.events()
    assert done == "[DONE]"
    assert all(c["object"] == "chat.completion.chunk" for c in [*chunks, final, usage])
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks]
    assert "".join(pieces) == plain
    assert len(pieces) > 1 and all(len(p.split()) > 1 for p in pieces)
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert final["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == len(plain.split())


def test_stream_without_include_usage_has_no_usage_chunk(server: FakeServer) -> None:
    events = post(server, chat(max_tokens=3, stream=True)).events()
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in e for e in events[:-1])


def test_single_judge_rates_in_double_brackets(server: FakeServer) -> None:
    ratings = set()
    for i in range(20):
        answer = post(server, chat(f"{SINGLE_JUDGE} answer {i}", model="judge"))
        match = re.search(r"Rating: \[\[(\d+)\]\]$", answer.text())
        assert match, answer.text()
        ratings.add(int(match[1]))
    assert ratings <= set(range(1, 11)) and len(ratings) > 3
    assert server.stats()["by_kind"] == {"generation": 0, "judge": 20}


@pytest.mark.parametrize(
    ("option", "pattern"),
    [
        ("judge_one_bracket", r"Rating: \[\d+\]$"),
        ("judge_decimal", r"Rating: \[\[\d\.5\]\]$"),
        ("judge_no_verdict", r"^[^\[\]]*$"),
    ],
)
def test_judge_verdict_variants_follow_their_share(
    server: FakeServer, option: str, pattern: str
) -> None:
    server.configure(**{option: 1.0})
    assert re.search(pattern, post(server, chat(SINGLE_JUDGE, model="judge")).text())
    server.configure(**{option: 0.0})
    assert re.search(r"Rating: \[\[\d+\]\]$", post(server, chat(SINGLE_JUDGE)).text())


def test_pairwise_judge_picks_a_b_or_tie(server: FakeServer) -> None:
    verdicts = {
        re.findall(r"\[\[([ABC])\]\]$", post(server, chat(f"{PAIRWISE_JUDGE} {i}")).text())[0]
        for i in range(20)
    }
    assert verdicts == {"A", "B", "C"}


def test_sample_noise_varies_answers_only_above_temperature_zero(server: FakeServer) -> None:
    server.configure(sample_noise=True)
    assert post(server, chat(temperature=0.7)).text() != post(server, chat(temperature=0.7)).text()
    assert post(server, chat(temperature=0)).text() == post(server, chat(temperature=0)).text()


def test_rpm_limit_answers_429_with_retry_after(server: FakeServer) -> None:
    server.configure(rpm=120, rate_window=1.0)
    statuses = [post(server, chat(str(i))).status for i in range(2)]
    limited = post(server, chat("third"))
    assert statuses == [200, 200]
    assert limited.status == 429
    assert limited.headers["retry-after"] == "1"
    assert 0 < int(limited.headers["retry-after-ms"]) <= 1000
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    stats = server.stats()
    assert stats["rate_limited"] == 1 and stats["status"] == {"200": 2, "429": 1}
    assert stats["faults"]["429"] == 0


def test_tpm_limit_counts_prompt_and_max_tokens(server: FakeServer) -> None:
    server.configure(tpm=600, rate_window=6.0)  # 60 tokens per window
    assert post(server, chat("x" * 40, max_tokens=40)).status == 200  # 10 + 40 tokens
    refused = post(server, chat("x" * 40, max_tokens=40))
    assert refused.status == 429 and refused.json()["error"]["type"] == "tokens"
    assert post(server, chat("x" * 4, max_tokens=9)).status == 200  # 1 + 9 tokens still fit


def test_limits_per_model_keep_one_window_per_model(server: FakeServer) -> None:
    server.configure(rpm=60, rate_window=1.0, limits_per_model=True)
    assert [post(server, chat(model=m)).status for m in ("a", "b", "a")] == [200, 200, 429]


def test_auth_key_must_come_as_bearer_token(server: FakeServer) -> None:
    server.configure(auth_key="sk-test")
    refused = post(server, chat())
    assert refused.status == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert post(server, chat(), {"Authorization": "Bearer wrong"}).status == 401
    assert post(server, chat(), {"Authorization": "Bearer sk-test"}).status == 200


def test_reject_and_auth_fail_models(server: FakeServer) -> None:
    server.configure(reject_models=["gone"], auth_fail_models=["locked"])
    missing = post(server, chat(model="gone"))
    assert missing.status == 404 and missing.json()["error"]["code"] == "model_not_found"
    assert post(server, chat(model="locked")).status == 401
    assert post(server, chat(model="fine")).status == 200


@pytest.mark.parametrize("status", [500, 503, 429])
def test_fault_statuses_are_injected(server: FakeServer, status: int) -> None:
    server.configure(**{f"fault_{status}": 1.0})
    answer = post(server, chat())
    assert answer.status == status and "error" in answer.json()
    if status == 429:
        assert answer.headers["retry-after"] == "1"
    stats = server.stats()
    assert stats["faults"][str(status)] == 1 and stats["rate_limited"] == 0


def test_fault_reset_drops_the_connection(server: FakeServer) -> None:
    server.configure(fault_reset=1.0)
    with pytest.raises(aiohttp.ClientConnectionError):
        post(server, chat())
    assert server.stats()["arrivals"][0][3] is None


def test_fault_hang_outlasts_the_client_timeout(server: FakeServer) -> None:
    server.configure(fault_hang=1.0)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        post(server, chat(), timeout=0.3)
    assert time.monotonic() - started < 2
    wait_for(lambda: server.stats()["in_flight"] == 0)
    stats = server.stats()
    assert stats["faults"]["hang"] == 1 and stats["arrivals"][0][3] is None


@pytest.mark.parametrize("stream", [False, True])
def test_fault_malformed_sends_a_200_that_is_not_json(server: FakeServer, stream: bool) -> None:
    server.configure(fault_malformed=1.0)
    answer = post(server, chat(stream=stream))
    assert answer.status == 200
    with pytest.raises(ValueError):
        answer.events() if stream else answer.json()
    assert server.stats()["ok"] == 0


def test_fault_truncate_cuts_the_stream_before_the_end(server: FakeServer) -> None:
    server.configure(fault_truncate=1.0)
    with pytest.raises(aiohttp.ClientPayloadError):
        post(server, chat(stream=True))
    with pytest.raises(ValueError):
        post(server, chat()).json()
    assert server.stats()["faults"]["truncate"] == 2


def test_faults_only_for_spares_other_models(server: FakeServer) -> None:
    server.configure(fault_500=1.0, faults_only_for=["flaky"])
    assert post(server, chat(model="flaky")).status == 500
    assert post(server, chat(model="steady")).status == 200


def test_stats_count_requests_kinds_statuses_and_duplicates(server: FakeServer) -> None:
    before = time.time()
    post(server, chat("same"))
    post(server, chat("same", stream=True))  # a stream of the same request is a duplicate
    post(server, chat("other", model="n"))
    post(server, chat(SINGLE_JUDGE, model="judge"))
    server.configure(reject_models=["n"])
    post(server, chat("other", model="n"))  # answered 404: not a duplicate of anything new
    stats = server.stats()
    assert stats["requests"] == 5
    assert stats["by_model"] == {"m": 2, "n": 2, "judge": 1}
    assert stats["by_kind"] == {"generation": 4, "judge": 1}
    assert stats["status"] == {"200": 4, "404": 1}
    assert stats["ok"] == 4
    assert stats["duplicates"] == 2
    assert [row[1:] for row in stats["arrivals"]] == [
        ["m", "generation", 200],
        ["m", "generation", 200],
        ["n", "generation", 200],
        ["judge", "judge", 200],
        ["n", "generation", 404],
    ]
    assert before <= stats["arrivals"][0][0] <= stats["arrivals"][-1][0] <= time.time()


def test_max_in_flight_counts_concurrent_requests(server: FakeServer) -> None:
    server.configure(latency_median=0.2)
    started = time.monotonic()
    answers = post_many(server, [chat(str(i), model="a" if i < 3 else "b") for i in range(5)])
    assert all(a.status == 200 for a in answers)
    assert 0.2 <= time.monotonic() - started < 1.5
    stats = server.stats()
    assert stats["max_in_flight"] == 5
    assert stats["max_in_flight_by_model"] == {"a": 3, "b": 2}
    assert stats["in_flight"] == 0


def test_judge_latency_can_differ_from_generation_latency(server: FakeServer) -> None:
    server.configure(judge_latency_median=0.3)
    started = time.monotonic()
    post(server, chat())
    assert time.monotonic() - started < 0.2
    post(server, chat(SINGLE_JUDGE))
    assert time.monotonic() - started >= 0.3


def test_admin_config_merges_and_rejects_bad_options(server: FakeServer) -> None:
    options = server.configure(rpm=30)
    assert options["rpm"] == 30 and options["answer_max_words"] == 120
    for bad in ({"no_such_option": 1}, {"rpm": "fast"}, {"fault_500": 2}, {"sample_noise": 1}):
        with pytest.raises(RuntimeError, match="400"):
            server.configure(**bad)
    assert server.current_options()["rpm"] == 30


def test_reset_zeroes_stats_rate_windows_and_duplicates(server: FakeServer) -> None:
    server.configure(rpm=6, rate_window=10.0)
    post(server, chat())
    assert post(server, chat()).status == 429
    server.reset()
    assert server.stats()["requests"] == 0
    assert post(server, chat()).status == 200
    stats = server.stats()
    assert stats["duplicates"] == 0 and stats["rate_limited"] == 0 and stats["ok"] == 1


def test_invalid_body_gets_400(server: FakeServer) -> None:
    answer = post(server, {"model": "m"})
    assert answer.status == 400 and "messages" in answer.json()["error"]["message"]


def test_models_health_and_stats_without_arrivals(server: FakeServer) -> None:
    def get(path: str) -> Any:
        async def fetch() -> Any:
            async with aiohttp.ClientSession() as s, s.get(server.url + path) as r:
                return await r.json()

        return asyncio.run(fetch())

    assert get("/health") == {"status": "ok"}
    assert get("/v1/models") == {"object": "list", "data": [{"id": "fake", **MODEL_FIELDS}]}
    post(server, chat(model="x"))
    assert [m["id"] for m in get("/v1/models")["data"]] == ["x"]
    assert "arrivals" not in server.stats(arrivals=False)


def test_cli_flags_set_the_initial_options() -> None:
    flags = {
        "auth_key": "k",
        "reject_models": ["gone", "old"],
        "sample_noise": True,
        "latency_sigma": 0.5,
        "judge_latency_median": 0.1,
        "rpm": 600,
    }
    with FakeServer(**flags) as server:
        options = server.current_options()
        assert {name: options[name] for name in flags} == flags
        assert post(server, chat(), {"Authorization": "Bearer k"}).status == 200
