"""`mtbench data fetch` from a stand-in for GitHub; later runs then find the data by themselves."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine.datafetch import PINNED_FILES
from tests.fakeserver import FakeServer
from tests.paths import MTBENCH_DATA
from tests.runconfig import model, mtbench, write_config


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

    code, _, err = mtbench(capsys, "plan", "-c", str(config))
    assert code == 2
    assert "mtbench data fetch" in err

    code, out, _ = mtbench(capsys, "data", "fetch")
    assert code == 0
    assert f"{cache} ({len(PINNED_FILES)} fetched" in out
    for name in PINNED_FILES:
        assert (cache / name).read_bytes() == (MTBENCH_DATA / name).read_bytes()

    code, out, _ = mtbench(capsys, "plan", "-c", str(config))
    assert code == 0, out
    assert "alpha" in out and "160" in out
