"""A sweep into an MLflow run: each checkpoint's scores at its training step, each step once.

MLflow chooses run ids itself, so the sweep's stable key is a tag (`mtbench.run_key`) and the run
is found again by it in the `mtbench` experiment. The steps it already holds are read from its
`mtbench/overall` history, and only the others are logged (MLflow, unlike W&B, takes them in any
order, so a checkpoint judged late still lands). Params are set once, when the run is created
(MLflow refuses to change one); the engine version and the best checkpoint are tags, updated on
every export. Any tracking URI MLflow takes works: `http://host:5000`, `sqlite:///mlflow.db`.
"""

from __future__ import annotations

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


def export_sweep(tracked: TrackedSweep, uri: str) -> ExportedRun:
    from mlflow.exceptions import MlflowException

    try:
        return _export(tracked, uri)
    except MlflowException as exc:
        raise TrackerError(f"MLflow at {uri}: {exc.message}") from None


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
