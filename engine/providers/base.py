"""The small interface every provider adapter implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import orjson

from engine.chat import ChatRequest, ChatResponse

if TYPE_CHECKING:
    import aiohttp

__all__ = ["HttpCall", "Provider", "error_body_message"]


@dataclass(frozen=True, slots=True)
class HttpCall:
    url: str
    headers: dict[str, str]
    body: bytes


class Provider(Protocol):
    def build(
        self, request: ChatRequest, base_url: str, api_key: str | None, *, stream: bool
    ) -> HttpCall:
        """The HTTP call for one attempt at `request`."""
        ...

    async def read(self, response: aiohttp.ClientResponse, *, stream: bool) -> ChatResponse:
        """Parse a 2xx answer (JSON body or SSE stream) into a ChatResponse whose fields all
        have their documented types.

        Whatever the server sent, only a RequestError (malformed, truncated, ...) or an error of
        the transport itself (aiohttp's ClientError, a timeout) may leave it."""
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
