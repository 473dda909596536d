"""A pass-through HTTP proxy on 127.0.0.1 that records every request body it forwards.

Tests of what a server *received* (no thinking in a judge prompt, none in turn 2's messages) put
this between the engine and the fake server: the engine talks to the proxy over a real socket, the
proxy to the fake over another, and the reply (JSON or SSE) comes back byte for byte as the fake
sent it. Its event loop runs in a thread, so the engine can run in-process with `asyncio.run`.

    with RecordingProxy(fake.url) as proxy:
        ...  # base_url = proxy.base_url
        bodies = proxy.bodies("/v1/chat/completions")
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

import aiohttp
import orjson
from aiohttp import web

__all__ = ["RecordingProxy"]

_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "host"})


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = 0
        self.requests: list[tuple[str, Any]] = []  # (path, decoded JSON body), arrival order
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def bodies(self, path: str) -> list[Any]:
        """The JSON bodies of the requests forwarded to `path`, in arrival order."""
        with self._lock:
            return [body for where, body in self.requests if where == path]

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        with self._lock:
            self.requests.append((request.path, orjson.loads(raw) if raw else None))
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=raw, headers=headers
        ) as upstream:
            reply = web.StreamResponse(status=upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    reply.headers[name] = value
            await reply.prepare(request)
            async for chunk in upstream.content.iter_any():
                await reply.write(chunk)
            await reply.write_eof()
            return reply

    async def _start(self) -> None:
        # No total bound: a slow answer (llama.cpp on a loaded machine) is the engine's to time out,
        # not the proxy's to cut short; pytest-timeout bounds the test.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        self._session = aiohttp.ClientSession(timeout=timeout)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
