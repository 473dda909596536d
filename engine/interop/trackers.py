"""Score against step into the experiment tracker a team already uses: W&B or MLflow.

One tracker run per sweep and judge, found again by a key derived from the store, the judge's
identity and the sweep's name, so exporting again (as checkpoints keep landing) adds only the
checkpoints not logged yet and never duplicates a point. Each checkpoint's scores (overall, turn
1/2, per category, each with its 95% interval's bounds) are logged at its training step; only
complete checkpoints are logged (one still being judged would freeze a partial score). Two
checkpoints at one step (`step-100`, `step-0100`) are both left out and named. The
judge's identity, the sweep, the store and the engine's version are the run's config (W&B) or
params (MLflow); the best checkpoint goes in the summary (W&B) or tags (MLflow). The numbers are
those `mtbench show --sweep --json` prints: the same `SweepSummary`. The libraries are optional
extras (`pip install 'mtbench-engine[wandb]'`, `[mlflow]`) and imported only here, on use.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from engine import __version__
from engine.errors import MtbenchError
from engine.scoring.summaries import DEFAULT_RESAMPLES, DEFAULT_SEED
from engine.scoring.sweep import CheckpointSummary, Estimate, SweepSummary
from engine.store.rows import JudgeIdentity

__all__ = [
    "METRIC_PREFIX",
    "ExportedRun",
    "TrackedSweep",
    "TrackerError",
    "checkpoint_metrics",
    "export_to_mlflow",
    "export_to_wandb",
    "run_params",
    "tracker_problem",
]

METRIC_PREFIX = "mtbench"
_EXTRAS = {"wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow")}
_UNSAFE_KEY_CHARS = re.compile(r"[^\w.\- ]")


class TrackerError(MtbenchError):
    """The tracker refused or failed (no login, an unreachable server): exit 1, one line."""


@dataclass(frozen=True, slots=True)
class TrackedSweep:
    """One sweep as one judge graded it, and where it came from."""

    store: Path
    bench: str
    sweep: str
    judge: JudgeIdentity
    samples: int
    settings: tuple[str, ...]
    summary: SweepSummary

    @property
    def run_key(self) -> str:
        """Stable across exports: the same store, judge and sweep find the same run."""
        judge = self.judge
        parts = [str(self.store), self.bench, judge.name, judge.model, judge.api, self.sweep]
        digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
        return f"mtb-{digest[:24]}"

    @property
    def run_name(self) -> str:
        return f"{self.sweep} · {self.judge.name}"

    def complete_checkpoints(self) -> list[CheckpointSummary]:
        """Scored and fully judged checkpoints, in step order, each alone at its step."""
        summary = self.summary
        shared = set(self.sharing_a_step())
        return [
            c
            for c in summary.checkpoints
            if c.overall.score is not None and summary.complete(c) and c.label not in shared
        ]

    def sharing_a_step(self) -> list[str]:
        """Labels of checkpoints at a step another checkpoint has (`step-100`, `step-0100`).

        A tracker holds one point per step: logging one of them would be a guess, and both
        would be two points at one step (MLflow) or one dropped as 'already there' (W&B).
        """
        by_step: dict[int, list[str]] = {}
        for checkpoint in self.summary.checkpoints:
            by_step.setdefault(checkpoint.step, []).append(checkpoint.label)
        return [label for labels in by_step.values() if len(labels) > 1 for label in labels]


@dataclass(frozen=True, slots=True)
class ExportedRun:
    run_id: str
    sweep: str
    judge: str
    logged: int  # checkpoints logged by this export
    skipped: int  # complete checkpoints the run already had (W&B: or steps behind its last)
    shared: tuple[str, ...] = ()  # checkpoints left out: another one has their step
    behind: int = 0  # W&B: complete checkpoints left out, before a step the run already holds


def tracker_problem(tracker: str) -> str | None:
    """Why the tracker's library cannot be used (not installed, or broken: a dependency of the
    wrong version fails its import), or None."""
    module, extra = _EXTRAS[tracker]
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed; pip install 'mtbench-engine[{extra}]'"
    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or whatever its own imports raise
        return (
            f"{module} is installed but cannot be imported ({type(exc).__name__}: {exc}); "
            f"reinstall it: pip install --force-reinstall 'mtbench-engine[{extra}]'"
        )
    return None


def metric_key(name: str) -> str:
    """A key both trackers take: category names come from data files."""
    return f"{METRIC_PREFIX}/{_UNSAFE_KEY_CHARS.sub('_', name)}"


def checkpoint_metrics(checkpoint: CheckpointSummary) -> dict[str, float]:
    """What is logged at the checkpoint's step: each mean with its interval's bounds."""
    estimates: list[tuple[str, Estimate]] = [
        ("overall", checkpoint.overall),
        ("turn_1", checkpoint.turn_1),
        ("turn_2", checkpoint.turn_2),
        *[(f"category_{name}", estimate) for name, estimate in checkpoint.categories],
    ]
    metrics: dict[str, float] = {}
    for name, estimate in estimates:
        if estimate.score is None:
            continue
        metrics[metric_key(name)] = estimate.score
        if estimate.ci is not None:
            metrics[metric_key(f"{name}_ci_low")] = estimate.ci.low
            metrics[metric_key(f"{name}_ci_high")] = estimate.ci.high
    return metrics


def run_params(tracked: TrackedSweep) -> dict[str, str | int | float]:
    """The run's config (W&B) / params (MLflow): who judged, what, and with which engine."""
    judge = tracked.judge
    return {
        "sweep": tracked.sweep,
        "judge_name": judge.name,
        "judge_model": judge.model,
        "judge_api": judge.api,
        "judge_samples": tracked.samples,
        "judge_settings": orjson.dumps(list(tracked.settings)).decode(),
        "store": str(tracked.store),
        "bench": tracked.bench,
        "engine_version": __version__,
        "ci_confidence": tracked.summary.confidence,
        "bootstrap_resamples": DEFAULT_RESAMPLES,
        "bootstrap_seed": DEFAULT_SEED,
    }


def best_summary(tracked: TrackedSweep) -> dict[str, str | int | float]:
    """The best checkpoint so far: it changes as checkpoints land, so it is not a time series."""
    best = tracked.summary.best_checkpoint()
    if best is None or best.overall.score is None:
        return {}
    return {
        "best_checkpoint": best.label,
        "best_step": best.step,
        "best_overall": best.overall.score,
    }


def export_to_wandb(sweeps: Sequence[TrackedSweep], project: str) -> list[ExportedRun]:
    from engine.interop.wandb_export import export_sweep

    return [export_sweep(tracked, project) for tracked in sweeps]


def export_to_mlflow(sweeps: Sequence[TrackedSweep], uri: str) -> list[ExportedRun]:
    from engine.interop.mlflow_export import export_sweep

    return [export_sweep(tracked, uri) for tracked in sweeps]
