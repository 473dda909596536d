"""`mtbench data fetch`: pinned FastChat files downloaded from a fake server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from engine.bench import datafetch
from engine.bench.data import load_bench
from engine.bench.datafetch import (
    FASTCHAT_COMMIT,
    PINNED_FILES,
    default_cache_dir,
    fetch_data,
    verify_data_dir,
)
from engine.errors import DataError
from tests.support.paths import MTBENCH_DATA

QUESTIONS = "mt_bench/question.jsonl"


@dataclass
class FakeDataServer:
    """Serves MTBENCH_DATA; `replaced` swaps a file's bytes, `statuses` queues error responses."""

    url: str = ""
    hits: list[str] = field(default_factory=list)
    replaced: dict[str, bytes] = field(default_factory=dict)
    statuses: dict[str, list[int]] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits.append(name)
        if self.statuses.get(name):
            return web.Response(status=self.statuses[name].pop(0))
        if name in self.replaced:
            return web.Response(body=self.replaced[name])
        path = MTBENCH_DATA / name
        if not path.is_file():
            return web.Response(status=404)
        return web.Response(body=path.read_bytes())


@asynccontextmanager
async def serving(server: FakeDataServer) -> AsyncIterator[FakeDataServer]:
    app = web.Application()
    app.router.add_get("/data/{name:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}/data"
    try:
        yield server
    finally:
        await runner.cleanup()


def fetch_from(server: FakeDataServer, dest: Path) -> datafetch.FetchReport:
    async def run() -> datafetch.FetchReport:
        async with serving(server):
            return await fetch_data(dest, base_url=server.url)

    return asyncio.run(run())


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datafetch, "_RETRY_DELAY", 0.0)


def test_fetch_writes_every_pinned_file_with_the_published_bytes(tmp_path: Path) -> None:
    report = fetch_from(FakeDataServer(), tmp_path)

    assert report.dest == tmp_path
    assert set(report.fetched) == set(PINNED_FILES)
    assert report.verified == ()
    for name in PINNED_FILES:
        assert (tmp_path / name).read_bytes() == (MTBENCH_DATA / name).read_bytes()
    assert verify_data_dir(tmp_path) == []


def test_second_fetch_downloads_nothing(tmp_path: Path) -> None:
    fetch_from(FakeDataServer(), tmp_path)
    server = FakeDataServer()

    report = fetch_from(server, tmp_path)

    assert server.hits == []
    assert report.fetched == ()
    assert set(report.verified) == set(PINNED_FILES)


def test_tampered_download_raises_sha256_error_and_leaves_no_file(tmp_path: Path) -> None:
    server = FakeDataServer(replaced={QUESTIONS: b'{"question_id": 81}\n'})

    with pytest.raises(DataError) as caught:
        fetch_from(server, tmp_path)

    message = str(caught.value)
    assert QUESTIONS in message and "sha256" in message and server.url in message
    assert PINNED_FILES[QUESTIONS] in message
    assert "\n" not in message
    assert not (tmp_path / QUESTIONS).exists()
    leftovers = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert leftovers == ["judge_prompts.jsonl"], "only the verified file, no temp files"


def test_wrong_file_already_in_dest_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "judge_prompts.jsonl").write_text("stale\n")

    report = fetch_from(FakeDataServer(), tmp_path)

    assert "judge_prompts.jsonl" in report.fetched
    assert verify_data_dir(tmp_path) == []


def test_missing_file_on_server_raises_error_naming_the_url(tmp_path: Path) -> None:
    server = FakeDataServer(statuses={QUESTIONS: [404]})

    with pytest.raises(DataError) as caught:
        fetch_from(server, tmp_path)

    message = str(caught.value)
    assert f"{server.url}/{QUESTIONS}" in message and "404" in message
    assert "MTBENCH_DATA_URL" in message and "--data" in message
    assert server.hits.count(QUESTIONS) == 1, "a 404 is not retried"


def test_server_errors_are_retried(tmp_path: Path) -> None:
    server = FakeDataServer(statuses={QUESTIONS: [503, 502]})

    report = fetch_from(server, tmp_path)

    assert QUESTIONS in report.fetched
    assert server.hits.count(QUESTIONS) == 3


def test_persistent_server_error_gives_up_with_data_error(tmp_path: Path) -> None:
    server = FakeDataServer(statuses={QUESTIONS: [500, 500, 500, 500]})

    with pytest.raises(DataError, match="HTTP 500"):
        fetch_from(server, tmp_path)


def test_unreachable_server_raises_data_error(tmp_path: Path) -> None:
    server = FakeDataServer()

    async def closed_url() -> str:
        async with serving(server):
            pass
        return server.url

    url = asyncio.run(closed_url())
    with pytest.raises(DataError) as caught:
        asyncio.run(fetch_data(tmp_path, base_url=url))
    assert url in str(caught.value) and "MTBENCH_DATA_URL" in str(caught.value)


def test_env_vars_choose_the_source_and_the_default_dest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeDataServer()
    monkeypatch.setenv("MTBENCH_CACHE_DIR", str(tmp_path / "cache"))

    async def run() -> datafetch.FetchReport:
        async with serving(server):
            monkeypatch.setenv("MTBENCH_DATA_URL", server.url + "/")
            return await fetch_data()

    report = asyncio.run(run())

    assert report.dest == tmp_path / "cache"
    assert verify_data_dir(tmp_path / "cache") == []
    assert set(server.hits) == set(PINNED_FILES)


def test_default_cache_dir_honours_mtbench_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("MTBENCH_CACHE_DIR", str(tmp_path / "mine"))

    assert default_cache_dir() == tmp_path / "mine"


def test_default_cache_dir_lives_under_xdg_cache_home_per_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MTBENCH_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    expected = tmp_path / "xdg" / "mtbench-engine" / "data" / FASTCHAT_COMMIT[:12]
    assert default_cache_dir() == expected


def test_default_cache_dir_falls_back_to_home_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MTBENCH_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))

    assert default_cache_dir().parent == tmp_path / ".cache" / "mtbench-engine" / "data"


def test_verify_data_dir_lists_missing_and_changed_files(tmp_path: Path) -> None:
    fetch_from(FakeDataServer(), tmp_path)
    (tmp_path / QUESTIONS).write_bytes(b"{}\n")
    (tmp_path / "judge_prompts.jsonl").unlink()

    assert sorted(verify_data_dir(tmp_path)) == sorted(["judge_prompts.jsonl", QUESTIONS])


def test_fetched_dir_loads_as_mt_bench_for_judging(tmp_path: Path) -> None:
    fetch_from(FakeDataServer(), tmp_path)

    bench = load_bench(tmp_path, "mt_bench", need_judging=True)

    assert len(bench.questions) == 80
    assert bench.judge_prompts and bench.references


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_mirror_sending_an_endless_file_is_cut_off_before_it_fills_memory(
    tmp_path: Path, declared: bool
) -> None:
    sent: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if declared:
            response.content_length = 2**40
        await response.prepare(request)
        chunk = b"x" * 2**20
        for _ in range(256):  # 256 MiB at most, should the client never stop reading
            await response.write(chunk)
            sent.append(len(chunk))
        return response

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/data/{name:.*}", endless)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        try:
            await fetch_data(tmp_path, base_url=f"http://{host}:{port}/data")
        finally:
            await runner.cleanup()

    with pytest.raises(DataError, match="over 4 MiB"):
        asyncio.run(run())
    assert sum(sent) < 64 * 2**20
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
