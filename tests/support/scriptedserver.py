"""A small OpenAI-compatible chat server on 127.0.0.1 whose replies the test scripts per model.

The fake server answers well-formed bodies; this one answers whatever a test needs a server to
answer (a 200 whose fields SQLite cannot hold, say), in a thread of the test process, so the
engine (in-process or a subprocess) talks to it over a real socket.

    with ScriptedServer(poisoned={"beta": {"finish_reason": {"why": "stop"}}}) as server:
        ...  # model "beta" gets the poisoned field in every choice; every other model is healthy
        server.heal()  # from now on every model is healthy
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["ScriptedServer"]


class ScriptedServer:
    def __init__(
        self,
        *,
        poisoned: dict[str, dict[str, Any]] | None = None,
        latency: float = 0.0,
        same_answers: bool = False,
    ) -> None:
        self.poisoned = dict(poisoned or {})
        self.latency = latency
        self.same_answers = same_answers  # every model answers a question with the same text
        self.answered: Counter[str] = Counter()  # 200s sent, per model
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def heal(self) -> None:
        self.poisoned.clear()

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        model = body["model"]
        if self.latency:
            await asyncio.sleep(self.latency)
        question = body["messages"][-1]["content"]
        who = "a model" if self.same_answers else model
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": f"{who} answers: {question[:40]}"},
            "finish_reason": "stop",
        }
        usage: dict[str, Any] = {"prompt_tokens": 20, "completion_tokens": 8}
        for field, value in self.poisoned.get(model, {}).items():
            (usage if field.endswith("_tokens") else choice)[field] = value
        self.answered[model] += 1
        return web.json_response({"object": "chat.completion", "choices": [choice], "usage": usage})
