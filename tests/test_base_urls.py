"""Several base URLs for one model: load spread by outstanding requests, a dead replica avoided."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import mtbench, write_config


@pytest.fixture
def second_replica() -> Iterator[FakeServer]:
    with FakeServer(latency_median=0.02) as server:
        yield server


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_replicas_share_the_load(
    tmp_path: Path, fake: FakeServer, second_replica: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(latency_median=0.02)
    urls = [fake.base_url, second_replica.base_url]
    config = write_config(
        tmp_path, models=[{"name": "alpha", "base_urls": urls, "concurrency": 16}]
    )
    assert mtbench(capsys, "generate", "-c", str(config))[0] == 0
    first, second = fake.stats()["ok"], second_replica.stats()["ok"]
    assert first + second == 160
    assert 50 <= first <= 110


def test_a_replica_that_refuses_connections_is_avoided(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/v1"
    config = write_config(tmp_path, models=[{"name": "alpha", "base_urls": [dead, fake.base_url]}])
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out
    assert fake.stats()["ok"] == 160
