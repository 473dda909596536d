"""Server slots: how many model servers run at once, and which GPUs each one owns.

A slot is a place for one server: on the local machine, a fixed set of GPUs (`engine.serving.gpus`);
on a Slurm cluster, one job (Slurm picks its GPUs). A checkpoint with `replicas = k` takes k slots
at once, all or nothing: taking them one by one would let two such checkpoints each hold half of
the slots and wait for the other forever. Waiters are served first come, first served, so a big
ask is not starved by small ones slipping past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from engine.config import ModelConfig, RunConfig
from engine.errors import ConfigError
from engine.serving.gpus import local_slot_gpus, visible_gpus

__all__ = ["SLURM_COMMANDS", "SlotPlan", "SlotPool", "launcher_of", "plan_slots"]

# What the Slurm launcher runs: sbatch submits a job, scontrol watches it, scancel ends it. Without
# any one of them a job would be submitted and then never seen running, or never cancelled.
SLURM_COMMANDS = ("sbatch", "scontrol", "scancel")


def launcher_of(model: ModelConfig) -> str:
    return model.launcher or "local"


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """The run's slots per launcher: each local slot's GPUs, and how many Slurm jobs at once."""

    local: tuple[tuple[str, ...], ...]
    slurm: int


def plan_slots(
    config: RunConfig, models: Sequence[ModelConfig], gpus: Sequence[str] | None = None
) -> SlotPlan:
    """The slots the served `models` need; a ConfigError when they cannot fit.

    `gpus` are the visible GPUs, looked up (`visible_gpus`) only when a local model is served.
    """
    served = [model for model in models if model.serve]
    local = [model for model in served if launcher_of(model) == "local"]
    on_slurm = [model for model in served if launcher_of(model) == "slurm"]
    if gpus is None:
        gpus = visible_gpus() if local else ()
    slurm_slots = config.server_slots or 1
    missing = [name for name in SLURM_COMMANDS if shutil.which(name) is None]
    if on_slurm and missing:
        raise ConfigError(
            f"{config.source}: [[model]] {on_slurm[0].name!r} key 'launcher' = \"slurm\": "
            f"{' and '.join(missing)} not on PATH; run mtbench where Slurm's commands are, or "
            "use the local launcher"
        )
    for model in on_slurm:
        if model.replicas > slurm_slots:
            raise ConfigError(
                f"{config.source}: [[model]] {model.name!r} key 'replicas' = {model.replicas}: "
                f"only {slurm_slots} server slot(s); lower replicas or raise server_slots"
            )
    return SlotPlan(local_slot_gpus(config.source, local, config.server_slots, gpus), slurm_slots)


class SlotPool:
    """Numbered slots, each with its GPUs; `take(k)` waits for k free ones and takes them."""

    def __init__(self, slots: int | Sequence[tuple[str, ...]]) -> None:
        gpus = [()] * slots if isinstance(slots, int) else list(slots)
        if not gpus:
            raise ValueError("a SlotPool needs at least one slot")
        self.gpus: tuple[tuple[str, ...], ...] = tuple(gpus)
        self._free = list(range(len(gpus)))
        self._waiters: deque[tuple[int, asyncio.Future[tuple[int, ...]]]] = deque()

    async def take(self, count: int = 1) -> tuple[int, ...]:
        """Wait until `count` slots are free (behind earlier waiters) and take them."""
        if not 1 <= count <= len(self.gpus):
            raise ValueError(f"cannot take {count} of {len(self.gpus)} slots")
        if not self._waiters and len(self._free) >= count:
            return self._grant(count)
        waiter: asyncio.Future[tuple[int, ...]] = asyncio.get_running_loop().create_future()
        entry = (count, waiter)
        self._waiters.append(entry)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_back(waiter.result())  # granted just as the waiter was cancelled
            elif entry in self._waiters:
                self._waiters.remove(entry)
                self._wake()  # those behind it may fit now
            raise

    def give_back(self, numbers: Sequence[int]) -> None:
        self._free.extend(numbers)
        self._free.sort()
        self._wake()

    async def acquire(self) -> int:
        return (await self.take(1))[0]

    def release(self, number: int) -> None:
        self.give_back((number,))

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        number = await self.acquire()
        try:
            yield number
        finally:
            self.release(number)

    def _grant(self, count: int) -> tuple[int, ...]:
        taken, self._free = self._free[:count], self._free[count:]
        return tuple(taken)

    def _wake(self) -> None:
        while self._waiters and len(self._free) >= self._waiters[0][0]:
            count, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(self._grant(count))
