"""The fake server behaves like a real provider: answers, judges, limits, faults, stats.

Most tests use the OpenAI route; the last group checks that the Anthropic route (`/v1/messages`)
speaks Anthropic's format over the same limits, faults and stats.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest

from tests.fakeserver import FakeServer, serve_fake

SINGLE_JUDGE = 'Rate the response by strictly following this format: "[[rating]]".'
PAIRWISE_JUDGE = 'Output your final verdict: "[[A]]" if assistant A is better, "[[B]]" ...'
MODEL_FIELDS = {"object": "model", "created": 0, "owned_by": "fake"}


@dataclass(frozen=True)
class Answer:
    """One HTTP response as the client saw it."""

    status: int
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)

    def text(self) -> str:
        return str(self.json()["choices"][0]["message"]["content"])

    def events(self) -> list[Any]:
        """SSE `data:` payloads, decoded except the final `[DONE]`."""
        payloads = [e[len(b"data: ") :] for e in self.raw.split(b"\n\n") if e]
        return [p.decode() if p == b"[DONE]" else json.loads(p) for p in payloads]


@pytest.fixture(scope="module")
def running() -> Iterator[FakeServer]:
    yield from serve_fake()


@pytest.fixture(scope="module")
def defaults(running: FakeServer) -> dict[str, Any]:
    return running.current_options()


@pytest.fixture
def server(running: FakeServer, defaults: dict[str, Any]) -> FakeServer:
    """The module's server with default options and zeroed stats."""
    running.configure(**defaults)
    running.reset()
    return running


def chat(content: str = "What is the capital of France?", model: str = "m", **extra: Any) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


async def _post(
    url: str,
    body: dict,
    headers: dict[str, str] | None,
    timeout: float,
    path: str = "/chat/completions",
) -> Answer:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.post(url + path, json=body, headers=headers) as response,
    ):
        raw = await response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, raw)


def post(
    server: FakeServer, body: dict, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> Answer:
    return asyncio.run(_post(server.base_url, body, headers, timeout))


def post_many(server: FakeServer, bodies: list[dict]) -> list[Answer]:
    async def send_all() -> list[Answer]:
        return await asyncio.gather(*(_post(server.base_url, b, None, 5.0) for b in bodies))

    return asyncio.run(send_all())


def wait_for(predicate: Any, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


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


# --- the Anthropic Messages route: POST /v1/messages ---------------------------------------


def message(
    content: str = "What is the capital of France?", model: str = "m", **extra: Any
) -> dict:
    body = {"model": model, "max_tokens": 500, "messages": [{"role": "user", "content": content}]}
    return {**body, **extra}


def post_message(
    server: FakeServer, body: dict, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> Answer:
    return asyncio.run(_post(server.url, body, headers, timeout, "/v1/messages"))


def anthropic_events(answer: Answer) -> list[tuple[str, Any]]:
    """(event name, decoded data) for each SSE event."""
    events = []
    for block in filter(None, answer.raw.split(b"\n\n")):
        name, data = block.split(b"\n", 1)
        assert name.startswith(b"event: ") and data.startswith(b"data: ")
        events.append((name[7:].decode(), json.loads(data[6:])))
    return events


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
