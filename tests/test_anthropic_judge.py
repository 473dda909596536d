"""An Anthropic judge over OpenAI-compatible models, end to end against the fake servers."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config
from tests.test_export import fastchat_pairwise, fastchat_single, read_jsonl


@pytest.mark.parametrize(("mode", "stream"), [("single", True), ("pairwise-all", False)])
def test_an_anthropic_judge_gives_the_numbers_fastchat_would_compute(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    stream: bool,
) -> None:
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", "sk-ant-test")
    fake.configure(
        auth_key="sk-ant-test",
        fault_429=0.05,
        fault_529=0.05,
        fault_429_retry_after=0.2,
        judge_no_verdict=0.05,
        seed=4,
    )
    models = [
        model(name, fake.base_url, api_key_env="ANTHROPIC_TEST_KEY") for name in ("alpha", "beta")
    ]
    judge = {
        "name": "claude-judge",
        "model": "claude-sonnet",
        "api": "anthropic",
        "base_url": fake.url,
        "api_key_env": "ANTHROPIC_TEST_KEY",
        "mode": mode,
        "stream": stream,
    }
    config = write_config(tmp_path, models=models, judge=judge)
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out
    stats = fake.stats()
    assert stats["faults"]["529"] > 0 and stats["faults"]["429"] > 0  # both were retried
    judge_models = {m for _, m, kind, *_ in stats["arrivals"] if kind == "judge"}
    assert judge_models == {"claude-sonnet"}

    store = str(tmp_path / "store.sqlite")
    out_dir = tmp_path / "fastchat"
    assert mtbench(capsys, "export", "--store", store, "--fastchat", str(out_dir))[0] == 0
    code, out, _ = mtbench(capsys, "show", "--store", store, "--mode", mode, "--json")
    (board,) = orjson.loads(out)["leaderboards"]
    assert board["judge"]["api"] == "anthropic" and board["judge"]["model"] == "claude-sonnet"
    if mode == "single":
        rows = read_jsonl(out_dir / "model_judgment" / "claude-judge_single.jsonl")
        expected = fastchat_single(rows)
        shown = {entry["model"]: entry["score"] for entry in board["models"]}
    else:
        rows = read_jsonl(out_dir / "model_judgment" / "claude-judge_pair.jsonl")
        expected = fastchat_pairwise(rows)
        shown = {entry["model"]: entry["win_rate_adjusted"] for entry in board["models"]}
    assert len(rows) == 160 * (2 if mode == "single" else 1)
    assert shown == pytest.approx(expected, abs=1e-12)
