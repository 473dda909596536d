"""Reasoning keys at load: `reasoning` defaults from the model string, what reasoning and thinking
imply (no temperature, room for the answer under max_tokens), and a one-line refusal, exit 2 and
nothing created for every combination the API would refuse on each request. Plus the cache key:
requests without the new keys keep the exact key an engine before them computed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engine.chat import ChatRequest
from engine.config import load_config
from engine.reasoning import REASONING_MODEL_PATTERNS, is_reasoning_model
from tests.support.fakeserver import FakeServer
from tests.support.refusal import assert_refused
from tests.support.runconfig import model, write_config

JUDGE = {"name": "j", "base_url": "http://127.0.0.1:9/v1"}


@pytest.mark.parametrize(
    ("model_string", "reasoning"),
    [
        ("gpt-5", True),
        ("gpt-5.1-codex", True),
        ("o1", True),
        ("o3-mini", True),
        ("o4-mini-2025-04-16", True),
        ("openai/gpt-5-mini", True),  # a proxy's provider prefix
        ("gpt-4o", False),
        ("gpt-oss-20b", False),
        ("omni-moderation-latest", False),
        ("GPT-5", False),  # OpenAI's model ids are lower case; the match is exact
    ],
)
def test_reasoning_defaults_from_the_documented_model_patterns(
    model_string: str, reasoning: bool
) -> None:
    assert REASONING_MODEL_PATTERNS == ("o1*", "o3*", "o4*", "gpt-5*")
    assert is_reasoning_model(model_string) is reasoning


def load(tmp_path: Path, **judge: Any) -> Any:
    config = write_config(tmp_path, models=[model("m", "http://127.0.0.1:9/v1")], judge=judge)
    return load_config(config)


def test_a_reasoning_judge_sends_no_temperature_and_keeps_its_max_tokens(tmp_path: Path) -> None:
    judge = load(tmp_path, **JUDGE, model="gpt-5", reasoning_effort="high").judge
    assert (judge.reasoning, judge.reasoning_effort, judge.temperature) == (True, "high", None)
    assert not judge.sends_temperature and judge.max_tokens == 2048


def test_reasoning_false_overrides_the_default_and_keeps_the_judge_temperature(
    tmp_path: Path,
) -> None:
    judge = load(tmp_path, **JUDGE, model="o3-compatible", reasoning=False, temperature=0.2).judge
    assert (judge.reasoning, judge.temperature, judge.sends_temperature) == (False, 0.2, True)


def test_a_thinking_judge_gets_room_for_its_verdict_above_the_budget(tmp_path: Path) -> None:
    judge = load(tmp_path, **JUDGE, api="anthropic", thinking=4096).judge
    assert (judge.thinking, judge.max_tokens, judge.temperature) == (4096, 4096 + 2048, None)
    explicit = load(tmp_path, **JUDGE, api="anthropic", thinking=4096, max_tokens=5000).judge
    assert explicit.max_tokens == 5000


def test_a_thinking_model_gets_its_default_answer_length_above_the_budget(tmp_path: Path) -> None:
    settings = {"api": "anthropic", "thinking": 2048, "keep_thinking": True}
    config = write_config(tmp_path, models=[model("claude", "http://127.0.0.1:9/v1", **settings)])
    (claude,) = load_config(config).models
    assert (claude.max_tokens, claude.temperature, claude.keep_thinking) == (
        2048 + 1024,
        None,
        True,
    )


@pytest.mark.parametrize(
    ("settings", "needles"),
    [
        ({"model": "gpt-5", "temperature": 0.7}, ["'temperature'", "take no temperature"]),
        ({"model": "o3", "extra_body": {"top_p": 0.9}}, ["'extra_body'", "top_p"]),
        ({"reasoning_effort": "extreme"}, ["'reasoning_effort'", "none, minimal, low, medium"]),
        ({"extra_body": {"reasoning_effort": "high"}}, ["'extra_body'", "set by the engine"]),
        ({"extra_body": {"max_completion_tokens": 9}}, ["'extra_body'", "set by the engine"]),
        ({"thinking": 2048}, ["'thinking'", 'api = "anthropic"']),
        ({"api": "anthropic", "thinking": 512}, ["'thinking'", "1024", "raise thinking"]),
        ({"api": "anthropic", "thinking": 4096, "max_tokens": 4096},
         ["'max_tokens'", "above thinking = 4096", "raise max_tokens"]),
        ({"api": "anthropic", "thinking": 2048, "temperature": 1},
         ["'temperature'", "extended thinking"]),
        ({"api": "anthropic", "thinking": 2048, "extra_body": {"top_k": 5}}, ["top_k"]),
        ({"api": "anthropic", "reasoning": True}, ["'reasoning'", "thinking = BUDGET"]),
        ({"api": "anthropic", "reasoning_effort": "low"}, ["'reasoning_effort'", "thinking"]),
        ({"keep_thinking": "yes"}, ["'keep_thinking'", "true or false"]),
    ],
)  # fmt: skip
def test_what_a_reasoning_api_would_refuse_is_refused_at_load(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    settings: dict[str, Any],
    needles: list[str],
) -> None:
    config = write_config(tmp_path, models=[model("alpha", fake.base_url, **settings)])
    argv = ["generate", "-c", str(config)]
    line = assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, str(config), *needles)
    assert "[[model]] #1 key" in line


def test_a_reasoning_judge_with_a_temperature_is_refused_naming_the_judge_table(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    judge = {"name": "grader", "model": "o4-mini", "base_url": fake.base_url, "temperature": 0}
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], judge=judge)
    argv = ["run", "-c", str(config)]
    line = assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, "'temperature'")
    assert "[judge] key 'temperature' = 0" in line and "reasoning = false" in line


def test_keep_thinking_is_a_key_of_models_only(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    judge = {"name": "grader", "base_url": fake.base_url, "keep_thinking": True}
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], judge=judge)
    argv = ["run", "-c", str(config)]
    assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, "'keep_thinking'", "unknown key")


def test_requests_without_reasoning_keys_keep_the_keys_they_always_had() -> None:
    # Keys computed by the engine before reasoning keys existed (commit 7c17dbb).
    conversation = (
        ("system", "Be brief."),
        ("user", "hi"),
        ("assistant", "<think>x</think>Hello"),
        ("user", "more"),
    )
    generated = ChatRequest(
        "openai",
        "alpha",
        "served-a",
        conversation,
        1024,
        0.7,
        sample=1,
        seed=7,
        extra_body=b'{"grammar":"root ::= x"}',
    )  # fmt: skip
    judged = ChatRequest("anthropic", "judge", "claude", (("user", "hi"),), 2048, 0.0)
    assert generated.cache_key() == (
        "380363692abb26bf5046b466219c03963c736bf6e0a0a03e40c4f60b039d6975"
    )
    assert judged.cache_key() == "6f9fd6c2a6de50e91ac0d019f9fbcf1dde4b9678faf18641147cf073842e44f6"


def test_a_reasoning_request_is_keyed_by_its_settings_and_carries_no_temperature() -> None:
    base = ChatRequest("openai", "j", "gpt-5", (("user", "hi"),), 2048, None, reasoning=True)
    params = base.canonical()["params"]
    assert params == {"max_tokens": 2048, "reasoning": True}
    high = ChatRequest(
        "openai", "j", "gpt-5", (("user", "hi"),), 2048, None, reasoning=True,
        reasoning_effort="high",
    )  # fmt: skip
    thinking = ChatRequest("anthropic", "j", "c", (("user", "hi"),), 4096, None, thinking=2048)
    assert high.canonical()["params"]["reasoning_effort"] == "high"
    assert thinking.canonical()["params"] == {"max_tokens": 4096, "thinking": 2048}
    assert len({base.cache_key(), high.cache_key(), thinking.cache_key()}) == 3


def readme_reasoning_configs() -> list[str]:
    """The TOML blocks of the README's "Reasoning models" section."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("\n## Reasoning models\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```toml\n(.*?)```", section, re.S)


def test_the_readme_reasoning_configs_load_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "readme-openai-key-Q3v9Lm")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "readme-anthropic-key-W7p2Hx")
    (tmp_path / "ckpts" / "qwen3-sft" / "step-100").mkdir(parents=True)
    gpt5, claude, vllm = readme_reasoning_configs()
    path = tmp_path / "run.toml"
    loaded = []
    for block in (gpt5, claude, vllm):
        path.write_text(f'store = "store.sqlite"\n{block}')
        loaded.append(load_config(path))
    judge = loaded[0].judge
    assert (judge.reasoning, judge.reasoning_effort, judge.temperature) == (True, "high", None)
    claude_judge = loaded[1].judge
    assert (claude_judge.thinking, claude_judge.max_tokens) == (4096, 4096 + 2048)
    served, swept = loaded[2].models
    assert (served.reasoning, served.keep_thinking, served.max_tokens) == (False, False, 8192)
    assert swept.name == "step-100" and "--reasoning-parser qwen3" in (swept.serve or "")
