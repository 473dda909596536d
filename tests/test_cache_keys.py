"""What the cache key covers: label, served model and sampling params do; URL and API key do not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

ONE_MODEL_REQUESTS = 160


def generate_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake: FakeServer, **options: Any
) -> int:
    """Generate with one model config against a shared store; returns requests sent."""
    before = fake.stats(arrivals=False)["requests"]
    name = options.pop("name", "alpha")
    config = write_config(
        tmp_path, models=[model(name, options.pop("base_url", fake.base_url), **options)]
    )
    code, out, err = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out + err
    return fake.stats(arrivals=False)["requests"] - before


@pytest.fixture
def warmed(tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert generate_once(tmp_path, capsys, fake, model="served-a") == ONE_MODEL_REQUESTS


@pytest.mark.usefixtures("warmed")
def test_same_config_hits_the_cache(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generate_once(tmp_path, capsys, fake, model="served-a") == 0


@pytest.mark.usefixtures("warmed")
@pytest.mark.parametrize(
    "change",
    [
        {"name": "alpha-2"},
        {"model": "served-b"},
        {"max_tokens": 512},
        {"seed": 7},
        {"extra_body": {"top_p": 0.5}},
    ],
    ids=["label", "model-string", "max-tokens", "seed", "extra-body"],
)
def test_changing_what_shapes_the_answer_misses_the_cache(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str], change: dict[str, Any]
) -> None:
    assert (
        generate_once(tmp_path, capsys, fake, **{"model": "served-a", **change})
        == ONE_MODEL_REQUESTS
    )


@pytest.mark.usefixtures("warmed")
def test_another_base_url_hits_the_cache(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    other_url = fake.base_url.replace("127.0.0.1", "localhost")
    assert generate_once(tmp_path, capsys, fake, model="served-a", base_url=other_url) == 0


@pytest.mark.usefixtures("warmed")
def test_another_api_key_hits_the_cache(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_KEY", "sk-rotated-key")
    assert generate_once(tmp_path, capsys, fake, model="served-a", api_key_env="FAKE_KEY") == 0


@pytest.mark.usefixtures("warmed")
def test_turning_on_streaming_hits_the_cache(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generate_once(tmp_path, capsys, fake, model="served-a", stream=True) == 0
