"""The engine's own judge requests and leaderboards equal FastChat's on its reference run."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson
import pytest

from engine.bench.data import load_bench
from engine.cli.main import main
from engine.config import JudgeConfig
from engine.interop import import_fastchat
from engine.run.graph import build_graph
from engine.run.judge_jobs import PairJudgeJob, SingleJudgeJob
from engine.run.judge_setups import JudgeSetup
from engine.store.store import open_store
from tests.support.paths import FASTCHAT_REFERENCE, MTBENCH_DATA
from tests.support.runconfig import mtbench

MODELS = ["fake-alpha", "fake-beta", "fake-gamma"]


def reference_rows(name: str) -> list[dict]:
    path = FASTCHAT_REFERENCE / "model_judgment" / name
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


async def judge_requests(store_path: Path, mode: str) -> dict[tuple, tuple[str, ...]]:
    """(model(s), question, turn[, game]) -> (prompt name, system, user), as the engine builds."""
    bench = load_bench(MTBENCH_DATA, "mt_bench", need_judging=True)
    judge = JudgeConfig(
        name="gpt-4", model="gpt-4", base_urls=("http://127.0.0.1:9/v1",), mode=mode
    )
    store = await open_store(store_path, write=False)
    try:
        judges = [JudgeSetup(judge, bench, tuple(MODELS))]
        graph = await build_graph(store, bench, generate=(), judges=judges)
    finally:
        await store.close()
    built = {}
    for job in graph.jobs:
        request = job.build_request()
        (system_role, system), (user_role, user) = request.messages
        assert (system_role, user_role) == ("system", "user")
        assert request.temperature == 0.0 and request.max_tokens == 2048
        if isinstance(job, SingleJudgeJob):
            key: tuple = (job.model, job.question_id, job.turn)
        else:
            assert isinstance(job, PairJudgeJob)
            key = (job.model_1, job.model_2, job.question_id, job.turn, job.game)
        built[key] = (job.prompt_name, system, user)
    return built


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("parity") / "store.sqlite"
    source = tmp_path_factory.mktemp("answers-only")
    (source / "model_answer").symlink_to(FASTCHAT_REFERENCE / "model_answer")
    asyncio.run(import_fastchat(store, source))
    return store


def test_every_single_judge_prompt_is_fastchats_byte_for_byte(reference_store: Path) -> None:
    prompts = {
        p["name"]: p
        for p in map(orjson.loads, (MTBENCH_DATA / "judge_prompts.jsonl").read_bytes().splitlines())
    }
    built = asyncio.run(judge_requests(reference_store, "single"))
    rows = reference_rows("gpt-4_single.jsonl")
    assert len(built) == len(rows) == 480
    for row in rows:
        name, system, user = built[(row["model"], row["question_id"], row["turn"])]
        assert name == row["judge"][1]
        assert user == row["user_prompt"]
        assert system == prompts[name]["system_prompt"]


def test_every_pairwise_judge_prompt_is_fastchats_byte_for_byte(reference_store: Path) -> None:
    prompts = {
        p["name"]: p
        for p in map(orjson.loads, (MTBENCH_DATA / "judge_prompts.jsonl").read_bytes().splitlines())
    }
    built = asyncio.run(judge_requests(reference_store, "pairwise-all"))
    rows = reference_rows("gpt-4_pair.jsonl")
    assert len(built) == 2 * len(rows) == 960
    for row in rows:
        for game in (1, 2):
            key = (row["model_1"], row["model_2"], row["question_id"], row["turn"], game)
            name, system, user = built[key]
            assert name == row["judge"][1]
            assert user == row[f"g{game}_user_prompt"]
            assert system == prompts[name]["system_prompt"]


def fastchat_table(path: Path, section: str | None) -> dict[str, list[float]]:
    """Numbers per model from a pandas print in FastChat's show_result output."""
    text = path.read_text()
    if section is not None:
        text = text.split(f"########## {section} ##########")[1].split("##########")[0]
    table = {}
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in MODELS:
            table[parts[0]] = [float(p) for p in parts[1:]]
    return table


@pytest.fixture(scope="module")
def judged_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference answers and judgments, loaded the way a user would: `mtbench import`."""
    store = tmp_path_factory.mktemp("judged") / "store.sqlite"
    argv = ["import", "--store", str(store), "--fastchat", str(FASTCHAT_REFERENCE)]
    assert main([*argv, "--data", str(MTBENCH_DATA)]) == 0
    return store


def test_show_prints_fastchats_single_numbers(
    judged_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = mtbench(capsys, "show", "--store", str(judged_store), "--mode", "single")
    assert code == 0
    printed = {}
    for line in out.splitlines():
        parts = line.split()
        if (
            parts
            and parts[0] in MODELS
            and len(parts) > 4
            and re.fullmatch(r"\d+\.\d{6}", parts[1])
        ):
            printed[parts[0]] = [float(p) for p in parts[1:4]]
    reference = FASTCHAT_REFERENCE / "show_single.txt"
    first, second, average = (
        fastchat_table(reference, s) for s in ("First turn", "Second turn", "Average")
    )
    for model in MODELS:
        # FastChat prints (turn, score) for the per-turn tables and (score) for the average.
        assert printed[model] == [first[model][1], second[model][1], average[model][0]]
    order = [
        line.split()[0] for line in out.splitlines() if line.split() and line.split()[0] in MODELS
    ][:3]
    assert order == list(average)


def test_show_prints_fastchats_pairwise_numbers(
    judged_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = mtbench(capsys, "show", "--store", str(judged_store), "--mode", "pairwise-all")
    assert code == 0
    reference = fastchat_table(FASTCHAT_REFERENCE / "show_pairwise_all.txt", None)
    printed = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in MODELS:
            printed[parts[0]] = [float(p) for p in parts[1:7]]
    assert printed == reference
    assert [
        line.split()[0] for line in out.splitlines() if line.split() and line.split()[0] in MODELS
    ] == list(reference)


def test_show_json_carries_the_same_numbers(
    judged_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = mtbench(capsys, "show", "--store", str(judged_store), "--json")
    assert code == 0
    (board,) = orjson.loads(out)["leaderboards"]
    assert board["judge"] == {
        "name": "gpt-4",
        "model": "gpt-4",
        "api": "import",
        "prompts": [
            "single-math-v1",
            "single-math-v1-multi-turn",
            "single-v1",
            "single-v1-multi-turn",
        ],
        "samples": 1,
        "settings": [],
        "cost": None,
        "reasoning_tokens": None,
    }
    average = fastchat_table(FASTCHAT_REFERENCE / "show_single.txt", "Average")
    for entry in board["models"]:
        assert round(entry["score"], 6) == average[entry["model"]][0]
        low, high = entry["ci_95"]
        assert low <= entry["score"] <= high
        assert set(entry["categories"]) == {
            "writing",
            "roleplay",
            "reasoning",
            "math",
            "coding",
            "extraction",
            "stem",
            "humanities",
        }
    assert sum(entry["missing"] for entry in board["models"]) == 31
