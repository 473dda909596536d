"""A sweep into a W&B run: each checkpoint's scores at its training step, each step once.

The run's id is the sweep's stable key, opened with `resume="allow"`, so every export lands in
the same run. W&B takes a run's steps in increasing order only: a step at or below the last one
the run holds is not logged again (it is there already, or W&B would drop it). Online, the resumed
run says where it stands (`run.step`); offline (`WANDB_MODE=offline`), each export is a new
folder that `wandb sync` merges, so the earlier folders of the same id are read
(`engine.interop.wandb_records`) to find the last step logged. Nothing is printed by W&B.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.interop.trackers import (
    METRIC_PREFIX,
    ExportedRun,
    TrackedSweep,
    TrackerError,
    best_summary,
    checkpoint_metrics,
    run_params,
)
from engine.interop.wandb_records import offline_runs, read_offline_run

__all__ = ["export_sweep"]


def export_sweep(tracked: TrackedSweep, project: str) -> ExportedRun:
    import wandb

    _check_offline_folder()
    _wait_for_a_new_folder_name(tracked.run_key)
    try:
        run = wandb.init(
            project=project,
            id=tracked.run_key,
            name=tracked.run_name,
            resume="allow",
            config=run_params(tracked),
            settings=wandb.Settings(silent=True, console="off"),
        )
    except Exception as exc:  # W&B raises its own errors and plain ones (no login, no network)
        wandb.teardown()  # else its service keeps the settings that failed for the next export
        raise TrackerError(f"W&B could not open run {tracked.run_key}: {exc}") from None
    try:
        exported, steps = _log_new_steps(run, tracked)
    finally:
        run.finish()
        # finish() can return before W&B's service has written the run's last records; the next
        # export (or `wandb sync`) must see them all, so the service is stopped, which flushes.
        wandb.teardown()
    if run.offline:
        _check_written(Path(run.dir).parent / f"run-{run.id}.wandb", steps)
    return exported


def _check_written(path: Path, steps: list[int]) -> None:
    """Offline, W&B's service fails to write quietly (a full disk leaves an empty file, and
    the export would say every step was logged): the file must hold every step logged."""
    held = _readable_history(path)
    lost = [step for step in steps if held is None or step not in held]
    if lost:
        raise TrackerError(
            f"W&B offline: {path} lacks {len(lost)} of the {len(steps)} steps logged "
            "(a full disk or an I/O error?); free space and export again"
        )


def _readable_history(path: Path) -> set[int] | None:
    """The steps an offline run file holds; None when it cannot be read at all (empty,
    no header: the service could not write it)."""
    try:
        return set(read_offline_run(path).history)
    except Exception:  # OSError, no header (ValueError), protobuf's DecodeError when cut short
        return None


def _log_new_steps(run: Any, tracked: TrackedSweep) -> tuple[ExportedRun, list[int]]:
    last, held = _logged_steps(run)
    logged = skipped = behind = 0
    steps: list[int] = []
    for checkpoint in tracked.complete_checkpoints():
        if last is not None and checkpoint.step <= last:
            if held is not None and checkpoint.step not in held:
                behind += 1  # completed after a later step was logged: W&B would drop it
            else:
                skipped += 1
            continue
        run.log(checkpoint_metrics(checkpoint), step=checkpoint.step)
        last = checkpoint.step
        steps.append(last)
        logged += 1
    for key, value in best_summary(tracked).items():
        run.summary[f"{METRIC_PREFIX}/{key}"] = value
    exported = ExportedRun(
        tracked.run_key,
        tracked.sweep,
        tracked.judge.name,
        logged,
        skipped,
        tuple(tracked.sharing_a_step()),
        behind,
    )
    return exported, steps


def _logged_steps(run: Any) -> tuple[int | None, set[int] | None]:
    """The highest step the run holds, and every step it holds when that is known: offline,
    from earlier folders of the same id; online, a resumed run tells only its last step."""
    steps = [run.step - 1] if run.step > 0 else []
    if not run.offline:
        return max(steps, default=None), None
    held: set[int] = set(steps)
    here = Path(run.dir).resolve().parent
    for path in offline_runs(here.parent, run.id):
        if path.parent.resolve() == here:
            continue
        try:
            earlier = read_offline_run(path)
        except Exception:  # empty or cut short (a full disk): it holds nothing sync can use
            continue
        # The id is the sweep's, whatever the project: another project's run is not this one.
        if earlier.project == run.project:
            held.update(earlier.history)
    return max(held, default=None), held


def _offline() -> bool:
    return os.environ.get("WANDB_MODE") in ("offline", "dryrun")


def _offline_folder() -> Path:
    """Where W&B writes offline runs by default: $WANDB_DIR/wandb, else ./wandb."""
    return Path(os.environ.get("WANDB_DIR") or ".") / "wandb"


def _check_offline_folder() -> None:
    """Offline, the run is the folder: W&B would quietly write it to the temporary directory
    when $WANDB_DIR cannot be written, where neither the next export nor the user looks."""
    if not _offline():
        return
    folder = _offline_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK | os.X_OK)
    except OSError as exc:
        raise TrackerError(f"W&B offline: cannot create {folder} ({exc.strerror})") from None
    if not writable:
        raise TrackerError(f"W&B offline: cannot write to {folder}; set WANDB_DIR to a folder")


def _wait_for_a_new_folder_name(run_id: str) -> None:
    """W&B names an offline run's folder after the second the run starts: a second export of
    the same run within that second would write into the first one's folder. Waits (under a
    second) until the name is new, for the folder W&B uses by default ($WANDB_DIR, else here)."""
    if not _offline():
        return
    wandb_dir = _offline_folder()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        if not (wandb_dir / f"offline-run-{stamp}-{run_id}").exists():
            return
        time.sleep(0.05)
