"""API keys come from the environment and go nowhere else: store, logs, exports, output."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.fakeserver import FakeServer
from tests.runconfig import model, mtbench, write_config

KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e"


def test_the_api_key_is_in_no_file_and_no_output(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MTBENCH_TEST_KEY", KEY)
    fake.configure(auth_key=KEY, fault_500=0.05, fault_reset=0.05, fault_malformed=0.05)
    models = [
        model("alpha", fake.base_url, api_key_env="MTBENCH_TEST_KEY"),
        model("beta", fake.base_url, api_key_env="MTBENCH_TEST_KEY", stream=True),
        # a model whose server rejects it: its error message is printed and stored
        model("rejected", fake.base_url, api_key_env="MTBENCH_TEST_KEY"),
    ]
    fake.configure(reject_models=["rejected"])
    judge = {"name": "judge-a", "base_url": fake.base_url, "api_key_env": "MTBENCH_TEST_KEY"}
    config = write_config(tmp_path, models=models, judge=judge)
    caplog.set_level(logging.DEBUG)
    outputs = []
    for argv in (
        ["-v", "plan", "-c", str(config)],
        ["-v", "run", "-c", str(config)],
        ["show", "--store", str(tmp_path / "store.sqlite")],
        ["show", "--store", str(tmp_path / "store.sqlite"), "--json"],
        ["export", "--store", str(tmp_path / "store.sqlite"), "--fastchat", str(tmp_path / "out")],
    ):
        code, out, err = mtbench(capsys, *argv)
        assert code in (0, 1), err
        outputs += [out, err]
    assert fake.stats(arrivals=False)["ok"] > 0  # the key did authenticate
    assert fake.stats(arrivals=False)["status"].get("401", 0) == 0

    produced = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(produced) >= 5  # config, store (+ WAL files), lock, exports
    for path in produced:
        if path.name == "run.toml":
            assert KEY not in path.read_text()  # only the variable's name is in the config
            continue
        assert KEY.encode() not in path.read_bytes(), path
    for text in [*outputs, caplog.text]:
        assert KEY not in text
