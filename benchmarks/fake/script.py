"""Scripted replies: the fake server answers with exactly the bytes a test dictates.

The engine must survive anything a server can send on a well-formed HTTP connection: wrong types
at every level of a body, invalid UTF-8, SSE streams of comments or of events after `[DONE]`,
content types that lie, statuses it has never seen. The fake's own answers are always
well-formed, so a test (the wire fuzz above all) loads a script instead:

    POST /admin/script {"replies": [{"status": 200, "headers": [["Content-Type", "text/plain"]],
                                     "chunks": ["<base64>", ...], "cut": false}, ...]}

While a script is loaded, every `POST /v1/chat/completions` and `/v1/messages` is answered by the
next reply, cycling back to the first: status and headers as given, the chunks written one by one
(chunked transfer encoding, so a stream arrives in pieces), then the end of the body, or with
`cut` the connection closed before it. `GET /admin/script` says how many requests it answered;
an empty list, or `POST /admin/reset`, unloads it.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

__all__ = ["SCRIPT", "Script", "ScriptError", "ScriptedReply", "add_script_routes"]

SCRIPTED_PATHS = frozenset({"/v1/chat/completions", "/v1/messages"})


class ScriptError(ValueError):
    """A script that is not a list of replies in the documented shape."""


@dataclass(frozen=True)
class ScriptedReply:
    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: tuple[bytes, ...]
    cut: bool = False


def _headers(value: object) -> tuple[tuple[str, str], ...]:
    pairs = value if isinstance(value, list) else None
    if pairs is None or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair)
        for pair in pairs
    ):
        raise ScriptError("'headers' must be a list of [name, value] string pairs")
    return tuple((name, text) for name, text in pairs)


def _chunks(value: object) -> tuple[bytes, ...]:
    if not isinstance(value, list) or not all(isinstance(chunk, str) for chunk in value):
        raise ScriptError("'chunks' must be a list of base64 strings")
    try:
        return tuple(base64.b64decode(chunk, validate=True) for chunk in value)
    except binascii.Error as exc:
        raise ScriptError(f"a chunk is not base64: {exc}") from None


def parse_reply(value: object) -> ScriptedReply:
    """One reply from its JSON form; ScriptError if malformed."""
    if not isinstance(value, dict):
        raise ScriptError("each reply must be an object")
    status = value.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise ScriptError("'status' must be an integer from 200 to 599")
    cut = value.get("cut", False)
    if not isinstance(cut, bool):
        raise ScriptError("'cut' must be true or false")
    return ScriptedReply(
        status, _headers(value.get("headers", [])), _chunks(value.get("chunks")), cut
    )


class Script:
    """The loaded replies (none: the fake answers as usual) and how many requests they answered."""

    def __init__(self) -> None:
        self.load([])

    def load(self, replies: list[ScriptedReply]) -> None:
        self.replies = replies
        self.served = 0
        self._next = itertools.cycle(replies)

    @property
    def active(self) -> bool:
        return bool(self.replies)

    def next_reply(self) -> ScriptedReply:
        self.served += 1
        return next(self._next)


SCRIPT = web.AppKey("script", Script)


async def _answer(request: web.Request, reply: ScriptedReply) -> web.StreamResponse:
    await request.read()
    response = web.StreamResponse(status=reply.status, headers=CIMultiDict(reply.headers))
    await response.prepare(request)
    for chunk in reply.chunks:
        await response.write(chunk)
    if reply.cut:
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _scripted(request: web.Request, handler: Handler) -> web.StreamResponse:
    script = request.app[SCRIPT]
    if script.active and request.method == "POST" and request.path in SCRIPTED_PATHS:
        return await _answer(request, script.next_reply())
    return await handler(request)


def _status(script: Script) -> web.Response:
    return web.json_response({"replies": len(script.replies), "served": script.served})


async def _get_script(request: web.Request) -> web.Response:
    return _status(request.app[SCRIPT])


async def _post_script(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        replies = body.get("replies") if isinstance(body, dict) else None
        if not isinstance(replies, list):
            raise ScriptError('the body must be {"replies": [...]}')
        parsed = [parse_reply(reply) for reply in replies]
    except ValueError as exc:  # bad JSON, or a ScriptError
        error = {"message": f"bad script: {exc}", "type": "invalid_request_error"}
        return web.json_response({"error": error}, status=400)
    request.app[SCRIPT].load(parsed)
    return _status(request.app[SCRIPT])


def add_script_routes(app: web.Application) -> None:
    """The scripted-reply middleware and `GET|POST /admin/script`."""
    app[SCRIPT] = Script()
    app.middlewares.append(_scripted)
    app.router.add_get("/admin/script", _get_script)
    app.router.add_post("/admin/script", _post_script)
