"""A local server's port: drawn below the kernel's ephemeral range, and a start lost because
another program took the port first is started again on another port, not blamed on the model.

Real processes and real sockets on 127.0.0.1: the test holds the port the server is given.
"""

from __future__ import annotations

import asyncio
import random
import shlex
import socket
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from engine.errors import ServerFailed
from engine.serving.ports import PORT_FLOOR, ephemeral_start, free_port
from engine.serving.serve import ManagedServer, ServerSpec
from tests.support.llamacpp import smollm2_spec
from tests.support.runconfig import mtbench, write_config
from tests.support.served_fake import COMMAND as SERVED_FAKE

PYTHON = shlex.quote(sys.executable)
HTTP_SERVER = f"{PYTHON} -m http.server {{port}} --bind 127.0.0.1"


@contextmanager
def held_port(*, listen: bool = False) -> Iterator[int]:
    """A port of 127.0.0.1 this test holds: bound only (as by a program about to listen on it, so
    connecting to it is refused), or listening."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port()))
        if listen:
            holder.listen()
        yield holder.getsockname()[1]


def first_then_free(port: int, picks: list[int]) -> Callable[[str], int]:
    """A port picker that hands out `port` first, then free ports; it records what it handed out."""

    def pick(host: str) -> int:
        picks.append(port if not picks else free_port(host))
        return picks[-1]

    return pick


async def answers(base_url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(base_url) as response:
        return response.status


def test_ports_are_drawn_below_the_ephemeral_range_and_a_bound_one_is_passed_over() -> None:
    ceiling = ephemeral_start()
    first = random.Random(7).randrange(PORT_FLOOR, ceiling)
    with socket.socket() as holder:
        try:
            holder.bind(("127.0.0.1", first))
        except OSError:
            pytest.skip(f"port {first} is in use on this machine")
        port = free_port(draw=random.Random(7))
    assert port != first
    assert PORT_FLOOR <= port < ceiling
    drawn = {free_port() for _ in range(20)}
    assert all(PORT_FLOOR <= p < ceiling for p in drawn) and len(drawn) > 1


def test_a_server_whose_port_is_taken_before_it_binds_is_started_again_on_another(
    tmp_path: Path,
) -> None:
    log = tmp_path / "server.log"
    picks: list[int] = []

    async def scenario(taken: int) -> int:
        spec = ServerSpec(HTTP_SERVER, ready_path="/", ready_timeout=30, log_file=log)
        server = ManagedServer(spec, pick_port=first_then_free(taken, picks))
        base_url = await server.start()
        try:
            return await answers(base_url.removesuffix("/v1") + "/")
        finally:
            await server.stop()

    with held_port() as taken:
        assert asyncio.run(scenario(taken)) == 200
    assert len(picks) == 2 and picks[0] == taken and picks[1] != taken
    assert "Address already in use" in log.read_text()  # the first attempt's own words


def test_llama_cpp_losing_its_port_is_started_again_on_another(tmp_path: Path) -> None:
    # llama.cpp's server words it its own way: "couldn't bind HTTP server socket".
    log = tmp_path / "server.log"
    picks: list[int] = []

    async def scenario(taken: int) -> int:
        server = ManagedServer(smollm2_spec(log_file=log), pick_port=first_then_free(taken, picks))
        base_url = await server.start()
        try:
            return await answers(base_url + "/models")
        finally:
            await server.stop()

    with held_port() as taken:
        assert asyncio.run(scenario(taken)) == 200
    assert len(picks) == 2 and picks[0] == taken and picks[1] != taken
    assert (
        f"couldn't bind HTTP server socket, hostname: 127.0.0.1, port: {taken}" in log.read_text()
    )


def test_a_picked_port_that_has_a_listener_is_passed_over_before_starting_the_server() -> None:
    picks: list[int] = []

    async def scenario(taken: int) -> ManagedServer:
        spec = ServerSpec(HTTP_SERVER, ready_path="/", ready_timeout=30)
        server = ManagedServer(spec, pick_port=first_then_free(taken, picks))
        await server.start()
        await server.stop()
        return server

    with held_port(listen=True) as taken:
        server = asyncio.run(scenario(taken))
    assert len(picks) == 2 and server.port == picks[1] != taken


def test_a_server_that_keeps_losing_its_port_fails_after_three_attempts(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    command = (
        f"sh -c 'echo start >> {shlex.quote(str(starts))}; "
        "echo OSError: [Errno 98] Address already in use; exit 1'"
    )
    with pytest.raises(ServerFailed, match="Address already in use") as failure:
        asyncio.run(ManagedServer(ServerSpec(command, ready_timeout=30)).start())
    assert starts.read_text().count("start") == 3
    assert "exited with code 1 before ready" in str(failure.value)


def test_a_server_that_fails_for_another_reason_is_started_once(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    command = f"sh -c 'echo start >> {shlex.quote(str(starts))}; echo bad magic number; exit 3'"
    with pytest.raises(ServerFailed, match="bad magic number"):
        asyncio.run(ManagedServer(ServerSpec(command, ready_timeout=30)).start())
    assert starts.read_text().count("start") == 1


def test_a_port_the_user_chose_is_not_swapped_for_another_when_taken() -> None:
    picks: list[int] = []
    with held_port() as taken:
        spec = ServerSpec(HTTP_SERVER, port=taken, ready_path="/", ready_timeout=30)
        server = ManagedServer(spec, pick_port=first_then_free(taken, picks))
        with pytest.raises(ServerFailed, match="Address already in use"):
            asyncio.run(server.start())
    assert picks == [] and server.port == taken


def test_a_checkpoint_whose_first_start_lost_its_port_is_served_and_not_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first start of the server binds a port this test holds, as if another program had
    # taken the engine's pick; every later start binds the port the engine gave it.
    events, first = tmp_path / "events.jsonl", tmp_path / "first-start-done"
    script = tmp_path / "serve.sh"
    with held_port() as taken:
        script.write_text(
            f'port="$1"; if [ ! -e {shlex.quote(str(first))} ]; then '
            f"touch {shlex.quote(str(first))}; port={taken}; fi\n"
            f'exec {SERVED_FAKE} {shlex.quote(str(events))} step-1 --port "$port" '
            "--latency-median 0.005\n"
        )
        model = {"name": "step-1", "serve": f"sh {shlex.quote(str(script))} {{port}}"}
        config = write_config(tmp_path, models=[model | {"ready_timeout": 30}], questions=[81])
        code, out, err = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out + err
    logs = list((tmp_path / "servers").glob("*.log"))
    assert len(logs) == 1 and "address already in use" in logs[0].read_text()
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == 0
