"""Generation end to end against the fake server: every answer stored, and reruns cost nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config


def answers(store: Path) -> dict[tuple[str, int, int], str]:
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT a.model, a.question_id, a.turn, r.text FROM answers a "
            "JOIN responses r ON r.key = a.response_key"
        ).fetchall()
    return {(m, q, t): text for m, q, t, text in rows}


def test_three_models_get_480_answers_and_a_rerun_sends_nothing(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        models=[model(n, fake.base_url, stream=(n == "beta")) for n in ("alpha", "beta", "gamma")],
    )
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out
    stored = answers(tmp_path / "store.sqlite")
    assert len(stored) == 480
    assert fake.stats(arrivals=False)["requests"] == 480
    assert all(text.startswith("This is a simulated answer from") for text in stored.values())

    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0
    assert fake.stats(arrivals=False)["requests"] == 480
    assert answers(tmp_path / "store.sqlite") == stored


def test_turn_two_carries_the_models_own_turn_one_answer(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)])
    assert mtbench(capsys, "generate", "-c", str(config))[0] == 0
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        request, first = db.execute(
            "SELECT r2.request, r1.text FROM answers a2 "
            "JOIN responses r2 ON r2.key = a2.response_key "
            "JOIN answers a1 ON a1.model = a2.model AND a1.question_id = a2.question_id "
            "AND a1.turn = 1 JOIN responses r1 ON r1.key = a1.response_key "
            "WHERE a2.turn = 2 AND a2.question_id = 81"
        ).fetchone()
    import orjson

    messages = orjson.loads(request)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == first


def test_categories_get_fastchat_temperatures(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)])
    assert mtbench(capsys, "generate", "-c", str(config))[0] == 0
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        rows = db.execute(
            "SELECT a.question_id, json_extract(r.request, '$.params.temperature') "
            "FROM answers a JOIN responses r ON r.key = a.response_key WHERE a.turn = 1"
        ).fetchall()
    temperatures = dict(rows)
    assert temperatures[81] == 0.7  # writing
    assert temperatures[111] == 0.0  # math
    assert temperatures[131] == 0.0  # extraction
    assert temperatures[141] == 0.1  # stem


def test_a_question_subset_seed_and_extra_fields_reach_the_request(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url, seed=42, extra_body={"top_k": 5})],
        questions=[81, 101],
    )
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out
    assert set(answers(tmp_path / "store.sqlite")) == {
        ("alpha", 81, 1),
        ("alpha", 81, 2),
        ("alpha", 101, 1),
        ("alpha", 101, 2),
    }
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        params = db.execute("SELECT json_extract(request, '$.params') FROM responses").fetchall()
    import orjson

    assert all(orjson.loads(p[0])["seed"] == 42 for p in params)
    assert all(orjson.loads(p[0])["extra_body"] == {"top_k": 5} for p in params)


def test_an_unknown_question_id_is_a_config_error(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], questions=[81, 999])
    code, _, err = mtbench(capsys, "generate", "-c", str(config))
    assert code == 2
    assert "questions" in err and "999" in err
