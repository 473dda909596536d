"""Watch mode: score each checkpoint of a sweep as soon as training has finished writing it.

`mtbench run -c sweep.toml --watch` polls every sweep's `checkpoints` glob. A match that is
complete (`engine.run.readiness`) and not yet scored goes, with the others found in the same
poll, through the ordinary run (`engine.run.runner.execute`: servers, slots, the judge pipelined),
so an already-scored checkpoint costs nothing but a look at the store, and a restarted watcher
picks up where the last one stopped. Checkpoints that complete while a run goes are taken by the
next one, started as soon as that run ends. A checkpoint whose run failed (its server would not
start, its answers or judgments failed) is tried again a poll later, up to its sweep's
`max_checkpoint_attempts`, and then left failed with its reason. A scored checkpoint whose files
change (`engine.run.checkpoint_contents`) is reported once as changed after scoring and never run
again: its label's answers are the old content's.

Whatever the first run would refuse (the data, the questions, GPUs, the store's path) is refused
before the first poll, as a plain run refuses it before its first request.

The watcher ends when no new checkpoint has appeared and no run has ended for `until_idle`
seconds, or once `stop_file` exists and the checkpoints it found there are run (a trainer writes
its last checkpoint, then the stop file: that checkpoint, still settling, must not be left out);
a stop through the `RunControl` (the CLI's Ctrl-C) ends a run as it ends any run, and the sleep
between polls at once. `show` is handed a `WatchStatus` at every poll with nothing to run, to say
what the watcher is waiting for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from engine.config import ModelConfig, RunConfig
from engine.config_sweeps import CheckpointSweep
from engine.config_tables import reject_duplicates
from engine.errors import ConfigError, StoreBusy
from engine.run.checkpoint_contents import changed_after_scoring
from engine.run.control import RunControl
from engine.run.progress import ProgressView
from engine.run.readiness import ReadinessTracker
from engine.run.runner import Command, RunResult, check, execute, reap_leftovers

__all__ = [
    "CheckpointOutcome",
    "Waiting",
    "WatchOptions",
    "WatchResult",
    "WatchStatus",
    "watch",
]

log = logging.getLogger(__name__)

# "gone": no longer matched (a trainer deleting old checkpoints) before it could be scored;
# "changed": its files changed after it was scored (the reason says what to do)
Outcome = Literal["scored", "failed", "retrying", "waiting", "gone", "changed"]


@dataclass(frozen=True, slots=True)
class WatchOptions:
    poll: float = 60.0  # seconds between looks at the globs
    until_idle: float | None = None  # end after this long with no new checkpoint and no run
    stop_file: Path | None = None  # end once this exists and what is complete has run


@dataclass(frozen=True, slots=True)
class Waiting:
    label: str
    reason: str  # "no config.json yet", "settling, 12 s", "failed 1 of 3, retry in 40 s"


@dataclass(frozen=True, slots=True)
class WatchStatus:
    """What the watcher has done and is waiting for, at one poll."""

    scored: tuple[str, ...]
    failed: tuple[str, ...]  # failed for good
    waiting: tuple[Waiting, ...]
    idle: float  # seconds with no new checkpoint and no run
    changed: tuple[str, ...] = ()  # changed after scoring: their scores are the old content's


@dataclass(frozen=True, slots=True)
class CheckpointOutcome:
    label: str
    outcome: Outcome
    attempts: int
    reason: str  # why it failed, or what it waits for; "" once scored
    path: str = ""  # the checkpoint: two sweeps may each have a `step-100`


@dataclass(frozen=True, slots=True)
class WatchResult:
    runs: tuple[RunResult, ...]
    checkpoints: tuple[CheckpointOutcome, ...]
    ended_by: Literal["idle", "stop file"]
    failed_models: tuple[str, ...] = ()  # models that are not checkpoints whose run failed

    @property
    def ok(self) -> bool:
        """Every model run is fine: no checkpoint's last attempt failed, no other model failed
        (checkpoints still waiting for their marker or to settle are not failures)."""
        failed = any(c.outcome in ("failed", "retrying") for c in self.checkpoints)
        return not failed and not self.failed_models


@dataclass(slots=True)
class _Checkpoint:
    model: ModelConfig
    sweep: CheckpointSweep
    attempts: int = 0
    scored: bool = False
    failure: str = ""
    retry_at: float = 0.0
    held: str = ""  # why its last run could not start (the store busy): no attempt spent
    refused: bool = False  # its label is another model's: never run, `failure` says why
    changed: str = ""  # changed after scoring (what the user was told): never run again

    @property
    def label(self) -> str:
        return self.model.name

    @property
    def given_up(self) -> bool:
        return not self.scored and (self.refused or self.attempts >= self.sweep.max_attempts)


Key = tuple[str, str]  # (the sweep's table, the label): two sweeps may both find a `step-100`


@dataclass(slots=True)
class _State:
    checkpoints: dict[Key, _Checkpoint] = field(default_factory=dict)
    waiting: dict[Key, str] = field(default_factory=dict)  # what each waits for
    present: set[Key] = field(default_factory=set)  # what the last look matched
    pending: bool = False  # the last look found a checkpoint settling or due for a retry
    runs: list[RunResult] = field(default_factory=list)
    failed_models: set[str] = field(default_factory=set)  # not checkpoints


async def watch(
    config: RunConfig,
    command: Command,
    *,
    options: WatchOptions,
    data_flag: str | None = None,
    progress: ProgressView | None = None,
    control: RunControl | None = None,
    show: Callable[[WatchStatus], None] | None = None,
) -> WatchResult:
    """Score the config's sweeps as their checkpoints land (see the module docstring);
    `config.models` (models that are not checkpoints) run with the first batch."""
    watcher = _Watcher(config, command, options, data_flag, progress, control or RunControl())
    return await watcher.run(show or _ignore)


def _ignore(status: WatchStatus) -> None:
    pass


class _Watcher:
    def __init__(
        self,
        config: RunConfig,
        command: Command,
        options: WatchOptions,
        data_flag: str | None,
        progress: ProgressView | None,
        control: RunControl,
    ) -> None:
        self.config, self.command, self.options = config, command, options
        self.data_flag, self.progress, self.control = data_flag, progress, control
        self.readiness = ReadinessTracker()
        self.state = _State()

    async def run(self, show: Callable[[WatchStatus], None]) -> WatchResult:
        fixed = list(self.config.models)
        await self._refuse_at_start()
        await reap_leftovers(self.config)  # a crashed watcher's servers: not when one lands
        active = time.monotonic()  # when a checkpoint last appeared or a run last ended
        stopping = False  # the stop file is there: finish what the trainer left, then end
        while True:
            stopping = stopping or self._stop_file_there()
            due, appeared = self._look()
            due = self._unchanged(due)
            self.readiness.started()
            if (due or fixed) and await self._score(fixed, due):
                fixed = []
                active = time.monotonic()
                continue  # checkpoints may have landed while it ran
            on_its_way = bool(appeared or due or self.state.pending)  # one will run soon
            if stopping and not on_its_way:
                return self._result("stop file")
            if on_its_way:  # not idle
                active = time.monotonic()
            idle = time.monotonic() - active
            show(self._status(idle))
            until_idle = self.options.until_idle
            if until_idle is not None and idle >= until_idle:
                return self._result("idle")
            pause = self.options.poll
            if until_idle is not None:
                pause = min(pause, until_idle - idle)
            await asyncio.sleep(pause)

    async def _refuse_at_start(self) -> None:
        """What the first run would refuse (data, questions, GPUs, the store), and a folder the
        globs can never list, refused now: the first checkpoint may land hours from now. Each
        sweep's template stands in for its checkpoints, named by its glob's last part
        (`step-*`) in what is refused."""
        for sweep in self.config.sweeps:
            problem = sweep.folder_problem()
            if problem is not None:
                raise ConfigError(f"{sweep.where} key 'checkpoints': {problem}")
        templates = tuple(
            replace(sweep.template, name=Path(sweep.pattern).name) for sweep in self.config.sweeps
        )
        stand_ins = replace(self.config, models=(*self.config.models, *templates))
        await check(stand_ins, self.command, data_flag=self.data_flag)

    def _stop_file_there(self) -> bool:
        return self.options.stop_file is not None and _exists(self.options.stop_file)

    def _look(self) -> tuple[list[_Checkpoint], bool]:
        """The checkpoints to run now, and whether any match was seen for the first time."""
        due: list[_Checkpoint] = []
        appeared = False
        now = time.monotonic()
        self.state.waiting.clear()
        self.state.present.clear()
        self.state.pending = False
        for sweep in self.config.sweeps:
            found, clashes = sweep.watched_matches()
            for label, path in found:
                key = (sweep.where, label)
                self.state.present.add(key)
                checkpoint = self.state.checkpoints.get(key)
                if checkpoint is None:
                    appeared = True
                    checkpoint = self.state.checkpoints[key] = self._new(sweep, label, path)
                if checkpoint.scored or checkpoint.given_up or checkpoint.changed:
                    continue
                if checkpoint.model.checkpoint != str(path):  # step-100.tmp gone, step-100.pt
                    checkpoint.model = sweep.model_for(label, path)
                reason = clashes.get(label) or self._waiting_for(checkpoint, label, path, now)
                if reason is None:
                    due.append(checkpoint)
                else:
                    self.state.waiting[key] = reason
        return due, appeared

    def _unchanged(self, due: list[_Checkpoint]) -> list[_Checkpoint]:
        """`due` but for checkpoints changed since their stored answers were generated (a
        restarted watcher's); a scored checkpoint whose files changed is marked too. Each is
        reported once, with what to do, and never run again under its label."""
        scored = [
            checkpoint
            for key, checkpoint in self.state.checkpoints.items()
            if checkpoint.scored and not checkpoint.changed and key in self.state.present
        ]
        looked = [*scored, *due]
        if not looked:
            return due
        changed = changed_after_scoring(self.config.store, (c.model for c in looked))
        for checkpoint in looked:
            line = changed.get(checkpoint.label)
            if line is not None:
                checkpoint.changed = line
                log.warning(line)
        return [checkpoint for checkpoint in due if not checkpoint.changed]

    def _new(self, sweep: CheckpointSweep, label: str, path: Path) -> _Checkpoint:
        """A checkpoint seen for the first time; refused if its label is another model's (a plain
        run refuses such a config; a watcher must not score one model's answers as another's)."""
        checkpoint = _Checkpoint(sweep.model_for(label, path), sweep)
        owner = self._owner(sweep, label)
        if owner is not None:
            checkpoint.refused = True
            checkpoint.failure = (
                f"not run: {owner} has the same label; labels must be unique (give the "
                f"{sweep.where} table a name)"
            )
        return checkpoint

    def _owner(self, sweep: CheckpointSweep, label: str) -> str | None:
        """What else is labelled `label`, if anything: a model, a judge, another sweep's."""
        if any(model.name == label for model in self.config.models):
            return f"the [[model]] named {label!r}"
        if any(judge.label == label for judge in self.config.judges):
            return f"the judge named {label!r}"
        for (where, other), checkpoint in self.state.checkpoints.items():
            if other == label and where != sweep.where and not checkpoint.refused:
                return f"{checkpoint.model.checkpoint} (of {where})"
        return None

    def _waiting_for(
        self, checkpoint: _Checkpoint, label: str, path: Path, now: float
    ) -> str | None:
        reason = self.readiness.waiting_for(checkpoint.sweep, label, path)
        if reason is not None or checkpoint.retry_at <= now:
            self.state.pending |= self.readiness.settling(label)
            return reason
        self.state.pending = True
        retry = f"retry in {checkpoint.retry_at - now:.0f} s"
        if checkpoint.held:
            return f"{checkpoint.held}, {retry}"
        return f"failed {checkpoint.attempts} of {checkpoint.sweep.max_attempts}, {retry}"

    async def _score(self, fixed: list[ModelConfig], due: list[_Checkpoint]) -> bool:
        """Run `fixed` and `due` together; False if the store was busy (another command writes
        it): nothing ran, and they are tried again a poll later at no attempt's cost."""
        models = (*fixed, *(checkpoint.model for checkpoint in due))
        reject_duplicates(self.config.source, models, self.config.judges)
        try:
            result = await execute(
                replace(self.config, models=models),
                self.command,
                data_flag=self.data_flag,
                progress=self.progress,
                control=self.control,
            )
        except StoreBusy as busy:
            retry_at = time.monotonic() + self.options.poll
            for checkpoint in due:
                checkpoint.held, checkpoint.retry_at = busy.reason, retry_at
                self.state.waiting[checkpoint.sweep.where, checkpoint.label] = busy.reason
            return False
        self.state.runs.append(result)
        failures: dict[str, str] = {}
        for failure in result.failures:
            failures.setdefault(failure.model, f"{failure.error_class}: {failure.message}")
        self.state.failed_models.update(model.name for model in fixed if model.name in failures)
        retry_at = time.monotonic() + self.options.poll
        for checkpoint in due:
            checkpoint.attempts += 1
            reason = failures.get(checkpoint.model.name)
            checkpoint.scored = reason is None
            checkpoint.failure = reason or ""
            checkpoint.retry_at = retry_at
            checkpoint.held = ""
            self.readiness.forget(checkpoint.model.name)
        return True

    def _status(self, idle: float) -> WatchStatus:
        checkpoints = self.state.checkpoints.values()
        return WatchStatus(
            scored=tuple(c.label for c in checkpoints if c.scored and not c.changed),
            failed=tuple(c.label for c in checkpoints if c.given_up),
            waiting=tuple(Waiting(label, why) for (_, label), why in self.state.waiting.items()),
            idle=idle,
            changed=tuple(c.label for c in checkpoints if c.changed),
        )

    def _result(self, ended_by: Literal["idle", "stop file"]) -> WatchResult:
        outcomes = [
            _outcome(checkpoint, self.state.waiting.get(key), key in self.state.present)
            for key, checkpoint in self.state.checkpoints.items()
        ]
        failed = tuple(sorted(self.state.failed_models))
        return WatchResult(tuple(self.state.runs), tuple(outcomes), ended_by, failed)


def _exists(path: Path) -> bool:
    """Whether the stop file is there; one that cannot be looked at (a directory the watcher
    may not search, refused at the start but changed since) is not."""
    try:
        path.stat()
    except OSError:
        return False
    return True


def _outcome(checkpoint: _Checkpoint, waiting: str | None, present: bool) -> CheckpointOutcome:
    outcome = _bare_outcome(checkpoint, waiting, present)
    return replace(outcome, path=checkpoint.model.checkpoint or "")


def _bare_outcome(checkpoint: _Checkpoint, waiting: str | None, present: bool) -> CheckpointOutcome:
    label = checkpoint.label
    if checkpoint.changed:
        return CheckpointOutcome(label, "changed", checkpoint.attempts, checkpoint.changed)
    if checkpoint.scored:
        return CheckpointOutcome(label, "scored", checkpoint.attempts, "")
    if checkpoint.given_up:
        return CheckpointOutcome(label, "failed", checkpoint.attempts, checkpoint.failure)
    if not present:  # deleted (a trainer keeping its last few): there is nothing to retry
        gone = "no longer matches the checkpoints glob"
        if checkpoint.attempts:
            gone += f", after {checkpoint.attempts} failed run(s): {checkpoint.failure}"
        return CheckpointOutcome(label, "gone", checkpoint.attempts, gone)
    if checkpoint.attempts:
        return CheckpointOutcome(label, "retrying", checkpoint.attempts, checkpoint.failure)
    return CheckpointOutcome(label, "waiting", 0, waiting or "")
