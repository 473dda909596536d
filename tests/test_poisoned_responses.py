"""A server that answers 200 with values SQLite cannot hold costs nothing but its own answers.

Over a real socket: one model's server answers every request with a poisoned field while another
model is healthy. The providers coerce such informational fields (a finish reason that is an
object, a token count beyond 64 bits) to NULL, so the answers are kept; should one ever reach the
writer, it fails only its own job (`tests/test_writer_refusals.py`). The run must end by itself,
keep every healthy answer, store or record every poisoned job, and a rerun once the server is
healed must complete without losing or re-buying anything.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.engineproc import ended, integrity, start_engine, wait_until
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, write_config
from tests.support.scripted import json_reply, openai_completion

POISONS: dict[str, dict[str, Any]] = {
    "finish-reason-object": {"finish_reason": {"why": "stop"}},
    "prompt-tokens-beyond-64-bits": {"prompt_tokens": 2**63 + 1},
}
RUN_SECONDS = 60
MODELS = ("healthy", "poisoned")


def serve(fake: FakeServer, poison: dict[str, Any] | None, delay: float = 0.0) -> None:
    """Both models answer, after `delay`; "poisoned" with `poison` in its choice or usage (none:
    healed). The script's counts (200s sent per model, see `answered`) start again at 0."""
    replies = []
    for name in MODELS:
        fields = dict(poison or {}) if name == "poisoned" else {}
        usage = {"prompt_tokens": 20, "completion_tokens": 8}
        usage |= {k: fields.pop(k) for k in list(fields) if k.endswith("_tokens")}
        body = openai_completion(f"{name} answers.", usage=usage, **fields)
        replies.append(json_reply(body, model=name, delay=delay))
    fake.script(replies)


def answered(fake: FakeServer) -> dict[str, int]:
    return dict(zip(MODELS, fake.scripted_replies_served(), strict=True))


def rows(store: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute(sql).fetchall()


def answers(store: Path, name: str) -> dict[tuple[int, int], str]:
    found = rows(
        store,
        "SELECT a.question_id, a.turn, r.text FROM answers a JOIN responses r "
        f"ON r.key = a.response_key WHERE a.model = '{name}'",
    )
    return {(q, t): text for q, t, text in found}


def config_for(directory: Path, server: FakeServer) -> Path:
    return write_config(
        directory,
        models=[
            model("healthy", server.base_url, concurrency=4),
            model("poisoned", server.base_url, concurrency=4, max_attempts=2),
        ],
    )


@pytest.mark.parametrize("poison", list(POISONS))
def test_a_poisoned_model_fails_alone_and_every_healthy_answer_is_kept(
    tmp_path: Path, fake: FakeServer, poison: str
) -> None:
    store = tmp_path / "store.sqlite"
    serve(fake, POISONS[poison])
    config = config_for(tmp_path, fake)
    process = start_engine("generate", "-c", str(config), "--quiet")
    _, err = ended(process, timeout=RUN_SECONDS)
    assert process.returncode in (0, 1), err
    assert "Traceback" not in err
    assert len(answers(store, "healthy")) == 160
    field = next(iter(POISONS[poison]))
    stored = rows(
        store,
        f"SELECT r.{field} FROM answers a JOIN responses r ON r.key = a.response_key "
        "WHERE a.model = 'poisoned'",
    )
    failed = rows(store, "SELECT COUNT(*) FROM failures")[0][0]
    assert len(stored) + failed == 160  # every poisoned job is stored or recorded
    assert all(value is None for (value,) in stored)  # the poison itself was dropped
    assert integrity(store) == "ok"

    healthy_before = answers(store, "healthy")
    serve(fake, None)  # healed
    rerun = start_engine("generate", "-c", str(config), "--quiet")
    _, err = ended(rerun, timeout=RUN_SECONDS)
    assert rerun.returncode == 0, err
    assert answered(fake)["healthy"] == 0  # nothing bought twice
    assert answers(store, "healthy") == healthy_before
    assert len(answers(store, "poisoned")) == 160
    assert integrity(store) == "ok"


def test_sigterm_during_a_poisoned_run_exits_143_with_every_received_answer_kept(
    tmp_path: Path, fake: FakeServer
) -> None:
    store = tmp_path / "store.sqlite"
    serve(fake, POISONS["finish-reason-object"], delay=0.1)
    config = config_for(tmp_path, fake)
    process = start_engine("generate", "-c", str(config), "--quiet")
    wait_until(
        lambda: (counts := answered(fake))["healthy"] >= 12 and counts["poisoned"] >= 4,
        interval=0.02,
    )
    process.send_signal(signal.SIGTERM)
    _, err = ended(process, timeout=15)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("mtbench: error: SIGTERM: stopped")
    assert len(answers(store, "healthy")) == answered(fake)["healthy"]
    assert integrity(store) == "ok"

    serve(fake, None)  # healed, and answering at once
    rerun = start_engine("generate", "-c", str(config), "--quiet")
    _, err = ended(rerun, timeout=RUN_SECONDS)
    assert rerun.returncode == 0, err
    assert len(answers(store, "healthy")) == 160
    assert len(answers(store, "poisoned")) == 160
