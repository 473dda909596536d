"""The fake server's scripted mode answers with exactly the bytes a test loads, in order, or by
the request (one model's, or bodies holding given strings), after a silence if asked."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.support.fakeclient import chat, message, post, post_message
from tests.support.fakeserver import FakeServer
from tests.support.scripted import reply


def test_scripted_replies_are_sent_as_given_in_turn_on_both_routes(fake: FakeServer) -> None:
    fake.script(
        [
            reply(200, [b'{"a":', b" 1}"], headers=[("Retry-After", "0")]),
            reply(503, [b"\xff\xfe not utf-8"], content_type="text/plain"),
        ]
    )
    first, second = post(fake, chat()), post_message(fake, message())
    assert (first.status, first.raw, first.headers["retry-after"]) == (200, b'{"a": 1}', "0")
    assert first.headers["content-type"] == "application/json"
    assert (second.status, second.raw) == (503, b"\xff\xfe not utf-8")
    assert post(fake, chat()).raw == b'{"a": 1}'  # the script starts over
    assert fake.scripted_requests() == 3
    assert fake.stats()["requests"] == 0  # the normal pipeline never saw them


def test_a_cut_reply_hangs_up_before_the_body_ends(fake: FakeServer) -> None:
    fake.script([reply(200, [b"data: {}\n\n"], content_type="text/event-stream", cut=True)])

    async def read() -> bytes:
        async with (
            aiohttp.ClientSession() as session,
            session.post(fake.base_url + "/chat/completions", json=chat()) as response,
        ):
            return await response.read()

    with pytest.raises(aiohttp.ClientPayloadError):
        asyncio.run(read())


def test_reset_or_an_empty_script_brings_back_normal_answers(fake: FakeServer) -> None:
    fake.script([reply(500, [b"no"])])
    fake.reset()
    assert post(fake, chat()).status == 200
    fake.script([reply(500, [b"no"])])
    fake.script([])
    assert post(fake, chat()).status == 200


def test_a_reply_for_a_model_or_a_body_answers_only_those_requests_the_first_match_wins(
    fake: FakeServer,
) -> None:
    fake.script(
        [
            reply(200, [b"beta about Paris"], model="beta", contains=["Paris"]),
            reply(200, [b"beta"], model="beta"),
            reply(200, [b"rated"], contains=["[[rating]]", "Paris"]),
            reply(200, [b"anyone"]),
        ]
    )
    assert post(fake, chat("Paris?", model="beta")).raw == b"beta about Paris"
    assert post(fake, chat("Rome?", model="beta")).raw == b"beta"
    assert post(fake, chat("Paris? [[rating]]", model="alpha")).raw == b"rated"
    assert post(fake, chat("Paris?", model="alpha")).raw == b"anyone"
    assert post_message(fake, message("Rome?", model="beta")).raw == b"beta"
    assert fake.scripted_replies_served() == [1, 2, 1, 1]
    assert fake.scripted_requests() == 5


def test_a_request_no_conditional_reply_matches_gets_the_fakes_own_answer(
    fake: FakeServer,
) -> None:
    fake.script([reply(500, [b"no"], model="broken")])
    assert post(fake, chat(model="broken")).status == 500
    healthy = post(fake, chat(model="fine"))
    assert healthy.status == 200 and "fine" in healthy.text()
    assert fake.scripted_replies_served() == [1]
    assert fake.stats(arrivals=False)["requests"] == 1  # only the unscripted one


def test_a_delayed_reply_is_silent_for_its_delay_and_counted_once_sent(fake: FakeServer) -> None:
    fake.script([reply(200, [b"late"], delay=0.3)])
    started = time.monotonic()
    assert post(fake, chat()).raw == b"late"
    assert time.monotonic() - started >= 0.3
    assert fake.scripted_replies_served() == [1]


@pytest.mark.parametrize(
    "bad",
    [
        {"status": 101, "chunks": []},
        {"status": 200, "chunks": ["%%"]},
        {"status": 200},
        "x",
        {"status": 200, "chunks": [], "model": 7},
        {"status": 200, "chunks": [], "contains": "Paris"},
        {"status": 200, "chunks": [], "delay": -1},
    ],
    ids=[
        "informational-status",
        "not-base64",
        "no-chunks",
        "not-an-object",
        "model-not-a-string",
        "contains-not-a-list",
        "negative-delay",
    ],
)
def test_a_malformed_script_is_refused(fake: FakeServer, bad: Any) -> None:
    with pytest.raises(RuntimeError, match=r"400 .*bad script"):
        fake.script([bad])
