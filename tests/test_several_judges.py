"""Several judges in one run (`[[judge]]` tables): each judge its own endpoint and tally, all of
them judging while generation goes on, every request paid once, and a judge failing alone.

The models answer on the session's fake server; the judges sit on fake servers of their own (two
OpenAI-compatible judges and a later fourth on one, an Anthropic judge on another, every judge a
model name of its own), so what each judge was sent is counted where it arrived.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

QUESTIONS = [81, 111]  # writing and math (reference-guided): two judged turns each
MODELS = ("alpha", "beta")
SINGLE_JUDGMENTS = len(MODELS) * len(QUESTIONS) * 2  # models x questions x turns
PAIR_GAMES = len(QUESTIONS) * 2 * 2  # one pair x questions x turns x two orders
JUDGE_NAMES = ("gpt-judge", "open-judge", "claude-judge")


@pytest.fixture(scope="module")
def judge_servers() -> Iterator[tuple[FakeServer, FakeServer]]:
    with FakeServer() as openai_judges, FakeServer() as anthropic_judge:
        yield openai_judges, anthropic_judge


@pytest.fixture
def judges_fake(
    judge_servers: tuple[FakeServer, FakeServer],
) -> tuple[FakeServer, FakeServer]:
    """The judges' servers, zeroed, replying noisily (a judge's grade varies like GPT-4's)."""
    for server in judge_servers:
        server.reset()
        server.configure(judge_noise=True, fault_500=0.0)
    return judge_servers


def three_judges(openai_judges: FakeServer, anthropic_judge: FakeServer) -> list[dict[str, Any]]:
    return [
        {"name": "gpt-judge", "model": "judge-a", "base_url": openai_judges.base_url}
        | {"price_in": 2.5, "price_out": 10.0},
        {"name": "open-judge", "model": "judge-b", "base_url": openai_judges.base_url}
        | {"samples": 2},
        {"name": "claude-judge", "model": "claude-judge", "api": "anthropic"}
        | {"base_url": anthropic_judge.url, "mode": "pairwise-all"},
    ]


def fourth_judge(openai_judges: FakeServer) -> dict[str, Any]:
    return {"name": "late-judge", "model": "judge-d", "base_url": openai_judges.base_url}


def config_with(tmp_path: Path, fake: FakeServer, judges: list[dict[str, Any]]) -> Path:
    models = [model(name, fake.base_url) for name in MODELS]
    return write_config(tmp_path, models=models, judges=judges, questions=QUESTIONS)


def sent(server: FakeServer) -> dict[tuple[str, str], int]:
    """(served model, kind) -> requests that arrived, since the last reset."""
    counts: dict[tuple[str, str], int] = {}
    for _, served, kind, *_ in server.stats()["arrivals"]:
        counts[(served, kind)] = counts.get((served, kind), 0) + 1
    return counts


def judgments_by_judge(store: Path) -> dict[str, int]:
    with sqlite3.connect(store) as db:
        found = db.execute("SELECT judge, COUNT(*) FROM judgments GROUP BY judge").fetchall()
    return dict(found)


def summary(out: str) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(out)
    return parsed


def reset(*servers: FakeServer) -> None:
    for server in servers:
        server.reset()


def test_each_judge_is_sent_one_request_per_judgment_and_sample_and_a_rerun_sends_nothing(
    tmp_path: Path,
    fake: FakeServer,
    judges_fake: tuple[FakeServer, FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    openai_judges, anthropic_judge = judges_fake
    config = config_with(tmp_path, fake, three_judges(*judges_fake))
    code, out, err = mtbench(capsys, "run", "-c", str(config), "--json", "--quiet")
    assert code == 0, err
    assert sent(openai_judges) == {
        ("judge-a", "judge"): SINGLE_JUDGMENTS,
        ("judge-b", "judge"): 2 * SINGLE_JUDGMENTS,  # samples = 2
    }
    assert sent(anthropic_judge) == {("claude-judge", "judge"): PAIR_GAMES}
    assert {kind for _, kind in sent(fake)} == {"generation"}
    judges = summary(out)["judges"]
    assert {name: counts["done"] for name, counts in judges.items()} == {
        "gpt-judge": SINGLE_JUDGMENTS,
        "open-judge": 2 * SINGLE_JUDGMENTS,
        "claude-judge": PAIR_GAMES,
    }
    assert judges["gpt-judge"]["cost"] > 0 and judges["open-judge"]["cost"] is None
    assert judgments_by_judge(tmp_path / "store.sqlite") == {
        "gpt-judge": SINGLE_JUDGMENTS,
        "open-judge": 2 * SINGLE_JUDGMENTS,
        "claude-judge": PAIR_GAMES,
    }

    reset(fake, *judges_fake)
    code, out, err = mtbench(capsys, "run", "-c", str(config), "--json", "--quiet")
    assert code == 0, err
    assert sent(fake) == sent(openai_judges) == sent(anthropic_judge) == {}
    assert summary(out)["total"]["sent"] == 0


def test_a_judge_added_later_pays_only_for_its_own_judgments(
    tmp_path: Path,
    fake: FakeServer,
    judges_fake: tuple[FakeServer, FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    openai_judges, anthropic_judge = judges_fake
    judges = three_judges(*judges_fake)
    assert mtbench(capsys, "run", "-c", str(config_with(tmp_path, fake, judges)))[0] == 0
    reset(fake, *judges_fake)
    config = config_with(tmp_path, fake, [*judges, fourth_judge(openai_judges)])
    code, out, err = mtbench(capsys, "run", "-c", str(config), "--json", "--quiet")
    assert code == 0, err
    assert sent(openai_judges) == {("judge-d", "judge"): SINGLE_JUDGMENTS}
    assert sent(fake) == sent(anthropic_judge) == {}
    assert summary(out)["judges"]["late-judge"]["done"] == SINGLE_JUDGMENTS
    assert summary(out)["total"]["sent"] == SINGLE_JUDGMENTS


def test_judge_with_a_judge_name_sends_only_that_judges_requests(
    tmp_path: Path,
    fake: FakeServer,
    judges_fake: tuple[FakeServer, FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    openai_judges, anthropic_judge = judges_fake
    config = config_with(tmp_path, fake, three_judges(*judges_fake))
    assert mtbench(capsys, "generate", "-c", str(config))[0] == 0
    reset(fake)
    code, out, err = mtbench(
        capsys, "judge", "-c", str(config), "--judge", "open-judge", "--json", "--quiet"
    )
    assert code == 0, err
    assert sent(openai_judges) == {("judge-b", "judge"): 2 * SINGLE_JUDGMENTS}
    assert sent(fake) == sent(anthropic_judge) == {}
    assert list(summary(out)["judges"]) == ["open-judge"]
    assert judgments_by_judge(tmp_path / "store.sqlite") == {"open-judge": 2 * SINGLE_JUDGMENTS}

    reset(openai_judges)
    code, out, err = mtbench(capsys, "judge", "-c", str(config), "--json", "--quiet")
    assert code == 0, err
    assert sent(openai_judges) == {("judge-a", "judge"): SINGLE_JUDGMENTS}
    assert sent(anthropic_judge) == {("claude-judge", "judge"): PAIR_GAMES}
    assert summary(out)["judges"]["open-judge"]["cached"] == 2 * SINGLE_JUDGMENTS


def test_an_unknown_judge_name_is_one_line_listing_the_configs_judges_and_nothing_is_sent(
    tmp_path: Path,
    fake: FakeServer,
    judges_fake: tuple[FakeServer, FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = config_with(tmp_path, fake, three_judges(*judges_fake))
    code, out, err = mtbench(capsys, "judge", "-c", str(config), "--judge", "gpt-4")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"mtbench: error: {config}: no judge named 'gpt-4'; the config's judges: "
        "'gpt-judge', 'open-judge', 'claude-judge'"
    ]
    assert list(tmp_path.iterdir()) == [config]
    assert sent(fake) == sent(judges_fake[0]) == sent(judges_fake[1]) == {}


def closed_port_url() -> str:
    """A loopback URL nothing listens on: a judge whose server is down."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize("failure", ["500s", "down"])
def test_a_failing_judge_fails_only_its_own_judgments_and_the_others_finish(
    tmp_path: Path,
    fake: FakeServer,
    judges_fake: tuple[FakeServer, FakeServer],
    capsys: pytest.CaptureFixture[str],
    failure: str,
) -> None:
    anthropic_judge = judges_fake[1]
    judges = three_judges(*judges_fake)
    if failure == "500s":
        anthropic_judge.configure(fault_500=1.0)
    else:
        judges[2] |= {"base_url": closed_port_url(), "api": "openai"}
    judges[2] |= {"max_attempts": 2}
    config = config_with(tmp_path, fake, judges)
    code, out, err = mtbench(capsys, "run", "-c", str(config), "--json", "--quiet")
    assert code == 1, err
    result = summary(out)
    assert result["judges"]["claude-judge"]["failed"] == PAIR_GAMES
    assert result["judges"]["gpt-judge"]["failed"] == result["judges"]["open-judge"]["failed"] == 0
    assert judgments_by_judge(tmp_path / "store.sqlite") == {
        "gpt-judge": SINGLE_JUDGMENTS,
        "open-judge": 2 * SINGLE_JUDGMENTS,
    }
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        failed = db.execute("SELECT job FROM failures").fetchall()
    assert len(failed) == PAIR_GAMES
    assert all(job.startswith("judge claude-judge pair ") for (job,) in failed)


def test_every_judge_judges_while_generation_goes_on(
    tmp_path: Path,
    fake: FakeServer,
    judges_fake: tuple[FakeServer, FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.configure(latency_median=0.15)  # generation is slow, and one request at a time
    models = [model(name, fake.base_url, concurrency=1) for name in MODELS]
    judges = three_judges(*judges_fake)
    config = write_config(tmp_path, models=models, judges=judges, questions=QUESTIONS)
    assert mtbench(capsys, "run", "-c", str(config), "--quiet")[0] == 0
    last_answer = max(when for when, *_ in fake.stats()["arrivals"])
    first_judged: dict[str, float] = {}
    for server in judges_fake:
        for when, served, *_ in server.stats()["arrivals"]:
            first_judged[served] = min(when, first_judged.get(served, when))
    assert set(first_judged) == {"judge-a", "judge-b", "claude-judge"}
    assert all(when < last_answer for when in first_judged.values()), first_judged


def test_plan_lists_every_judge_with_what_it_would_send(
    tmp_path: Path,
    fake: FakeServer,
    judges_fake: tuple[FakeServer, FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = config_with(tmp_path, fake, three_judges(*judges_fake))
    code, out, _ = mtbench(capsys, "plan", "-c", str(config))
    assert code == 0
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines()[1:6]}
    assert rows == {
        "alpha": ["model", "4", "4"],
        "beta": ["model", "4", "4"],
        "claude-judge": ["judge", str(PAIR_GAMES), str(PAIR_GAMES)],
        "gpt-judge": ["judge", str(SINGLE_JUDGMENTS), str(SINGLE_JUDGMENTS)],
        "open-judge": ["judge", str(2 * SINGLE_JUDGMENTS), str(2 * SINGLE_JUDGMENTS)],
    }
    code, out, _ = mtbench(capsys, "plan", "-c", str(config), "--judge", "gpt-judge", "--json")
    assert code == 0 and list(summary(out)["judges"]) == ["gpt-judge"]
    assert not (tmp_path / "store.sqlite").exists()
    assert sent(fake) == sent(judges_fake[0]) == sent(judges_fake[1]) == {}


def test_progress_shows_each_judge_under_judging_with_its_failures_and_cost(
    tmp_path: Path,
    fake: FakeServer,
    judges_fake: tuple[FakeServer, FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    judges = three_judges(*judges_fake)
    judges[2] |= {"base_url": closed_port_url(), "api": "openai", "max_attempts": 1}
    config = config_with(tmp_path, fake, judges)
    code, _, err = mtbench(capsys, "run", "-c", str(config), "--json", "--progress", "json")
    assert code == 1
    ticks = [orjson.loads(line)["progress"] for line in err.splitlines() if '"progress"' in line]
    last = {(s["name"], s["role"]): s for s in ticks[-1]}
    assert {name for name, role in last if role == "judge"} == set(JUDGE_NAMES)
    assert all(last[(name, "judge")]["phase"] == "judging" for name in JUDGE_NAMES)
    finished = {name: last[(name, "judge")]["finished"] for name in JUDGE_NAMES}
    assert finished == {"gpt-judge": 8, "open-judge": 16, "claude-judge": PAIR_GAMES}
    failed = {name: last[(name, "judge")]["failed"] for name in JUDGE_NAMES}
    assert failed == {"gpt-judge": 0, "open-judge": 0, "claude-judge": PAIR_GAMES}
    assert last[("gpt-judge", "judge")]["cost"] > 0
    assert last[("open-judge", "judge")]["cost"] is None


def test_show_gives_each_judge_its_own_leaderboard_in_its_own_mode(
    tmp_path: Path,
    fake: FakeServer,
    judges_fake: tuple[FakeServer, FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    judges = three_judges(*judges_fake)
    judges[2] |= {"mode": "pairwise-baseline", "baseline": "beta"}
    config = config_with(tmp_path, fake, judges)
    assert mtbench(capsys, "run", "-c", str(config), "--quiet")[0] == 0
    store = str(tmp_path / "store.sqlite")
    code, out, _ = mtbench(capsys, "show", "--store", store, "--json")
    assert code == 0
    boards = {b["judge"]["name"]: b for b in orjson.loads(out)["leaderboards"]}
    assert {name: (b["mode"], b.get("baseline")) for name, b in boards.items()} == {
        "gpt-judge": ("single", None),
        "open-judge": ("single", None),
        "claude-judge": ("pairwise-baseline", "beta"),
    }
    assert boards["open-judge"]["judge"]["samples"] == 2
