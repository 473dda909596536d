"""Wire fuzz: whatever a server sends, a run ends, accounts for every job and changes nothing else.

Hypothesis draws the provider (OpenAI or Anthropic), the transport (JSON or SSE) and a script of
one to four replies (tests/support/wirecases.py): the documented shapes with wrong types at every
level, huge and negative numbers, invalid UTF-8, deep nesting, SSE streams of comments only or with
events after the end, content types that lie, error statuses with odd bodies and wait headers,
bodies split anywhere and connections cut. The fake server plays the script over a real socket
(in turn, again and again) while the engine runs `generate` for two questions (four jobs) on a
copy of a store that already holds another model's answers and a judge's judgments. For every
example:

- the run ends within RUN_BOUND seconds and exits 0 or 1, 0 exactly when no job failed, after
  at most `max_attempts` requests per job;
- each job is stored or recorded in `failures`, never both; no failure is `internal`;
- every stored answer is one a reply could give, with the stored values the providers promise
  (a reason a string of at most 64 characters or NULL, counts in 0..2**62 or NULL); a script of
  well-formed replies stores all four answers, a script of failing replies none;
- nothing that was in the store changed, and nothing was added but this run's own rows.

FUZZ_EXAMPLES (60) examples by default (about 25 s); `MTBENCH_FUZZ_EXAMPLES=1000` runs more, and
pytest's `--hypothesis-seed=N` replays a run's choices. Until the transport rewrite lands
(redirects off, a cap on waits a server asks for, every aiohttp error mapped) the strategies keep
statuses out of 3xx, waits around a second, and send no Content-Encoding.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, write_config
from tests.support.scripted import run_engine
from tests.support.wirecases import WireReply, scripts

FUZZ_EXAMPLES = int(os.environ.get("MTBENCH_FUZZ_EXAMPLES", "60"))
MODEL = "fuzz"
QUESTIONS = (81, 82)
MAX_ATTEMPTS = 2
JOBS = {(question, turn) for question in QUESTIONS for turn in (1, 2)}
TABLES = ("questions", "responses", "answers", "judgments", "runs", "failures")

Rows = dict[str, set[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def server(fake_session: tuple[FakeServer, dict[str, Any]]) -> Iterator[FakeServer]:
    """The session's fake server with its default options; its script unloaded afterwards."""
    fake, defaults = fake_session
    fake.configure(**defaults)
    fake.reset()
    yield fake
    fake.reset()


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory: pytest.TempPathFactory, server: FakeServer) -> Path:
    """A store holding model `alpha`'s answers to the same questions and a judge's judgments."""
    directory = tmp_path_factory.mktemp("seeded")
    judge = {"name": "judge", "base_url": server.base_url}
    models = [model("alpha", server.base_url)]
    config = write_config(directory, models=models, judge=judge, questions=list(QUESTIONS))
    assert run_engine(config, "run") == 0
    return directory / "store.sqlite"


def snapshot(store: Path) -> Rows:
    with closing(sqlite3.connect(store)) as db:
        return {table: set(db.execute(f"SELECT * FROM {table}").fetchall()) for table in TABLES}


def query(store: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(store)) as db:
        return db.execute(sql).fetchall()


def copy_store(seeded: Path, directory: Path) -> Path:
    for path in seeded.parent.glob(seeded.name + "*"):
        shutil.copyfile(path, directory / path.name)
    return directory / seeded.name


def run_script(
    server: FakeServer, store: Path, api: str, stream: bool, script: list[WireReply]
) -> int:
    server.reset()
    server.script([reply.script for reply in script])
    base_url = server.url if api == "anthropic" else server.base_url
    options = {
        "api": api,
        "stream": stream,
        "max_attempts": MAX_ATTEMPTS,
        "timeout": 5.0,
        "max_retry_after": 0.5,  # a server asking for a day (or forever) gets half a second
    }
    models = [model(MODEL, base_url, concurrency=2, **options)]
    config = write_config(store.parent, models=models, questions=list(QUESTIONS))
    return run_engine(config)


def check_only_this_runs_rows_were_added(before: Rows, after: Rows, code: int) -> int:
    """Every earlier row is still there, unchanged; the new ones are this run's; its id."""
    for table in TABLES:
        assert before[table] <= after[table], f"rows of {table} changed or vanished"
    added = {table: after[table] - before[table] for table in TABLES}
    assert not added["questions"] and not added["judgments"]
    ((run_id, command, _, _, status, _, _),) = added["runs"]
    assert (command, status) == ("generate", "failed" if code else "ok")
    assert all(row[0] == MODEL for row in added["answers"])  # answers.model
    assert all(row[2] == MODEL for row in added["responses"])  # responses.label
    assert all(row[0] == run_id and row[3] == MODEL for row in added["failures"])
    return int(run_id)


def check_every_job_is_accounted_for(store: Path, run_id: int, code: int) -> set[tuple[int, int]]:
    answered = set(query(store, f"SELECT question_id, turn FROM answers WHERE model = '{MODEL}'"))
    failures = query(
        store, f"SELECT question_id, turn, error_class FROM failures WHERE run_id = {run_id}"
    )
    failed = {(question, turn) for question, turn, _ in failures}
    assert answered | failed == JOBS and not answered & failed
    assert code == (1 if failed else 0)
    assert "internal" not in {error_class for *_, error_class in failures}
    return answered


def check_stored_answers(store: Path, script: list[WireReply], answered: set[Any]) -> None:
    rows = query(
        store,
        "SELECT text, finish_reason, prompt_tokens, completion_tokens, typeof(text), "
        "typeof(finish_reason), typeof(prompt_tokens), typeof(completion_tokens) "
        f"FROM responses WHERE label = '{MODEL}'",
    )
    promised = {reply.answer for reply in script if reply.answer is not None}
    unclaimed = any(reply.answer is None and not reply.fails for reply in script)
    for *values, text_type, reason_type, prompt_type, completion_type in rows:
        _, reason, prompt, completion = values
        assert tuple(values) in promised or unclaimed, f"stored {tuple(values)!r}"
        assert text_type == "text" and reason_type in ("text", "null")
        assert reason is None or len(reason) <= 64
        for tokens, kind in ((prompt, prompt_type), (completion, completion_type)):
            assert kind == "null" or (kind == "integer" and 0 <= tokens <= 2**62)
    if all(reply.answer is not None for reply in script):
        assert answered == JOBS
    if all(reply.fails for reply in script):
        assert not answered


RUNS = st.tuples(st.sampled_from(["openai", "anthropic"]), st.booleans()).flatmap(
    lambda kind: st.tuples(st.just(kind[0]), st.just(kind[1]), scripts(*kind))
)


@pytest.mark.timeout(max(300, 5 * FUZZ_EXAMPLES))
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(run=RUNS)
def test_whatever_the_server_sends_the_run_ends_and_accounts_for_every_job(
    run: tuple[str, bool, list[WireReply]],
    seeded_store: Path,
    server: FakeServer,
) -> None:
    api, stream, script = run
    for reply in script:
        note(reply.label)
        event(reply.category)
    with tempfile.TemporaryDirectory() as directory:
        store = copy_store(seeded_store, Path(directory))
        before = snapshot(store)
        code = run_script(server, store, api, stream, script)
        assert code in (0, 1)
        assert server.scripted_requests() <= len(JOBS) * MAX_ATTEMPTS  # no runaway retries
        run_id = check_only_this_runs_rows_were_added(before, snapshot(store), code)
        answered = check_every_job_is_accounted_for(store, run_id, code)
        check_stored_answers(store, script, answered)
