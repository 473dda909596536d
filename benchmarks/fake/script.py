"""Scripted replies: the fake server answers with exactly the bytes a test dictates.

The engine must survive anything a server can send on a well-formed HTTP connection: wrong types
at every level of a body, invalid UTF-8, SSE streams of comments or of events after `[DONE]`,
content types that lie, statuses it has never seen. The fake's own answers are always
well-formed, so a test (the wire fuzz above all) loads a script instead:

    POST /admin/script {"replies": [{"status": 200, "headers": [["Content-Type", "text/plain"]],
                                     "chunks": ["<base64>", ...], "cut": false}, ...]}

While a script is loaded, every `POST /v1/chat/completions` and `/v1/messages` is answered by a
reply: status and headers as given, after `delay` seconds of silence if one is given (a slow,
unstreamed answer), the chunks written one by one (chunked transfer encoding, so a stream arrives
in pieces), then the end of the body, or with `cut` the connection closed before it. Some tests
need the reply to depend on the request (a judge that rates one model's answers off the scale, one
model's server poisoned): a reply with `"model": name` answers only that model's requests, one
with `"contains": [strings]` only requests whose raw JSON body holds every string. A request gets
the first such reply that matches it, else the next of the replies without conditions, cycling
back to the first, else (none loaded) the fake's own answer. `GET /admin/script` says how many
requests the script answered, in all (`served`) and per reply (`served_by`); an empty list, or
`POST /admin/reset`, unloads it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
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
    model: str | None = None  # answers only requests for this model
    contains: tuple[str, ...] = ()  # answers only requests whose body holds each of these
    delay: float = 0.0  # seconds of silence before the status line

    @property
    def conditional(self) -> bool:
        return self.model is not None or bool(self.contains)

    def matches(self, model: object, body: str) -> bool:
        wanted = self.model is None or model == self.model
        return wanted and all(text in body for text in self.contains)


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


def _conditions(value: dict[str, object]) -> tuple[str | None, tuple[str, ...], float]:
    model, contains, delay = value.get("model"), value.get("contains", []), value.get("delay", 0)
    if model is not None and not isinstance(model, str):
        raise ScriptError("'model' must be a string")
    if not isinstance(contains, list) or not all(isinstance(text, str) for text in contains):
        raise ScriptError("'contains' must be a list of strings")
    if isinstance(delay, bool) or not isinstance(delay, (int, float)):
        raise ScriptError("'delay' must be a number of seconds")
    if not 0 <= delay <= 3600 or math.isnan(delay):
        raise ScriptError("'delay' must be from 0 to 3600 seconds")
    return model, tuple(contains), float(delay)


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
    headers, chunks = _headers(value.get("headers", [])), _chunks(value.get("chunks"))
    return ScriptedReply(status, headers, chunks, cut, *_conditions(value))


class Script:
    """The loaded replies (none: the fake answers as usual) and how many requests they answered."""

    def __init__(self) -> None:
        self.load([])

    def load(self, replies: list[ScriptedReply]) -> None:
        self.replies = replies
        self.served = 0
        self.served_by = [0] * len(replies)
        self._rules = [i for i, reply in enumerate(replies) if reply.conditional]
        self._by_models = any(replies[i].model is not None for i in self._rules)
        plain = [i for i, reply in enumerate(replies) if not reply.conditional]
        self._next = itertools.cycle(plain) if plain else None

    @property
    def active(self) -> bool:
        return bool(self.replies)

    def choose(self, body: bytes) -> int | None:
        """The index of the reply for a request with this body; None: the fake's own answer."""
        if self._rules:
            model = _model(body) if self._by_models else None
            text = body.decode("utf-8", "replace")
            for index in self._rules:
                if self.replies[index].matches(model, text):
                    return index
        return None if self._next is None else next(self._next)

    def count(self, index: int) -> None:
        self.served += 1
        self.served_by[index] += 1


def _model(body: bytes) -> object:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return request.get("model") if isinstance(request, dict) else None


SCRIPT = web.AppKey("script", Script)


async def _answer(request: web.Request, script: Script, index: int) -> web.StreamResponse:
    reply = script.replies[index]
    if reply.delay:
        await asyncio.sleep(reply.delay)
    script.count(index)
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
        index = script.choose(await request.read())  # read once: aiohttp keeps it for a handler
        if index is not None:
            return await _answer(request, script, index)
    return await handler(request)


def _status(script: Script) -> web.Response:
    counts = {"replies": len(script.replies), "served": script.served}
    return web.json_response({**counts, "served_by": script.served_by})


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
