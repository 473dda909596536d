"""A sweep into an MLflow run: each checkpoint's scores at its training step, each step once.

MLflow chooses run ids itself, so the sweep's stable key is a tag (`mtbench.run_key`) and the run
is found again by it in the `mtbench` experiment. The steps it already holds are read from its
`mtbench/overall` history, and only the others are logged (MLflow, unlike W&B, takes them in any
order, so a checkpoint judged late still lands). Params are set once, when the run is created
(MLflow refuses to change one); the engine version and the best checkpoint are tags, updated on
every export. Any tracking URI MLflow takes works: `http://host:5000`, `sqlite:///mlflow.db`.

A tracker that refuses is one line: MLflow retries an unreachable server for minutes and a SQLite
file it cannot open for over a minute, logging each try to stderr, and raises SQLAlchemy's and
requests' errors as well as its own. So its loggers are quiet during the export, its HTTP retries
are few unless the user's environment says otherwise, a SQLite file is opened once up front, and
any error becomes a `TrackerError` with its first line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

from engine import __version__
from engine.interop.trackers import (
    ExportedRun,
    TrackedSweep,
    TrackerError,
    best_summary,
    checkpoint_metrics,
    metric_key,
    run_params,
)

__all__ = ["EXPERIMENT", "RUN_KEY_TAG", "export_sweep"]

EXPERIMENT = "mtbench"
RUN_KEY_TAG = "mtbench.run_key"


# Unless set: ~5 s against an unreachable server instead of MLflow's 7 retries over minutes.
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
_NOISY_LOGGERS = ("mlflow", "urllib3", "alembic", "sqlalchemy")


def export_sweep(tracked: TrackedSweep, uri: str) -> ExportedRun:
    from mlflow.exceptions import MlflowException

    _open_sqlite(uri)
    try:
        with _quiet_and_brief():
            return _export(tracked, uri)
    except MlflowException as exc:
        raise TrackerError(f"MLflow at {uri}: {_reason(exc, exc.message)}") from None
    except Exception as exc:  # SQLAlchemy's, requests' and the filesystem's errors
        raise TrackerError(f"MLflow at {uri}: {_reason(exc, str(exc))}") from None


def _reason(exc: BaseException, message: str) -> str:
    """The database's own error when SQLAlchemy wrapped one (its message starts with advice
    about autoflush), else the message's first line."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        original = getattr(seen, "orig", None)
        if isinstance(original, Exception):
            return f"{type(original).__name__}: {original}"
        seen = seen.__cause__ or seen.__context__
    return (message.strip().splitlines() or ["failed"])[0]


def _open_sqlite(uri: str) -> None:
    """A `sqlite:///PATH` store that cannot be opened or written fails now, in one line, not
    after MLflow's retries or halfway through."""
    if not uri.startswith("sqlite:///"):
        return
    path = uri.removeprefix("sqlite:///")
    if path in ("", ":memory:"):
        return
    try:
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)  # as MLflow does
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as connection:
            connection.execute("BEGIN IMMEDIATE")  # takes the write lock: a read-only file fails
            connection.execute("ROLLBACK")
    except (OSError, sqlite3.Error) as exc:
        raise TrackerError(f"MLflow at {uri}: cannot open {path} ({exc})") from None


@contextlib.contextmanager
def _quiet_and_brief() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    unset = [key for key in _HTTP_DEFAULTS if key not in os.environ]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    os.environ.update({key: _HTTP_DEFAULTS[key] for key in unset})
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        for key in unset:
            os.environ.pop(key, None)


def _export(tracked: TrackedSweep, uri: str) -> ExportedRun:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run_id = _find_or_create_run(client, tracked, [Param(k, str(v)) for k, v in _params(tracked)])
    logged_steps = {m.step for m in client.get_metric_history(run_id, metric_key("overall"))}
    logged = skipped = 0
    for checkpoint in tracked.complete_checkpoints():
        if checkpoint.step in logged_steps:
            skipped += 1
            continue
        metrics = [
            Metric(key, value, 0, checkpoint.step)
            for key, value in checkpoint_metrics(checkpoint).items()
        ]
        client.log_batch(run_id, metrics=metrics)
        logged += 1
    tags = {"mtbench.engine_version": __version__}
    tags.update({f"mtbench.{key}": str(value) for key, value in best_summary(tracked).items()})
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    return ExportedRun(
        run_id, tracked.sweep, tracked.judge.name, logged, skipped, tuple(tracked.sharing_a_step())
    )


def _params(tracked: TrackedSweep) -> list[tuple[str, Any]]:
    return sorted(run_params(tracked).items())


def _find_or_create_run(client: Any, tracked: TrackedSweep, params: list[Any]) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{tracked.run_key}'"
    )
    if found:
        return str(found[0].info.run_id)
    run = client.create_run(
        experiment_id, run_name=tracked.run_name, tags={RUN_KEY_TAG: tracked.run_key}
    )
    client.log_batch(run.info.run_id, params=params)
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)
