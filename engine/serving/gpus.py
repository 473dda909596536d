"""Which GPUs each local server slot owns, so that two model servers never share one.

Without this every vLLM of a sweep with `server_slots = 4` lands on GPU 0 and the second dies out
of memory. The GPUs are the ones this process may use: an outer `CUDA_VISIBLE_DEVICES` (a
scheduler's allocation, a user's choice) if set, otherwise the ones `nvidia-smi -L` lists. They
are carved into fixed, disjoint sets, one per slot, and a server gets its set as its own
`CUDA_VISIBLE_DEVICES`. The ids are the outer ones, as written (`3,5`, or UUIDs): a child's
`CUDA_VISIBLE_DEVICES` names devices as the driver does, not as positions in the parent's mask,
so handing out mask-relative indices (`0,1` for an outer `3,5,6,7`) would pin the wrong GPUs.

Everything here but `nvidia_smi_gpus` is pure: the run's slots follow from the config and the
visible list, and every impossible ask is a ConfigError naming the keys to change.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence

from engine.config import ModelConfig
from engine.errors import ConfigError

__all__ = ["carve_slots", "local_slot_gpus", "nvidia_smi_gpus", "visible_gpus"]

_NVIDIA_SMI_LINE = re.compile(r"^GPU (\d+):", re.MULTILINE)
_GPU_PLACEHOLDERS = ("{gpus}", "{num_gpus}")
# What CUDA takes in CUDA_VISIBLE_DEVICES: an index, or a GPU's or MIG instance's UUID.
_CUDA_DEVICE = re.compile(r"\d+|(?:GPU|MIG)-\S+")
_IDS_SHOWN = 16


def nvidia_smi_gpus() -> tuple[str, ...]:
    """The GPU indices `nvidia-smi -L` lists; none when it is missing or fails."""
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    if listed.returncode != 0:
        return ()
    return tuple(_NVIDIA_SMI_LINE.findall(listed.stdout))


def visible_gpus(
    environ: Mapping[str, str] | None = None, listed: Sequence[str] | None = None
) -> tuple[str, ...]:
    """The GPUs this process may use: `CUDA_VISIBLE_DEVICES` when set (empty or -1: none),
    else the machine's (`listed`, by default from nvidia-smi). Each GPU once: a repeated id
    (`0,0,1,1`) is one GPU, and two slots holding it would put two servers on it."""
    environ = os.environ if environ is None else environ
    mask = environ.get("CUDA_VISIBLE_DEVICES")
    if mask is None:
        return tuple(dict.fromkeys(nvidia_smi_gpus() if listed is None else listed))
    ids: dict[str, None] = {}
    for raw in mask.split(","):
        gpu = raw.strip()
        if not _CUDA_DEVICE.fullmatch(gpu):
            break  # CUDA stops at the first invalid entry (-1, NoDevFiles...), and so do we
        ids.setdefault(gpu)
    return tuple(ids)


def carve_slots(gpus: Sequence[str], per_slot: int, slots: int) -> tuple[tuple[str, ...], ...]:
    """`slots` disjoint sets of `per_slot` GPUs, in the order given."""
    return tuple(tuple(gpus[i * per_slot : (i + 1) * per_slot]) for i in range(slots))


def local_slot_gpus(
    source: str,
    models: Sequence[ModelConfig],
    server_slots: int | None,
    gpus: Sequence[str],
) -> tuple[tuple[str, ...], ...]:
    """Each local slot's GPUs (one entry per slot); a ConfigError when the ask cannot fit.

    `models` are the served models the local launcher starts. A slot is as large as the largest
    `gpus_per_server`; a model that needs fewer takes the first ones of its slot. With no GPU
    visible, slots own none (CPU servers such as llama.cpp), unless a model asks for GPUs.
    """
    if not models:
        return carve_slots((), 0, server_slots or 1)
    per_slot = max(_gpus_per_server(model) for model in models)
    if not gpus:
        _refuse_gpu_asks(source, models)
        return _checked_replicas(source, models, carve_slots((), 0, server_slots or 1))
    if per_slot == 0:
        return _checked_replicas(source, models, carve_slots((), 0, server_slots or 1))
    fits = len(gpus) // per_slot
    if fits == 0:
        widest = max(models, key=_gpus_per_server)
        raise ConfigError(
            f"{source}: [[model]] {widest.name!r} key 'gpus_per_server' = {per_slot}: only "
            f"{_gpu_count(gpus)} visible; lower gpus_per_server or run where more GPUs are visible"
        )
    slots = fits if server_slots is None else server_slots
    if slots > fits:
        raise ConfigError(
            f"{source}: top-level key 'server_slots' = {slots}: {slots} servers of "
            f"{per_slot} GPU(s) need {slots * per_slot}, and {_gpu_count(gpus)} visible; "
            f"use server_slots = {fits} or leave it out"
        )
    return _checked_replicas(source, models, carve_slots(gpus, per_slot, slots))


def _gpus_per_server(model: ModelConfig) -> int:
    return 1 if model.gpus_per_server is None else model.gpus_per_server


def _refuse_gpu_asks(source: str, models: Sequence[ModelConfig]) -> None:
    for model in models:
        asks = (model.gpus_per_server or 0) > 0
        uses = any(p in (model.serve or "") for p in _GPU_PLACEHOLDERS)
        if asks or uses:
            key = "gpus_per_server" if asks else "serve"
            raise ConfigError(
                f"{source}: [[model]] {model.name!r} key {key!r} asks for GPUs, and none is "
                "visible (CUDA_VISIBLE_DEVICES is unset and `nvidia-smi -L` lists none); run "
                'where GPUs are visible, or use launcher = "slurm"'
            )


def _checked_replicas(
    source: str, models: Sequence[ModelConfig], slots: tuple[tuple[str, ...], ...]
) -> tuple[tuple[str, ...], ...]:
    for model in models:
        if model.replicas > len(slots):
            raise ConfigError(
                f"{source}: [[model]] {model.name!r} key 'replicas' = {model.replicas}: only "
                f"{len(slots)} server slot(s); lower replicas or raise server_slots"
            )
    return slots


def _gpu_count(gpus: Sequence[str]) -> str:
    shown = ",".join(gpus[:_IDS_SHOWN]) + (",..." if len(gpus) > _IDS_SHOWN else "")
    return f"{len(gpus)} GPU(s) ({shown}) are"
