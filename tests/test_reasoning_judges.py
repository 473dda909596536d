"""Reasoning judges grade a run: a GPT-5-class judge over OpenAI's API and Claude with extended
thinking, against the fake server (which refuses what the real APIs refuse), over real sockets.

What the judge was sent is read where it arrived (a recording proxy in front of the fake); what
was stored, billed and shown is read from the store, the run's `--json` summary and `show`.
A judge's thoughts toy with a verdict it does not give: the stored ratings must be the ones in
its answer.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.bench.judge import parse_rating
from tests.support.fakeserver import FakeServer
from tests.support.recording_proxy import RecordingProxy
from tests.support.runconfig import model, mtbench, write_config

QUESTIONS = [81, 111]  # writing and math (a reference-guided prompt): 4 single judgments a model
JUDGED_TURNS = 4
PRICE_IN, PRICE_OUT = 2.0, 10.0
OPENING = "Let me think step by step about"  # how the fake's thoughts begin


@pytest.fixture
def proxy(fake: FakeServer) -> Iterator[RecordingProxy]:
    with RecordingProxy(fake.url) as recording:
        yield recording


def rows(store: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store) as db:
        return db.execute(sql, params).fetchall()


def judge_requests(fake: FakeServer) -> int:
    return sum(1 for _, _, kind, *_ in fake.stats()["arrivals"] if kind == "judge")


def gpt5_judge(base_url: str, **options: Any) -> dict[str, Any]:
    return {
        "name": "gpt5-judge",
        "model": "gpt-5",
        "base_url": base_url,
        "reasoning_effort": "high",
        "price_in": PRICE_IN,
        "price_out": PRICE_OUT,
        **options,
    }


def run_json(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, Any]:
    code, out, err = mtbench(capsys, "run", "-c", str(config), "--json")
    assert code == 0, out + err
    summary: dict[str, Any] = orjson.loads(out)
    return summary


def test_a_gpt5_judge_grades_a_run_with_max_completion_tokens_and_its_effort(
    tmp_path: Path, fake: FakeServer, proxy: RecordingProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judge=gpt5_judge(proxy.base_url),
        questions=QUESTIONS,
    )
    summary = run_json(capsys, config)

    sent = proxy.bodies("/v1/chat/completions")
    assert len(sent) == JUDGED_TURNS
    for body in sent:  # the fake would have answered 400 to max_tokens or a temperature
        assert body["max_completion_tokens"] == 2048 and body["reasoning_effort"] == "high"
        assert "max_tokens" not in body and "temperature" not in body and "top_p" not in body
    assert set(fake.stats()["status"]) == {"200"}

    store = tmp_path / "store.sqlite"
    judgments = rows(store, "SELECT parse_status, score, judge_settings FROM judgments")
    assert len(judgments) == JUDGED_TURNS
    for status, score, settings in judgments:
        assert status == "ok" and 1 <= score <= 10
        assert orjson.loads(settings) == {"reasoning": True, "reasoning_effort": "high"}
    usage = rows(
        store,
        "SELECT prompt_tokens, completion_tokens, reasoning_tokens, cost, request FROM responses "
        "WHERE label = 'gpt5-judge'",
    )
    for prompt, completion, reasoning, cost, request in usage:
        # "high" effort thinks 8-15 x 128 tokens on the fake; they are billed as output tokens
        assert 8 * 128 <= reasoning < completion
        assert cost == pytest.approx((prompt * PRICE_IN + completion * PRICE_OUT) / 1e6)
        assert "temperature" not in orjson.loads(request)["params"]
    tally = summary["judges"]["gpt5-judge"]
    assert tally["reasoning_tokens"] == sum(row[2] for row in usage)
    assert tally["completion_tokens"] == sum(row[1] for row in usage)
    assert tally["cost"] == pytest.approx(sum(row[3] for row in usage))
    assert summary["total"]["reasoning_tokens"] == tally["reasoning_tokens"]
    assert summary["models"]["alpha"]["reasoning_tokens"] == 0

    before = fake.stats(arrivals=False)["requests"]
    again = run_json(capsys, config)
    assert again["total"]["sent"] == 0 and again["total"]["cached"] == 2 * JUDGED_TURNS
    assert fake.stats(arrivals=False)["requests"] == before


def test_show_and_the_run_summary_name_the_judge_settings_and_reasoning_tokens(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judge=gpt5_judge(fake.base_url),
        questions=QUESTIONS,
    )
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out
    assert "of which reasoning" in out.splitlines()[0]
    store = tmp_path / "store.sqlite"
    ((judge_reasoning,),) = rows(
        store, "SELECT SUM(reasoning_tokens) FROM responses WHERE label = 'gpt5-judge'"
    )

    code, out, _ = mtbench(capsys, "show", "--store", str(store))
    assert code == 0, out
    title = out.splitlines()[0]
    assert "Judge gpt5-judge (model gpt-5, api openai, reasoning=true, reasoning_effort=high," in (
        title
    )
    assert f"{judge_reasoning} reasoning tokens" in title

    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    (board,) = orjson.loads(out)["leaderboards"]
    judge = board["judge"]
    assert judge["settings"] == [{"reasoning": True, "reasoning_effort": "high"}]
    assert judge["reasoning_tokens"] == judge_reasoning
    assert board["models"][0]["reasoning_tokens"] is None  # alpha's server reports none


def test_a_new_effort_under_the_same_judge_name_rejudges_and_replaces_its_rows(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    models = [model("alpha", fake.base_url)]
    store = tmp_path / "store.sqlite"
    for effort, sent in (("high", JUDGED_TURNS), ("low", JUDGED_TURNS), ("low", 0)):
        judge = gpt5_judge(fake.base_url, reasoning_effort=effort)
        config = write_config(tmp_path, models=models, judge=judge, questions=QUESTIONS)
        before = judge_requests(fake)
        summary = run_json(capsys, config)
        assert judge_requests(fake) - before == sent
        assert summary["judges"]["gpt5-judge"]["done"] == sent
        settings = {row[0] for row in rows(store, "SELECT judge_settings FROM judgments")}
        assert settings == {f'{{"reasoning":true,"reasoning_effort":"{effort}"}}'}
        assert len(rows(store, "SELECT 1 FROM judgments")) == JUDGED_TURNS


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_thinking_claude_judge_rates_from_its_text_blocks_only(
    tmp_path: Path,
    fake: FakeServer,
    proxy: RecordingProxy,
    capsys: pytest.CaptureFixture[str],
    stream: bool,
) -> None:
    judge = {
        "name": "claude-judge",
        "model": "claude-sonnet",
        "api": "anthropic",
        "base_url": proxy.url,
        "thinking": 2048,
        "stream": stream,
    }
    config = write_config(
        tmp_path, models=[model("alpha", fake.base_url)], judge=judge, questions=QUESTIONS
    )
    run_json(capsys, config)

    sent = proxy.bodies("/v1/messages")
    assert len(sent) == JUDGED_TURNS
    for body in sent:
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert body["max_tokens"] == 2048 + 2048 and "temperature" not in body
    judgments = rows(
        tmp_path / "store.sqlite",
        "SELECT j.score, j.parse_status, j.judge_settings, r.text, r.reasoning "
        "FROM judgments j JOIN responses r ON r.key = j.response_key",
    )
    assert len(judgments) == JUDGED_TURNS
    for score, status, settings, text, thinking in judgments:
        assert orjson.loads(settings) == {"thinking": 2048}
        assert thinking.startswith(OPENING) and OPENING not in text
        decoy = re.search(r"maybe \[\[(\d+)\]\] fits", thinking)
        assert decoy is not None, thinking  # its thoughts toy with another verdict...
        assert status == "ok" and score == parse_rating(text).score  # ...its text gives this one
        assert score != float(decoy.group(1))


def plan_json(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, Any]:
    code, out, err = mtbench(capsys, "plan", "-c", str(config), "--json")
    assert code == 0, out + err
    plan: dict[str, Any] = orjson.loads(out)
    return plan


def test_plan_prices_a_reasoning_judge_at_its_cap_then_at_its_earlier_mean(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    models = [model("alpha", fake.base_url)]
    config = write_config(
        tmp_path, models=models, judge=gpt5_judge(fake.base_url), questions=QUESTIONS
    )
    fresh = plan_json(capsys, config)["judges"]["gpt5-judge"]
    # Nothing known yet: every request is assumed to use its whole max_tokens, thinking included.
    assert fresh["to_send"] == JUDGED_TURNS
    assert fresh["completion_tokens"] == JUDGED_TURNS * 2048
    assert fresh["reasoning_mean"] is None
    code, out, _ = mtbench(capsys, "plan", "-c", str(config))
    assert code == 0 and "mean reasoning" not in out

    run_json(capsys, config)
    ((completion, reasoning),) = rows(
        tmp_path / "store.sqlite",
        "SELECT AVG(completion_tokens), AVG(reasoning_tokens) FROM responses "
        "WHERE label = 'gpt5-judge'",
    )
    config = write_config(
        tmp_path, models=models, judge=gpt5_judge(fake.base_url, samples=2), questions=QUESTIONS
    )
    again = plan_json(capsys, config)["judges"]["gpt5-judge"]
    assert (again["to_send"], again["cached"]) == (JUDGED_TURNS, JUDGED_TURNS)
    assert again["completion_tokens"] == JUDGED_TURNS * round(completion)
    assert again["reasoning_mean"] == pytest.approx(reasoning)
    assert again["reasoning_tokens"] == JUDGED_TURNS * round(reasoning)
    code, out, _ = mtbench(capsys, "plan", "-c", str(config))
    header, *lines = out.splitlines()
    assert "mean reasoning" in header
    judge_row = next(line for line in lines if line.startswith("gpt5-judge"))
    assert str(round(reasoning)) in judge_row.split()
