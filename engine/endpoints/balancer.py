"""Which base URL of an endpoint gets the next attempt: least outstanding requests, avoiding URLs
that just refused a connection, and noticing an endpoint that has never been reachable at all.

Several `base_urls` for one model are how a run scales out to a fleet of vLLM/SGLang replicas; a
replica that goes down should cost a few seconds of cooldown, not a share of every retry. A typo in
base_url or a server that is not running should fail the endpoint in seconds, not after an hour of
backoff: that is `never_reachable`.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.endpoints.clock import SYSTEM_CLOCK, Clock

__all__ = ["URL_COOLDOWN", "BaseUrl", "UrlBalancer"]

URL_COOLDOWN = 5.0  # seconds a base URL is avoided after a connection error, if others exist
UNREACHABLE_AFTER = 3  # refused connects per base URL before a never-answering endpoint is failed


@dataclass(slots=True, eq=False)
class BaseUrl:
    url: str
    outstanding: int = 0
    cooldown_until: float = 0.0
    refused: int = 0  # consecutive connects that failed outright


class UrlBalancer:
    def __init__(self, urls: tuple[str, ...] | list[str], clock: Clock = SYSTEM_CLOCK) -> None:
        self.urls = [BaseUrl(url) for url in urls]
        self._clock = clock

    def replace(self, urls: list[str]) -> None:
        """A served model's URL is known only once its server is up."""
        self.urls = [BaseUrl(url) for url in urls]

    def pick(self) -> BaseUrl:
        if len(self.urls) == 1:
            return self.urls[0]
        now = self._clock.monotonic()
        usable = [u for u in self.urls if u.cooldown_until <= now] or self.urls
        return min(usable, key=lambda u: u.outstanding)

    def connected(self, base: BaseUrl) -> None:
        base.refused = 0

    def connection_failed(self, base: BaseUrl) -> None:
        if len(self.urls) > 1:
            base.cooldown_until = self._clock.monotonic() + URL_COOLDOWN

    def refused(self, base: BaseUrl, *, ever_answered: bool) -> bool:
        """Count a refused connect; True once no URL has ever answered and all keep refusing."""
        base.refused += 1
        return not ever_answered and all(u.refused >= UNREACHABLE_AFTER for u in self.urls)
