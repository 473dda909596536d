"""The small interface every provider adapter implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import orjson

from engine.chat import ChatRequest, ChatResponse

__all__ = ["HttpBody", "HttpCall", "Provider", "error_body_message"]


@dataclass(frozen=True, slots=True)
class HttpCall:
    url: str
    headers: dict[str, str]
    body: bytes


class HttpBody(Protocol):
    """A 2xx response as an adapter reads it: whole (`read`) or piece by piece (`chunks`).

    Reading raises only the engine's RequestErrors (the transport translates aiohttp's)."""

    content_type: str

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


class Provider(Protocol):
    def build(
        self, request: ChatRequest, base_url: str, api_key: str | None, *, stream: bool
    ) -> HttpCall:
        """The HTTP call for one attempt at `request`."""
        ...

    async def read(self, response: HttpBody, *, stream: bool) -> ChatResponse:
        """Parse a 2xx answer (JSON body or SSE stream) into a ChatResponse whose fields all
        have their documented types.

        Whatever the server sent, only a RequestError (malformed, truncated, ...) may leave it."""
        ...

    def error_detail(self, body: bytes) -> str:
        """The human part of an error body, for failure messages."""
        ...


def error_body_message(body: bytes, *, with_type: bool) -> str:
    """The message of an `{"error": {"type": ..., "message": ...}}` body (both APIs use that
    shape; `with_type` puts the type first), else the body as text."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        kind = error.get("type")
        if with_type and isinstance(kind, str):
            return f"{kind}: {error['message']}"
        return error["message"]
    if isinstance(error, str):
        return error
    return body.decode("utf-8", "replace").strip()
