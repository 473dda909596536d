"""Shared fixtures: one fake server process per test session, reset to its defaults per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.slurm_cluster import SlurmCluster
from tests.support.slurm_cluster import start_cluster as start_slurm_cluster
from tests.support.slurm_cluster import stop_cluster as stop_slurm_cluster
from tests.support.slurm_cluster import unavailable as slurm_unavailable


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


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A real one-node Slurm cluster for the session (skipped without root or the packages)."""
    reason = slurm_unavailable()
    if reason is not None:
        pytest.skip(reason)
    cluster = start_slurm_cluster()
    try:
        yield cluster
    finally:
        stop_slurm_cluster(cluster)


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlurmCluster]:
    """The session's cluster, reachable by the engine's Slurm commands; no job left after."""
    for name, value in slurm_cluster.env.items():
        monkeypatch.setenv(name, value)
    yield slurm_cluster
    slurm_cluster.cancel_all()
