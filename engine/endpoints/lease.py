"""A model server the endpoint starts itself: before its first request, and stopped once its jobs
are done.

A served model (a checkpoint the engine launches, `engine.serving`) has no base URL until its
server is ready, and holds a GPU slot until it is stopped. The endpoint asks for it only when it
has something to send (a fully cached model never starts one), and fails every request at once
with the server's own message if it will not run or dies while needed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from engine.errors import FatalRequestError, ServerFailed

__all__ = ["ServerLease", "ServerStart"]


class ServerLease(Protocol):
    """A model server the endpoint starts for its first request (`engine.serving.sweep`)."""

    async def acquire(self, on_death: Callable[[ServerFailed], None]) -> list[str]:
        """Wait for slots and ready servers (one per replica); their base URLs (ServerFailed if
        one won't run)."""
        ...

    async def release(self) -> None:
        """Stop the servers and free their slots (every caller waits until that is done)."""
        ...

    def hurry(self) -> None:
        """The run is aborted: stopping its servers waits seconds for them, not a minute."""
        ...

    @property
    def status(self) -> str | None:
        """What its servers are doing while they hold slots (queued, starting, serving)."""


def _server_error(error: ServerFailed) -> FatalRequestError:
    return FatalRequestError("server", str(error), endpoint_fatal=True)


class ServerStart:
    """One endpoint's server, if it has one: started once, released once."""

    def __init__(
        self, lease: ServerLease | None, on_death: Callable[[FatalRequestError], None]
    ) -> None:
        self._lease = lease
        self._on_death = on_death
        self.due = lease is not None  # the dispatcher starts it before sending anything
        self._releasing = False

    @property
    def status(self) -> str | None:
        return None if self._lease is None else self._lease.status

    async def start(self) -> list[str]:
        """Wait for slots and ready servers: their base URLs, or FatalRequestError."""
        assert self._lease is not None
        self.due = False
        try:
            return await self._lease.acquire(on_death=self._died)
        except ServerFailed as error:
            raise _server_error(error) from None

    def _died(self, error: ServerFailed) -> None:
        if not self._releasing:  # a server we are stopping is meant to die
            self._on_death(_server_error(error))

    def release(self) -> Coroutine[Any, Any, None] | None:
        """Stopping the server, once every job is done; None if there is none or it is going."""
        if self._lease is None or self._releasing:
            return None
        self._releasing = True
        return self._lease.release()

    def hurry(self) -> None:
        """The run is aborted: the server's stop, under way or to come, kills it soon."""
        if self._lease is not None:
            self._lease.hurry()

    async def close(self) -> None:
        """Make sure the server is stopped (releasing again only waits for the first release)."""
        if self._lease is not None:
            await self._lease.release()
