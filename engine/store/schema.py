"""The store's schema as numbered migrations; `PRAGMA user_version` records how far a file has come.

Every table has a reason (see DESIGN.md "The store"). Migrations only ever append: a store written
by an older engine is upgraded in place, a store from a newer engine is refused, never downgraded.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

MIGRATIONS: tuple[str, ...] = (
    # 1: responses cache, answers, judgments, runs, failures, and the questions they refer to
    """
    CREATE TABLE questions (            -- copied from the data dir so show/report need no data dir
        bench TEXT NOT NULL,
        question_id INTEGER NOT NULL,
        category TEXT NOT NULL,
        turns TEXT NOT NULL,            -- JSON list of the user turns
        reference TEXT,                 -- JSON list of the reference answer's turns, if any
        PRIMARY KEY (bench, question_id)
    ) WITHOUT ROWID;
    -- A rowid table: rows are kilobytes of text under random keys, which a WITHOUT ROWID
    -- B-tree stores twice as slowly; the unique index keeps look-ups by key fast.
    CREATE TABLE responses (
        key TEXT NOT NULL UNIQUE,       -- sha256 of the canonical request (engine/chat.py)
        api TEXT NOT NULL,
        label TEXT NOT NULL,
        model TEXT NOT NULL,
        request BLOB NOT NULL,          -- canonical request JSON, never a URL or key
        text TEXT NOT NULL,
        finish_reason TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        latency REAL,
        created REAL NOT NULL
    );
    CREATE TABLE answers (
        model TEXT NOT NULL,
        bench TEXT NOT NULL,
        question_id INTEGER NOT NULL,
        turn INTEGER NOT NULL,
        sample INTEGER NOT NULL DEFAULT 0,
        response_key TEXT NOT NULL,
        source TEXT NOT NULL,           -- 'generated' | 'imported'
        run_id INTEGER,
        created REAL NOT NULL,
        PRIMARY KEY (model, bench, question_id, turn, sample)
    ) WITHOUT ROWID;
    CREATE TABLE judgments (
        judge TEXT NOT NULL,            -- judge label from the config
        judge_model TEXT NOT NULL,      -- served model string
        judge_api TEXT NOT NULL,        -- 'openai' | 'anthropic' | 'import'
        bench TEXT NOT NULL,
        kind TEXT NOT NULL,             -- 'single' | 'pair'
        model TEXT NOT NULL,            -- single: the model; pair: model_1
        opponent TEXT NOT NULL,         -- pair: model_2; single: ''
        question_id INTEGER NOT NULL,
        turn INTEGER NOT NULL,
        game INTEGER NOT NULL,          -- pair: 1 (A = model_1) or 2 (swapped); single: 0
        sample INTEGER NOT NULL DEFAULT 0,
        prompt_name TEXT NOT NULL,
        score REAL,                     -- single: rating, -1 when unparsable
        winner TEXT,                    -- pair: 'model_1' | 'model_2' | 'tie' | 'error'
        parse_status TEXT NOT NULL,
        response_key TEXT NOT NULL,
        run_id INTEGER,
        created REAL NOT NULL,
        PRIMARY KEY (judge, judge_model, judge_api, bench, kind, model, opponent,
                     question_id, turn, game, sample)
    ) WITHOUT ROWID;
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        command TEXT NOT NULL,
        started REAL NOT NULL,
        finished REAL,
        status TEXT NOT NULL,           -- 'running' | 'ok' | 'failed' | 'interrupted'
        config TEXT NOT NULL,           -- JSON snapshot without secrets
        counts TEXT                     -- JSON: sent, cached, failed, ...
    );
    CREATE TABLE failures (
        run_id INTEGER NOT NULL,
        job TEXT NOT NULL,              -- e.g. 'generate alpha q81 t1'
        kind TEXT NOT NULL,             -- 'generate' | 'judge'
        model TEXT NOT NULL,
        question_id INTEGER NOT NULL,
        turn INTEGER NOT NULL,
        error_class TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        message TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX failures_by_run ON failures (run_id);
    """,
    # 2: what each response cost, at the prices configured when it was paid for (NULL: no price)
    """
    ALTER TABLE responses ADD COLUMN cost REAL;
    """,
    # 3: model servers started and not yet stopped, so the next run stops those a crash left
    """
    CREATE TABLE servers (
        id INTEGER PRIMARY KEY,
        launcher TEXT NOT NULL,         -- 'local': a process group on `host`
        job_id TEXT,                    -- the launcher's job id, for launchers that have one
        name TEXT NOT NULL,             -- the model label it served
        host TEXT NOT NULL,
        boot_id TEXT,                   -- the host's boot: after a reboot the pid means nothing
        pid INTEGER,
        pgid INTEGER,                   -- its process group, which its workers share
        start_time INTEGER,             -- /proc/<pid>/stat field 22: a recycled pid differs
        command TEXT NOT NULL,
        log_file TEXT,
        started REAL NOT NULL
    );
    """,
    # 4: reasoning models. `responses.text` stays the content as sent (inline <think> included);
    # thinking that came in a field of its own is kept beside it, with OpenAI's count of
    # reasoning tokens (NULL: unknown). A judge's reasoning settings (effort, thinking budget)
    # change its grades, so each judgment records the settings it was made with.
    """
    ALTER TABLE responses ADD COLUMN reasoning TEXT;
    ALTER TABLE responses ADD COLUMN reasoning_tokens INTEGER;
    ALTER TABLE judgments ADD COLUMN judge_settings TEXT;  -- JSON, e.g. {"thinking": 4096}
    """,
    # 5: judge panels, as the latest run or judge with a [panel] defined them, so `show` and
    # `report` show a panel's leaderboard without the config
    """
    CREATE TABLE panels (
        bench TEXT NOT NULL,
        name TEXT NOT NULL,
        judges TEXT NOT NULL,           -- JSON list of judge labels
        aggregate TEXT NOT NULL,        -- 'mean' | 'median' (ratings; verdicts: majority)
        run_id INTEGER,
        created REAL NOT NULL,
        PRIMARY KEY (bench, name)
    ) WITHOUT ROWID;
    """,
    # 6: what each checkpoint's files were when a run first served it, so a checkpoint rewritten
    # after it was scored (its answers are cached under its label, not its content) is reported
    """
    CREATE TABLE checkpoint_files (
        label TEXT PRIMARY KEY,         -- the model label its answers are stored under
        path TEXT NOT NULL,             -- the checkpoint, as served
        files TEXT NOT NULL,            -- JSON [[relative path, size, mtime_ns], ...], sorted
        run_id INTEGER,
        created REAL NOT NULL
    ) WITHOUT ROWID;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
