"""The fake server's scripted mode answers with exactly the bytes a test loads, in order."""

from __future__ import annotations

import asyncio
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


@pytest.mark.parametrize(
    "bad",
    [{"status": 101, "chunks": []}, {"status": 200, "chunks": ["%%"]}, {"status": 200}, "x"],
    ids=["informational-status", "not-base64", "no-chunks", "not-an-object"],
)
def test_a_malformed_script_is_refused(fake: FakeServer, bad: Any) -> None:
    with pytest.raises(RuntimeError, match=r"400 .*bad script"):
        fake.script([bad])
