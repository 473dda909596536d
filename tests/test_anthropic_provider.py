"""The Anthropic Messages adapter: request shape, JSON and SSE answers, and its failures retried.

Everything past the request shape goes through a real `EndpointPool` over sockets to the fake
server's `/v1/messages`, so what is proven is what a run would do.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import orjson
import pytest

import engine.endpoints.providers
from engine.chat import ChatRequest, ChatResponse
from engine.config import EndpointConfig
from engine.endpoints.pool import EndpointPool, Outcome
from engine.endpoints.providers.anthropic import ANTHROPIC_VERSION, AnthropicProvider, messages_url
from engine.endpoints.retry import error_for_status, retry_after_seconds
from engine.errors import FatalRequestError, RetryableError
from tests.support.fakeserver import FakeServer

SINGLE_JUDGE = 'Rate the response by strictly following this format: "[[rating]]".'
QUESTION = "What is the capital of France?"


@pytest.fixture(autouse=True)
def anthropic_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Until `engine.endpoints.providers` registers the adapter itself."""
    monkeypatch.setitem(engine.endpoints.providers._PROVIDERS, "anthropic", AnthropicProvider())
    yield


def request(
    content: str = QUESTION, *, system: str | None = None, max_tokens: int = 500, **extra: Any
) -> ChatRequest:
    messages = (("system", system),) if system else ()
    return ChatRequest(
        api="anthropic",
        label="claude",
        model="claude-fake",
        messages=(*messages, ("user", content)),
        max_tokens=max_tokens,
        temperature=0.0,
        **extra,
    )


def endpoint(server: FakeServer, **options: Any) -> EndpointConfig:
    settings: dict[str, Any] = {"concurrency": 4, "timeout": 5.0, "max_attempts": 4}
    return EndpointConfig(
        name="claude",
        model="claude-fake",
        base_urls=(server.url,),
        api="anthropic",
        **{**settings, **options},
    )


def ask(config: EndpointConfig, *requests: ChatRequest) -> tuple[list[Outcome], EndpointPool]:
    """Send `requests` through a fresh pool; every outcome, in order, and the pool (its stats)."""

    async def scenario() -> tuple[list[Outcome], EndpointPool]:
        pool = EndpointPool(config, rng=random.Random(0))
        pool.start()
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Outcome]] = []

        def done(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
            outcome.release()  # nothing to commit here: free the slot at once, as a commit would
            future.set_result(outcome)

        for item in requests:
            future: asyncio.Future[Outcome] = loop.create_future()
            pool.submit(item, partial(done, future))
            futures.append(future)
        try:
            outcomes = await asyncio.wait_for(asyncio.gather(*futures), 30)
        finally:
            await pool.close()
        return list(outcomes), pool

    return asyncio.run(scenario())


def answer(config: EndpointConfig, item: ChatRequest) -> Outcome:
    (outcome,), _ = ask(config, item)
    return outcome


def test_build_lifts_the_system_prompt_and_sends_the_key_as_x_api_key() -> None:
    item = replace(request(system="Be terse."), extra_body=orjson.dumps({"top_k": 5}), seed=7)
    call = AnthropicProvider().build(item, "https://api.anthropic.com", "sk-ant", stream=True)
    assert call.url == "https://api.anthropic.com/v1/messages"
    assert call.headers == {
        "x-api-key": "sk-ant",
        "anthropic-version": ANTHROPIC_VERSION,
        "content-type": "application/json",
    }
    assert orjson.loads(call.body) == {
        "model": "claude-fake",
        "max_tokens": 500,
        "temperature": 0.0,
        "system": "Be terse.",
        "messages": [{"role": "user", "content": QUESTION}],
        "top_k": 5,
        "stream": True,
    }  # no seed: the Messages API has none


def test_build_without_system_key_or_stream_omits_them_and_joins_same_role_turns() -> None:
    turns = (("user", "a"), ("user", "b"), ("assistant", "c"), ("system", "s"), ("user", "d"))
    item = replace(request(), messages=turns)
    call = AnthropicProvider().build(item, "http://h/", None, stream=False)
    body = orjson.loads(call.body)
    assert body["system"] == "s" and "stream" not in body
    assert body["messages"] == [
        {"role": "user", "content": "a\n\nb"},
        {"role": "assistant", "content": "c"},
        {"role": "user", "content": "d"},
    ]
    assert "x-api-key" not in call.headers and "Authorization" not in call.headers
    assert "system" not in orjson.loads(
        AnthropicProvider().build(request(), "h", None, stream=False).body
    )


def test_messages_url_takes_a_base_url_with_or_without_v1() -> None:
    for base in ("http://h", "http://h/", "http://h/v1", "http://h/v1/"):
        assert messages_url(base) == "http://h/v1/messages"


def test_error_detail_reads_anthropics_error_object() -> None:
    provider = AnthropicProvider()
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    assert provider.error_detail(body) == "overloaded_error: Overloaded"
    assert provider.error_detail(b"<html>bad gateway</html>") == "<html>bad gateway</html>"


@pytest.mark.parametrize("stream", [False, True])
def test_answer_has_text_stop_reason_and_usage(fake: FakeServer, stream: bool) -> None:
    config = endpoint(fake, stream=stream)
    outcome = answer(config, request())
    assert outcome.response is not None and outcome.attempts == 1
    text = outcome.response.text
    assert text.startswith("This is a simulated answer from claude-fake.")
    assert outcome.response.finish_reason == "end_turn"
    assert outcome.response.prompt_tokens == math.ceil(len(QUESTION) / 4)
    assert outcome.response.completion_tokens == len(text.split())
    cut = answer(config, request(max_tokens=5)).response
    assert cut is not None and cut.text == "This is a simulated answer"
    assert cut.finish_reason == "max_tokens" and cut.completion_tokens == 5


def test_streamed_and_plain_answers_agree(fake: FakeServer) -> None:
    plain = answer(endpoint(fake), request()).response
    streamed = answer(endpoint(fake, stream=True), request()).response
    assert plain is not None and streamed is not None
    assert (plain.text, plain.finish_reason, plain.total_tokens) == (
        streamed.text,
        streamed.finish_reason,
        streamed.total_tokens,
    )
    assert fake.stats()["duplicates"] == 1


def test_a_judge_prompt_in_the_top_level_system_is_judged(fake: FakeServer) -> None:
    outcome = answer(endpoint(fake), request("The answer: Paris.", system=SINGLE_JUDGE))
    assert outcome.response is not None and "Rating: [[" in outcome.response.text
    assert fake.stats()["by_kind"] == {"generation": 0, "judge": 1}


FAILURES = [  # (fault option, streamed?, the error class the adapter reports)
    ("fault_529", False, "overloaded"),
    ("fault_529", True, "overloaded"),
    ("fault_stream_error", True, "overloaded"),  # 200, then an `error` event mid-stream
    ("fault_truncate", True, "truncated"),  # the stream ends before message_stop
    ("fault_malformed", True, "malformed"),
    ("fault_malformed", False, "malformed"),
    ("fault_500", False, "server_error"),
]


@pytest.mark.parametrize(("fault", "stream", "error_class"), FAILURES)
def test_each_transient_failure_is_classified_and_retried(
    fake: FakeServer, fault: str, stream: bool, error_class: str
) -> None:
    fake.configure(**{fault: 1.0})
    failed = answer(endpoint(fake, stream=stream, max_attempts=1), request())
    assert isinstance(failed.error, RetryableError), failed.error
    assert failed.error.error_class == error_class
    # seed 2: the first fault draw hits, the second misses
    fake.configure(seed=2, **{fault: 0.5})
    (outcome,), pool = ask(endpoint(fake, stream=stream), request())
    assert outcome.response is not None and outcome.attempts == 2
    assert pool.stats.errors == {error_class: 1}


class RecordedStream:
    """Just what `AnthropicProvider.read` uses of a response, replaying recorded SSE bytes."""

    content_type = "text/event-stream"

    def __init__(self, *events: tuple[str, dict[str, Any]]) -> None:
        raw = b"".join(
            b"event: %s\ndata: %s\n\n" % (name.encode(), orjson.dumps(data))
            for name, data in events
        )
        self._raw = raw

    async def read(self) -> bytes:
        return self._raw

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes as they would arrive: here, one line per network read."""
        for line in self._raw.splitlines(keepends=True):
            yield line


def read_recorded(*events: tuple[str, dict[str, Any]]) -> ChatResponse:
    return asyncio.run(AnthropicProvider().read(RecordedStream(*events), stream=True))


START = ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 9}}})
THINKING = {"type": "thinking_delta", "thinking": "hmm"}
STOP = ("message_stop", {"type": "message_stop"})


def delta(text: str) -> tuple[str, dict[str, Any]]:
    event = {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "text_delta", "text": text},
    }
    return ("content_block_delta", event)


def test_stream_keeps_only_text_deltas_and_the_last_usage() -> None:
    response = read_recorded(
        START,
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": THINKING}),
        ("ping", {"type": "ping"}),
        delta("Par"),
        delta("is"),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 3},
            },
        ),
        STOP,
    )
    assert (response.text, response.finish_reason) == ("Paris", "end_turn")
    assert (response.prompt_tokens, response.completion_tokens) == (9, 3)


def test_stream_that_ends_cleanly_before_message_stop_is_truncated() -> None:
    with pytest.raises(RetryableError) as caught:
        read_recorded(START, delta("Par"))
    assert caught.value.error_class == "truncated"


@pytest.mark.parametrize(
    ("error_type", "error_class"),
    [("overloaded_error", "overloaded"), ("api_error", "server_error"), ("odd", "server_error")],
)
def test_an_error_event_is_retryable(error_type: str, error_class: str) -> None:
    error = {"type": "error", "error": {"type": error_type, "message": "Overloaded"}}
    with pytest.raises(RetryableError) as caught:
        read_recorded(START, delta("Par"), ("error", error), STOP)
    assert caught.value.error_class == error_class and error_type in str(caught.value)


def test_a_spurious_429_carries_the_servers_wait(fake: FakeServer) -> None:
    fake.configure(fault_429=1.0, fault_429_retry_after=0.2)
    failed = answer(endpoint(fake, max_attempts=1), request())
    assert isinstance(failed.error, RetryableError) and failed.error.error_class == "rate_limit"
    assert failed.error.retry_after == 1  # Anthropic's retry-after is whole seconds


def test_rate_limited_requests_pause_the_endpoint_then_succeed(fake: FakeServer) -> None:
    fake.configure(rpm=120, rate_window=1.0)  # two requests per second
    outcomes, pool = ask(endpoint(fake), *(request(f"question {i}") for i in range(4)))
    assert all(outcome.response is not None for outcome in outcomes)
    assert pool.stats.rate_limited >= 1
    stats = fake.stats()
    assert stats["rate_limited"] >= 1 and stats["ok"] == 4


def test_a_wrong_key_fails_the_endpoint_after_one_request(fake: FakeServer) -> None:
    fake.configure(auth_key="sk-ant-right")
    config = endpoint(fake, concurrency=1, api_key="sk-ant-wrong")
    outcomes, pool = ask(config, *(request(f"question {i}") for i in range(3)))
    for outcome in outcomes:
        assert isinstance(outcome.error, FatalRequestError) and outcome.error.status == 401
        assert "authentication_error" in str(outcome.error)
    assert pool.dead is not None and fake.stats()["requests"] == 1
    assert answer(replace(config, api_key="sk-ant-right"), request()).response is not None


def test_cache_key_differs_from_an_openai_request_with_the_same_messages() -> None:
    anthropic = request(system="Be terse.")
    openai = replace(anthropic, api="openai")
    assert anthropic.canonical()["api"] == "anthropic"
    assert anthropic.cache_key() != openai.cache_key()


def _in(seconds: float) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_anthropic_reset_headers_count_only_without_retry_after() -> None:
    resets = {
        "anthropic-ratelimit-requests-reset": _in(20),
        "anthropic-ratelimit-tokens-reset": _in(5),
        "anthropic-ratelimit-input-tokens-reset": _in(30),
        "anthropic-ratelimit-output-tokens-reset": "2000-01-01T00:00:00Z",  # past: no wait
    }
    assert 29 < (retry_after_seconds(resets) or 0) <= 30  # the longest reset
    assert retry_after_seconds({**resets, "retry-after": "2"}) == 2
    assert retry_after_seconds({**resets, "retry-after-ms": "300", "retry-after": "2"}) == 0.3
    offset = {"anthropic-ratelimit-tokens-reset": "2000-01-01T00:00:00.5+02:00"}
    assert retry_after_seconds(offset) == 0
    assert retry_after_seconds({"anthropic-ratelimit-tokens-reset": "tomorrow"}) is None
    error = error_for_status(429, {"anthropic-ratelimit-tokens-reset": _in(10)}, "slow", "m")
    assert 9 < (error.retry_after or 0) <= 10


def test_529_overloaded_is_retried_not_fatal() -> None:
    error = error_for_status(529, {}, "overloaded_error: Overloaded", "claude at http://h")
    assert isinstance(error, RetryableError) and error.error_class == "overloaded"
    assert error.status == 529
