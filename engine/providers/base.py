"""The small interface every provider adapter implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from engine.chat import ChatRequest, ChatResponse

if TYPE_CHECKING:
    import aiohttp

__all__ = ["HttpCall", "Provider"]


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
        """Parse a 2xx answer (JSON body or SSE stream); raise RetryableError if it is malformed."""
        ...

    def error_detail(self, body: bytes) -> str:
        """The human part of an error body, for failure messages."""
        ...
