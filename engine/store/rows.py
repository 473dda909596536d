"""Every row the store holds and every SQL statement run on its tables, by column name.

A row the engine writes is a frozen dataclass whose fields are its table's columns: `write()`
gives the statement and its named parameters (`:key`, `:text`), so a new column is a new field
here and nowhere else. Reads are named statements too; the judge-identity condition that every
per-judge read shares is written once (`judged_by`). Tables and migrations are
`engine.store.schema`'s; who runs a statement (the store, the writer, a report) is theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "IMPORT_API",
    "AnswerRow",
    "CheckpointFilesRow",
    "CompletionEstimate",
    "FailureRow",
    "JobServerRow",
    "JudgeIdentity",
    "JudgmentRow",
    "PanelRow",
    "QuestionRow",
    "ResponseRow",
    "ServerRow",
    "Write",
    "in_list",
    "judge_params",
    "judged_by",
    "params",
]

Write = tuple[str, Mapping[str, Any]]  # a statement and its named parameters


def _insert(verb: str, table: str, row: type) -> str:
    columns = [field.name for field in fields(row)]
    names = ", ".join(columns)
    return f"{verb} INTO {table} ({names}) VALUES ({', '.join(':' + c for c in columns)})"


def params(row: Any) -> dict[str, Any]:
    """A row dataclass's columns by name, as a statement's named parameters."""
    return {name: getattr(row, name) for name in row.__slots__}


def in_list(count: int) -> str:
    """`?,?,?` for an `IN (...)` of `count` values."""
    return ",".join("?" * count)


IMPORT_API = "import"  # the api of judgments imported from FastChat files (a human set, say)


@dataclass(frozen=True, slots=True)
class JudgeIdentity:
    """Who judged: label, served model string and API kind (imports use api 'import')."""

    name: str
    model: str
    api: str


def judged_by(alias: str = "") -> str:
    """The condition on `judgments` (as `alias`) for one judge identity's rows of one bench."""
    j = f"{alias}." if alias else ""
    return (
        f"{j}judge = :judge AND {j}judge_model = :judge_model AND {j}judge_api = :judge_api "
        f"AND {j}bench = :bench"
    )


def judge_params(judge: JudgeIdentity, bench: str, **more: Any) -> dict[str, Any]:
    return {
        "judge": judge.name,
        "judge_model": judge.model,
        "judge_api": judge.api,
        "bench": bench,
        **more,
    }


@dataclass(frozen=True, slots=True)
class CompletionEstimate:
    """Plan: the mean completion tokens of a label's earlier answers (reasoning included) and of
    their reasoning tokens, when the server reported any."""

    completion: float
    reasoning: float | None = None


@dataclass(frozen=True, slots=True)
class ResponseRow:
    """A response paid for (or imported): the cache, under the sha256 of its request."""

    key: str
    api: str
    label: str
    model: str
    request: bytes
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency: float | None
    created: float
    cost: float | None = None
    reasoning: str | None = None
    reasoning_tokens: int | None = None

    def write(self) -> Write:
        return INSERT_RESPONSE, params(self)


@dataclass(frozen=True, slots=True)
class AnswerRow:
    model: str
    bench: str
    question_id: int
    turn: int
    sample: int
    response_key: str
    source: str  # 'generated' | 'imported'
    run_id: int | None
    created: float

    def write(self) -> Write:
        return UPSERT_ANSWER, params(self)


@dataclass(frozen=True, slots=True)
class JudgmentRow:
    judge: str
    judge_model: str
    judge_api: str
    bench: str
    kind: str  # 'single' | 'pair'
    model: str
    opponent: str
    question_id: int
    turn: int
    game: int
    sample: int
    prompt_name: str
    score: float | None
    winner: str | None
    parse_status: str
    response_key: str
    run_id: int | None
    created: float
    judge_settings: str | None = None  # JSON, the judge's reasoning settings

    def write(self) -> Write:
        return UPSERT_JUDGMENT, params(self)

    def slot(self) -> tuple[str, str, str, str, str, str, str, int, int, int, int]:
        """Its primary key: what a later row for the same judgment replaces it by."""
        return (
            self.judge, self.judge_model, self.judge_api, self.bench, self.kind, self.model,
            self.opponent, self.question_id, self.turn, self.game, self.sample,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class FailureRow:
    run_id: int
    job: str
    kind: str
    model: str
    question_id: int
    turn: int
    error_class: str
    attempts: int
    message: str
    created: float

    def write(self) -> Write:
        return INSERT_FAILURE, params(self)


@dataclass(frozen=True, slots=True)
class QuestionRow:
    bench: str
    question_id: int
    category: str
    turns: str  # JSON list
    reference: str | None  # JSON list, when the category has a reference answer


@dataclass(frozen=True, slots=True)
class ServerRow:
    """A model server started by the 'local' launcher and not yet seen stopped."""

    name: str
    host: str
    boot_id: str
    pid: int
    pgid: int
    start_time: int | None
    command: str
    log_file: str | None
    started: float
    launcher: str = "local"


@dataclass(frozen=True, slots=True)
class JobServerRow:
    """A model server run as a batch job (launcher 'slurm') and not yet seen gone; recorded
    before it is submitted, without its `job_id` until the launcher has said it."""

    launcher: str
    job_id: str | None
    name: str
    host: str  # the machine that submitted it
    command: str
    log_file: str | None
    started: float


@dataclass(frozen=True, slots=True)
class PanelRow:
    """A judge panel's definition: its judge labels (JSON list) and how ratings are pooled."""

    bench: str
    name: str
    judges: str
    aggregate: str
    run_id: int | None
    created: float

    def write(self) -> Write:
        return UPSERT_PANEL, params(self)


@dataclass(frozen=True, slots=True)
class CheckpointFilesRow:
    """A checkpoint's files (JSON [[path, size, mtime_ns], ...]) as a run first served it."""

    label: str
    path: str
    files: str
    run_id: int | None
    created: float

    def write(self) -> Write:
        return UPSERT_CHECKPOINT_FILES, params(self)


INSERT_RESPONSE = _insert("INSERT OR IGNORE", "responses", ResponseRow)
UPSERT_ANSWER = _insert("INSERT OR REPLACE", "answers", AnswerRow)
UPSERT_JUDGMENT = _insert("INSERT OR REPLACE", "judgments", JudgmentRow)
INSERT_FAILURE = _insert("INSERT", "failures", FailureRow)
UPSERT_QUESTION = _insert("INSERT OR REPLACE", "questions", QuestionRow)
INSERT_SERVER = _insert("INSERT", "servers", ServerRow)
INSERT_JOB_SERVER = _insert("INSERT", "servers", JobServerRow)
UPSERT_PANEL = _insert("INSERT OR REPLACE", "panels", PanelRow)
STORED_PANELS = "SELECT name, judges, aggregate FROM panels WHERE bench = :bench ORDER BY name"
PANEL_RUN_CONFIG = (  # the config of the run that recorded a panel: who its members were then
    "SELECT runs.config FROM panels JOIN runs ON runs.id = panels.run_id "
    "WHERE panels.bench = :bench AND panels.name = :name"
)
UPSERT_CHECKPOINT_FILES = _insert("INSERT OR REPLACE", "checkpoint_files", CheckpointFilesRow)
CHECKPOINT_FILES = (  # and whether any answer is stored under the label
    "SELECT label, files, EXISTS (SELECT 1 FROM answers WHERE answers.model = label) "
    "FROM checkpoint_files"
)

# Runs
INSERT_RUN = (
    "INSERT INTO runs (command, started, status, config) "
    "VALUES (:command, :started, 'running', :config)"
)
FINISH_RUN = (
    "UPDATE runs SET finished = :finished, status = :status, counts = :counts WHERE id = :id"
)
LAST_RUN = "SELECT id, command, status FROM runs ORDER BY id DESC LIMIT 1"
RUN_FAILURE_CLASSES = (
    "SELECT error_class, COUNT(*) FROM failures WHERE run_id = :run_id GROUP BY error_class "
    "ORDER BY COUNT(*) DESC"
)
JUDGING_RUN_CONFIGS = "SELECT config FROM runs WHERE command IN ('run', 'judge') ORDER BY id DESC"

# The run's reads: cache, stored answers and judgments, estimates
CACHED_RESPONSES = (  # + in_list
    "SELECT key, text, finish_reason, prompt_tokens, completion_tokens FROM responses WHERE key IN "
)
ANSWER_INDEX = (
    "SELECT model, question_id, turn, sample, response_key, source FROM answers "
    "WHERE bench = :bench"
)
ANSWER_TEXTS = (  # + in_list of models, after the bench
    "SELECT a.model, a.question_id, a.turn, r.text FROM answers a "
    "JOIN responses r ON r.key = a.response_key WHERE a.bench = ? AND a.sample = 0 AND a.model IN "
)
ANSWERED_MODELS = "SELECT DISTINCT model FROM answers WHERE bench = :bench ORDER BY model"
JUDGMENT_INDEX = (
    "SELECT kind, model, opponent, question_id, turn, game, sample, response_key FROM judgments "
    f"WHERE {judged_by()}"
)
COMPLETION_ESTIMATES = (
    "SELECT label, AVG(completion_tokens), AVG(reasoning_tokens) FROM responses "
    "WHERE completion_tokens IS NOT NULL GROUP BY label"
)

# Results: judges, scores, costs
STORED_JUDGES = (
    "SELECT judge, judge_model, judge_api, kind, prompt_name, judge_settings, MAX(sample) "
    "FROM judgments WHERE bench = :bench "
    "GROUP BY judge, judge_model, judge_api, kind, prompt_name, judge_settings "
    "ORDER BY judge, judge_model, judge_api"
)
_WITH_CATEGORY = (
    "COALESCE(q.category, :unknown) AS category FROM judgments j "
    "LEFT JOIN questions q ON q.bench = j.bench AND q.question_id = j.question_id "
    f"WHERE {judged_by('j')} AND j.kind = :kind"
)
SINGLE_SAMPLES = f"SELECT j.sample, j.model, j.question_id, j.turn, j.score, {_WITH_CATEGORY}"
PAIR_GAMES = (
    f"SELECT j.model, j.opponent, j.question_id, j.turn, j.game, j.winner, {_WITH_CATEGORY}"
)
PAIR_SAMPLE_GAMES = f"SELECT j.sample, {PAIR_GAMES.removeprefix('SELECT ')}"
# Totals use TOTAL (a float), not SUM: a server may report token counts up to 2**62 each
# (engine.endpoints.providers.wire), and SQLite's SUM of two of them fails with "integer overflow".
GENERATION_TOTALS = (  # {column}: cost or reasoning_tokens
    "SELECT a.model, TOTAL(r.{column}) FROM answers a JOIN responses r ON r.key = a.response_key "
    "WHERE a.bench = :bench AND r.{column} IS NOT NULL GROUP BY a.model"
)
JUDGE_TOTAL = (  # {column}: cost or reasoning_tokens; each distinct request once
    "SELECT TOTAL(r.{column}), COUNT(r.{column}) FROM responses r "
    "WHERE r.key IN (SELECT DISTINCT response_key "
    f"FROM judgments WHERE {judged_by()})"
)
EXPECTED_SINGLE = (
    "SELECT COUNT(*), SUM(json_array_length(turns) >= 2) FROM questions WHERE bench = :bench"
)
JUDGED_BENCHES = "SELECT DISTINCT bench FROM judgments"
JUDGES_OF_BENCH = "SELECT DISTINCT judge FROM judgments WHERE bench = :bench"
PAIRS = f"SELECT DISTINCT model, opponent FROM judgments WHERE {judged_by()} AND kind = 'pair'"
OUT_OF_RANGE = (
    f"SELECT model, COUNT(*) FROM judgments WHERE {judged_by()} AND kind = 'single' "
    "AND score != :missing AND NOT (score BETWEEN :low AND :high) GROUP BY model"
)

# The report and export: texts
ANSWERS_WITH_TEXT = (
    "SELECT a.model, a.question_id, a.turn, a.created, a.response_key, r.text, r.reasoning, "
    "r.model AS served, CASE WHEN r.api = :imported THEN r.request END AS imported_request "
    "FROM answers a JOIN responses r ON r.key = a.response_key "
    "WHERE a.bench = :bench AND a.sample = 0 ORDER BY a.model, a.question_id, a.turn"
)
QUESTIONS = (
    "SELECT question_id, category, turns, reference FROM questions WHERE bench = :bench "
    "ORDER BY question_id"
)
QUESTION_TURN_COUNTS = (
    "SELECT question_id, json_array_length(turns) FROM questions WHERE bench = :bench"
)
JUDGMENT_TEXTS = (
    "SELECT j.kind, j.model, j.opponent, j.question_id, j.turn, j.game, j.sample, j.score, "
    "j.winner, j.parse_status, COALESCE(r.text, '') AS text, r.reasoning FROM judgments j "
    f"LEFT JOIN responses r ON r.key = j.response_key WHERE {judged_by('j')} "
    "ORDER BY j.question_id, j.kind DESC, j.model, j.opponent, j.turn, j.game, j.sample"
)
EXPORTED_JUDGMENTS = (  # {judge}: "" or "AND j.judge = :judge"
    "SELECT j.judge, j.judge_model, j.judge_api, j.kind, j.model, j.opponent, j.question_id, "
    "j.turn, j.game, j.prompt_name, j.score, j.winner, j.created, r.request, r.text, j.sample, "
    "j.judge_settings FROM judgments j JOIN responses r ON r.key = j.response_key "
    "WHERE j.bench = :bench {judge} "
    "ORDER BY j.judge, j.judge_model, j.judge_api, j.sample, j.question_id, j.model, "
    "j.opponent, j.turn, j.game"
)

# Imports: what a row would replace
STORED_ANSWER_KEYS = (  # + in_list of models
    "SELECT model, bench, question_id, turn, sample, response_key FROM answers WHERE model IN "
)
STORED_JUDGMENT_KEYS = (  # + in_list of judges
    "SELECT judge, judge_model, judge_api, bench, kind, model, opponent, question_id, turn, "
    "game, sample, response_key FROM judgments WHERE judge IN "
)

# Servers
SERVER_RECORDS = (
    "SELECT id, launcher, job_id, name, host, boot_id, pid, pgid, start_time, command, log_file, "
    "started FROM servers"
)
FORGET_LOCAL_SERVER = (
    "DELETE FROM servers WHERE launcher = 'local' AND host = :host AND boot_id IS :boot_id "
    "AND pid = :pid AND start_time IS :start_time"
)
# A batch job's record is its launcher, submit command and time: its id comes later, if at all.
_JOB_SERVER = "launcher = :launcher AND command = :command AND started = :started"
RECORD_JOB_ID = f"UPDATE servers SET job_id = :job_id, log_file = :log_file WHERE {_JOB_SERVER}"
FORGET_JOB_SERVER = f"DELETE FROM servers WHERE {_JOB_SERVER}"
FORGET_SERVERS = "DELETE FROM servers WHERE id IN "  # + in_list
