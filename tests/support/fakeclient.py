"""A small aiohttp client for the fake server's own tests: post, read, decode SSE events."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.support.fakeserver import FakeServer

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


def chat(content: str = "What is the capital of France?", model: str = "m", **extra: Any) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


async def post_to(
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
    return asyncio.run(post_to(server.base_url, body, headers, timeout))


def post_many(server: FakeServer, bodies: list[dict]) -> list[Answer]:
    async def send_all() -> list[Answer]:
        return await asyncio.gather(*(post_to(server.base_url, b, None, 5.0) for b in bodies))

    return asyncio.run(send_all())


def wait_for(predicate: Any, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def message(
    content: str = "What is the capital of France?", model: str = "m", **extra: Any
) -> dict:
    body = {"model": model, "max_tokens": 500, "messages": [{"role": "user", "content": content}]}
    return {**body, **extra}


def post_message(
    server: FakeServer, body: dict, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> Answer:
    return asyncio.run(post_to(server.url, body, headers, timeout, "/v1/messages"))


def anthropic_events(answer: Answer) -> list[tuple[str, Any]]:
    """(event name, decoded data) for each SSE event."""
    events = []
    for block in filter(None, answer.raw.split(b"\n\n")):
        name, data = block.split(b"\n", 1)
        assert name.startswith(b"event: ") and data.startswith(b"data: ")
        events.append((name[7:].decode(), json.loads(data[6:])))
    return events
