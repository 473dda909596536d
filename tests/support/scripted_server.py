"""A tiny OpenAI-compatible server on 127.0.0.1 whose every reply a test scripts.

The fake server answers like a model and a judge in general; some tests need one exact reply (a
judge that rates "[[11]]", an error body carrying terminal escapes). This server runs its own event
loop in a thread, so the engine under test (run in-process with `asyncio.run`) talks to it over a
real socket.

    def reply(body: dict) -> tuple[int, dict]:
        return 200, completion("Rating: [[7]]")

    with ScriptedServer(reply) as server:
        ...  # base_url = server.base_url
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["ScriptedServer", "completion", "prompt_text"]

Reply = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


def completion(text: str) -> dict[str, Any]:
    """A chat completion body holding `text`."""
    return {
        "id": "scripted",
        "object": "chat.completion",
        "model": "scripted",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def prompt_text(body: dict[str, Any]) -> str:
    """Every message's content of a request, joined."""
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []))


class ScriptedServer:
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _handle(self, request: web.Request) -> web.Response:
        status, payload = self.reply(await request.json())
        return web.json_response(payload, status=status)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
