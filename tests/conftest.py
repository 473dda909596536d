"""Shared fixtures: one fake server process per test session, reset to its defaults per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fakeserver import FakeServer


@pytest.fixture(scope="session")
def fake_session() -> Iterator[tuple[FakeServer, dict[str, Any]]]:
    with FakeServer() as server:
        yield server, server.current_options()


@pytest.fixture
def fake(fake_session: tuple[FakeServer, dict[str, Any]]) -> FakeServer:
    """The session's fake server with default options and zeroed stats."""
    server, defaults = fake_session
    server.configure(**defaults)
    server.reset()
    return server
