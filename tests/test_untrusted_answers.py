"""Values from a server are untrusted input: what each provider does with wrong ones.

Each test scripts the fake server's bytes and runs the engine against it over a real socket.
A field that is only informational (finish reason, token counts) is stored as NULL when it is
not what the API documents; an answer without a text is malformed and retried; whatever the
server sends, the run ends, with every job either stored or recorded in `failures`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, write_config
from tests.support.scripted import (
    anthropic_message,
    json_reply,
    openai_completion,
    reply,
    run_engine,
    sse_reply,
)

MAX_ATTEMPTS = 2  # retried once: enough to prove it is retried, and the backoff stays short


def rows(store: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store) as db:
        return db.execute(sql).fetchall()


def generate(
    tmp_path: Path, fake: FakeServer, replies: list[dict[str, Any]], **options: Any
) -> int:
    """`mtbench generate` of question 81 (two turns) by model `m`, answered by `replies`."""
    fake.script(replies)
    base_url = fake.url if options.get("api") == "anthropic" else fake.base_url
    settings = {"max_attempts": MAX_ATTEMPTS, "timeout": 5.0, "concurrency": 2, **options}
    config = write_config(tmp_path, models=[model("m", base_url, **settings)], questions=[81])
    return run_engine(config)


def stored(tmp_path: Path) -> list[tuple[Any, ...]]:
    return rows(
        tmp_path / "store.sqlite",
        "SELECT text, finish_reason, prompt_tokens, completion_tokens FROM responses",
    )


def failures(tmp_path: Path) -> list[tuple[Any, ...]]:
    return rows(
        tmp_path / "store.sqlite",
        "SELECT turn, error_class, attempts, message FROM failures ORDER BY turn",
    )


def test_a_finish_reason_that_is_an_object_is_stored_as_null(
    tmp_path: Path, fake: FakeServer
) -> None:
    body = openai_completion("Paris.", finish_reason={"why": "stop"})
    assert generate(tmp_path, fake, [json_reply(body)]) == 0
    assert stored(tmp_path) == [("Paris.", None, 12, 3)] * 2


def test_a_long_finish_reason_is_cut_to_a_short_string(tmp_path: Path, fake: FakeServer) -> None:
    body = openai_completion("Paris.", finish_reason="stop" * 1000)
    assert generate(tmp_path, fake, [json_reply(body)]) == 0
    (reason,) = {row[1] for row in stored(tmp_path)}
    assert reason.startswith("stopstop") and len(reason) <= 64


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 2**63 + 1, "completion_tokens": 3},
        {"prompt_tokens": -5, "completion_tokens": 3},
        {"prompt_tokens": "12", "completion_tokens": 3},
        {"prompt_tokens": [12], "completion_tokens": 3},
        {"prompt_tokens": 12.0, "completion_tokens": 3},
        {"prompt_tokens": True, "completion_tokens": 3},
    ],
    ids=["beyond-64-bits", "negative", "string", "list", "float", "bool"],
)
def test_a_token_count_that_is_not_a_sane_integer_is_stored_as_null(
    tmp_path: Path, fake: FakeServer, usage: dict[str, object]
) -> None:
    assert generate(tmp_path, fake, [json_reply(openai_completion(usage=usage))]) == 0
    assert stored(tmp_path) == [("An answer.", "stop", None, 3)] * 2


@pytest.mark.parametrize("usage", ["lots", [1, 2], 7], ids=["string", "list", "number"])
def test_usage_that_is_not_an_object_is_ignored(
    tmp_path: Path, fake: FakeServer, usage: object
) -> None:
    assert generate(tmp_path, fake, [json_reply(openai_completion(usage=usage))]) == 0
    assert stored(tmp_path) == [("An answer.", "stop", None, None)] * 2


def test_null_content_is_malformed_retried_and_names_the_refusal(
    tmp_path: Path, fake: FakeServer
) -> None:
    body = openai_completion(None, refusal="I can't help with that.")
    assert generate(tmp_path, fake, [json_reply(body)]) == 1
    assert stored(tmp_path) == []  # never cached, so never judged nor paid for twice
    (turn_1, turn_2) = failures(tmp_path)
    assert turn_1[:3] == (1, "malformed", MAX_ATTEMPTS)
    assert "content is null" in turn_1[3] and "I can't help with that." in turn_1[3]
    assert turn_2[:2] == (2, "dependency")
    assert fake.scripted_requests() == MAX_ATTEMPTS


MALFORMED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "content-number": (json_reply(openai_completion(42)), {}),
    "content-missing": (json_reply({"choices": [{"message": {"role": "assistant"}}]}), {}),
    "choices-object": (json_reply({"choices": {"0": {"message": {"content": "a"}}}}), {}),
    "choices-empty": (json_reply({"choices": []}), {}),
    "choice-string": (json_reply({"choices": ["a"]}), {}),
    "message-list": (json_reply({"choices": [{"message": ["a"]}]}), {}),
    "body-list": (json_reply([1, 2]), {}),
    "body-empty": (reply(200, []), {}),
    "body-invalid-utf8": (reply(200, [b'{"choices": [{"message": {"content": "\xff"}}]}']), {}),
    "body-deeply-nested": (reply(200, [b"[" * 5000 + b"]" * 5000]), {}),
    "body-nan": (reply(200, [b'{"choices": NaN}']), {}),
    "sse-data-list": (sse_reply([[1, 2], b"data: [DONE]\n\n"]), {"stream": True}),
    "sse-choices-object": (
        sse_reply([{"choices": {"0": {"delta": {"content": "a"}}}}, b"data: [DONE]\n\n"]),
        {"stream": True},
    ),
    "sse-delta-content-number": (
        sse_reply([{"choices": [{"delta": {"content": 5}}]}, b"data: [DONE]\n\n"]),
        {"stream": True},
    ),
    "sse-choice-list": (sse_reply([{"choices": [[1]]}, b"data: [DONE]\n\n"]), {"stream": True}),
    "sse-done-only": (sse_reply([b"data: [DONE]\n\n"]), {"stream": True}),
    "sse-refusal": (
        sse_reply(
            [
                {"choices": [{"delta": {"role": "assistant", "content": None, "refusal": ""}}]},
                {"choices": [{"delta": {"refusal": "No."}, "finish_reason": "stop"}]},
                b"data: [DONE]\n\n",
            ]
        ),
        {"stream": True},
    ),
    "anthropic-content-string": (json_reply(anthropic_message("hi")), {"api": "anthropic"}),
    "anthropic-block-string": (json_reply(anthropic_message(["hi"])), {"api": "anthropic"}),
    "anthropic-text-number": (
        json_reply(anthropic_message([{"type": "text", "text": 1}])),
        {"api": "anthropic"},
    ),
    "anthropic-sse-event-list": (
        sse_reply([[1], {"type": "message_stop"}]),
        {"api": "anthropic", "stream": True},
    ),
    "anthropic-sse-delta-list": (
        sse_reply([{"type": "content_block_delta", "delta": [1]}, {"type": "message_stop"}]),
        {"api": "anthropic", "stream": True},
    ),
    "anthropic-sse-text-number": (
        sse_reply(
            [
                {"type": "content_block_delta", "delta": {"type": "text_delta", "text": 1}},
                {"type": "message_stop"},
            ]
        ),
        {"api": "anthropic", "stream": True},
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_answer_fails_its_job_after_retries_and_the_run_ends(
    tmp_path: Path, fake: FakeServer, case: str
) -> None:
    scripted, options = MALFORMED[case]
    assert generate(tmp_path, fake, [scripted], **options) == 1
    assert stored(tmp_path) == []
    (turn_1, turn_2) = failures(tmp_path)
    assert turn_1[:3] == (1, "malformed", MAX_ATTEMPTS), turn_1
    assert turn_1[3].startswith("malformed response: ")
    assert turn_2[:2] == (2, "dependency")


TRUNCATED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "sse-only-comments": (sse_reply([b": keep-alive\n\n"] * 3), {"stream": True}),
    "sse-no-done": (
        sse_reply([{"choices": [{"delta": {"content": "a"}, "finish_reason": None}]}]),
        {"stream": True},
    ),
    "anthropic-sse-no-stop": (
        sse_reply([{"type": "message_start", "message": {"usage": {}}}, b": ping\n\n"]),
        {"api": "anthropic", "stream": True},
    ),
}


@pytest.mark.parametrize("case", list(TRUNCATED))
def test_a_stream_that_ends_without_its_last_event_is_truncated(
    tmp_path: Path, fake: FakeServer, case: str
) -> None:
    scripted, options = TRUNCATED[case]
    assert generate(tmp_path, fake, [scripted], **options) == 1
    assert failures(tmp_path)[0][:3] == (1, "truncated", MAX_ATTEMPTS)


def test_events_after_done_are_not_read(tmp_path: Path, fake: FakeServer) -> None:
    events = [
        {"choices": [{"delta": {"content": "Paris."}, "finish_reason": "stop"}]},
        b"data: [DONE]\n\n",
        [1, 2],
        b"data: {not json\n\n",
    ]
    assert generate(tmp_path, fake, [sse_reply(events)], stream=True) == 0
    assert stored(tmp_path) == [("Paris.", "stop", None, None)] * 2


def test_an_error_object_in_a_200_is_retried_with_its_message(
    tmp_path: Path, fake: FakeServer
) -> None:
    body = {"error": {"message": "upstream timed out", "type": "server_error"}}
    assert generate(tmp_path, fake, [json_reply(body)]) == 1
    turn_1 = failures(tmp_path)[0]
    assert turn_1[:3] == (1, "server_error", MAX_ATTEMPTS)
    assert "upstream timed out" in turn_1[3]


def test_an_sse_line_longer_than_aiohttp_reads_is_still_an_answer(
    tmp_path: Path, fake: FakeServer
) -> None:
    text = "word " * 200_000  # 1 MB in one event: aiohttp's readline refuses lines over 512 KiB
    events = [{"choices": [{"delta": {"content": text}, "finish_reason": "stop"}]}]
    assert generate(tmp_path, fake, [sse_reply([*events, b"data: [DONE]\n\n"])], stream=True) == 0
    assert stored(tmp_path)[0][0] == text


def test_an_endless_sse_line_is_malformed(tmp_path: Path, fake: FakeServer) -> None:
    endless = b"data: " + b"x" * (5 * 1024 * 1024)
    assert generate(tmp_path, fake, [sse_reply([endless])], stream=True) == 1
    assert failures(tmp_path)[0][:3] == (1, "malformed", MAX_ATTEMPTS)


def test_anthropic_odd_stop_reason_and_usage_are_stored_as_null(
    tmp_path: Path, fake: FakeServer
) -> None:
    body = anthropic_message(stop_reason=["end_turn"], usage={"input_tokens": 2**70})
    assert generate(tmp_path, fake, [json_reply(body)], api="anthropic") == 0
    assert stored(tmp_path) == [("An answer.", None, None, None)] * 2


def test_anthropic_stream_with_odd_fields_keeps_its_text(tmp_path: Path, fake: FakeServer) -> None:
    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": "9"}}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Par"}},
        {"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": 1}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "is."}},
        {"type": "message_delta", "delta": {"stop_reason": 7}, "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    ]
    assert generate(tmp_path, fake, [sse_reply(events)], api="anthropic", stream=True) == 0
    assert stored(tmp_path) == [("Paris.", None, None, 2)] * 2


def test_a_server_that_ignores_stream_and_answers_json_is_still_read(
    tmp_path: Path, fake: FakeServer
) -> None:
    assert generate(tmp_path, fake, [json_reply(openai_completion("Paris."))], stream=True) == 0
    assert stored(tmp_path)[0][0] == "Paris."
