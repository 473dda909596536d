"""The engine against a real llama.cpp server (SmolLM2-135M, `serve_gguf`), via the CLI.

One server for the module; two questions (81 writing, 111 math) and short answers keep it fast on
two CPU cores. What the fake server cannot prove is proved here: a real chat template sees the
turn-1 answer in turn 2, real SSE and `usage` parse, `seed` makes sampling repeatable, and a GBNF
grammar in `extra_body` turns a model that ignores the judge format into a parsable judge.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.serving.serve import ManagedServer
from engine.serving.sweep import server_log_stem
from tests.support.llamacpp import JUDGE_GRAMMAR, JUDGE_MAX_TOKENS, ServerThread, smollm2_spec
from tests.support.runconfig import model, mtbench, write_config

QUESTIONS = [81, 111]
MAX_TOKENS = 48
ALIAS = "smollm2"


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedServer]:
    log = tmp_path_factory.mktemp("llamacpp") / "server.log"
    with ServerThread(smollm2_spec(alias=ALIAS, n_parallel=2, ctx=4096, log_file=log)) as server:
        yield server


def smollm2(server: ManagedServer, name: str = "smol", **options: Any) -> dict[str, Any]:
    return model(name, server.base_url, model=ALIAS, max_tokens=MAX_TOKENS, **options)


def answer_rows(store: Path) -> dict[tuple[int, int], tuple[str, bytes, int, int, str]]:
    """(question, turn) -> (text, canonical request, prompt tokens, completion tokens, key)."""
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT a.question_id, a.turn, r.text, r.request, r.prompt_tokens, "
            "r.completion_tokens, r.key FROM answers a JOIN responses r ON r.key = a.response_key"
        ).fetchall()
    return {(q, t): (text, req, pt, ct, key) for q, t, text, req, pt, ct, key in rows}


def texts(store: Path) -> dict[tuple[int, int], str]:
    return {key: row[0] for key, row in answer_rows(store).items()}


def summary_total(out: str, column: str) -> int:
    """A column of the run summary's `total` row (columns are separated by two or more spaces)."""
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("endpoint"))
    total = next(line for line in lines if line.startswith("total"))
    return int(re.split(r"\s{2,}", total)[re.split(r"\s{2,}", header).index(column)])


def test_multi_turn_generation_carries_the_turn_one_answer_and_records_usage(
    tmp_path: Path, llama: ManagedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, models=[smollm2(llama)], questions=QUESTIONS)
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out
    rows = answer_rows(tmp_path / "store.sqlite")
    assert set(rows) == {(q, t) for q in QUESTIONS for t in (1, 2)}
    for text, _, prompt_tokens, completion_tokens, _ in rows.values():
        assert text.strip()
        assert prompt_tokens > 0
        assert 0 < completion_tokens <= MAX_TOKENS
    for question in QUESTIONS:
        messages = orjson.loads(rows[(question, 2)][1])["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        assert messages[1]["content"] == rows[(question, 1)][0]
        # Turn 2's prompt holds turn 1's exchange, so it is longer by at least the answer.
        assert rows[(question, 2)][2] > rows[(question, 1)][2] + rows[(question, 1)][3]


def test_sse_streaming_assembles_the_answer_and_its_usage(
    tmp_path: Path, llama: ManagedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, models=[smollm2(llama, stream=True)], questions=[81])
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out
    rows = answer_rows(tmp_path / "store.sqlite")
    assert set(rows) == {(81, 1), (81, 2)}
    for text, _, prompt_tokens, completion_tokens, _ in rows.values():
        assert text.strip()
        assert prompt_tokens > 0 and 0 < completion_tokens <= MAX_TOKENS


def test_a_seed_makes_sampled_answers_repeatable_and_a_rerun_sends_nothing(
    tmp_path: Path, llama: ManagedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stores = []
    for run in ("first", "second"):
        directory = tmp_path / run
        directory.mkdir()
        sampled = smollm2(llama, seed=1, temperature=0.9)
        config = write_config(directory, models=[sampled], questions=QUESTIONS)
        code, out, _ = mtbench(capsys, "generate", "-c", str(config))
        assert code == 0, out
        assert summary_total(out, "sent") == 4
        stores.append(directory / "store.sqlite")
    first = texts(stores[0])
    assert len(first) == 4 and all(text.strip() for text in first.values())
    assert texts(stores[1]) == first

    before = answer_rows(stores[1])
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out
    assert summary_total(out, "sent") == 0
    assert summary_total(out, "cached") == 4
    assert answer_rows(stores[1]) == before
    with sqlite3.connect(stores[1]) as db:
        (counts,) = db.execute("SELECT counts FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    assert orjson.loads(counts)["sent"] == 0


def test_a_grammar_constrained_judge_gives_every_answer_a_parsable_rating(
    tmp_path: Path, llama: ManagedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    judge = {
        "name": "smol-judge",
        "model": ALIAS,
        "base_url": llama.base_url,
        "max_tokens": JUDGE_MAX_TOKENS,
        "extra_body": {"grammar": JUDGE_GRAMMAR},
    }
    config = write_config(tmp_path, models=[smollm2(llama)], judge=judge, questions=QUESTIONS)
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        judgments = db.execute(
            "SELECT j.question_id, j.turn, j.score, j.parse_status, r.text, r.request "
            "FROM judgments j JOIN responses r ON r.key = j.response_key"
        ).fetchall()
    assert {(q, t) for q, t, *_ in judgments} == {(q, t) for q in QUESTIONS for t in (1, 2)}
    for _, _, score, status, text, request in judgments:
        assert status == "ok", text
        assert 1 <= score <= 10, text
        assert re.fullmatch(r"[^\n\[\]]{1,100}\nRating: \[\[(10|[1-9])\]\]", text), text
        assert orjson.loads(request)["params"]["extra_body"] == {"grammar": JUDGE_GRAMMAR}


def test_a_two_checkpoint_sweep_serves_each_checkpoint_in_turn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same GGUF under two labels, each served by the engine's lifecycle manager."""
    spec = smollm2_spec(n_parallel=2, ctx=2048)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for label in ("smol-a", "smol-b"):
        (folder / f"{label}.gguf").symlink_to(spec.path)
    sweep = {
        "serve": spec.command,
        "checkpoints": "checkpoints/*.gguf",
        "max_tokens": 24,
        "concurrency": 2,
        "ready_timeout": 60,
    }
    config = write_config(tmp_path, models=[sweep], questions=[81], server_slots=1)
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        rows = db.execute(
            "SELECT a.model, r.model, r.text FROM answers a JOIN responses r "
            "ON r.key = a.response_key"
        ).fetchall()
    assert sorted((label, served) for label, served, _ in rows) == [
        ("smol-a", "smol-a"),
        ("smol-a", "smol-a"),
        ("smol-b", "smol-b"),
        ("smol-b", "smol-b"),
    ]
    assert all(text.strip() for *_, text in rows)
    logs = sorted(p.name for p in (tmp_path / "servers").iterdir())
    # each checkpoint had a server of its own
    assert logs == [f"{server_log_stem('smol-a')}.log", f"{server_log_stem('smol-b')}.log"]
