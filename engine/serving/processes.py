"""What the server code needs to know about OS processes, and how it asks the kernel for help.

Model servers run in process groups of their own, and must never outlive the engine that started
them: a forgotten vLLM holds a GPU all night. Two mechanisms, both here:

- `exit_with_parent()`: a `preexec_fn` that asks Linux (`prctl(PR_SET_PDEATHSIG)`) to send the
  child SIGTERM when the thread that spawned it dies, however it dies (SIGKILL, OOM, a crash).
  SIGTERM, not SIGKILL, so the server can stop the workers it forked: the signal reaches only the
  direct child. It is armed in the child after the fork and kept across `exec`.
- `ProcessIdentity`: a pid plus what makes it unique over time (its start time in
  /proc/<pid>/stat, the boot and the host), so a record of a server made by one engine process can
  be acted on by the next one without ever signalling a process that merely reuses the pid.

Zombies never count as alive: an orphan whose new parent (PID 1 in a container) never reaps it
stays a zombie forever, yet it holds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Machine",
    "ProcessIdentity",
    "exit_with_parent",
    "group_alive",
    "group_gone",
    "identify",
    "live_group_members",
    "signal_group",
    "this_machine",
]

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PROC = Path("/proc")
BOOT_ID = PROC / "sys/kernel/random/boot_id"
# /proc/<pid>/stat after "(comm) ": state is field 3 of proc(5), so field n is at index n - 3.
_STATE, _PGRP, _STARTTIME = 0, 2, 19


@dataclass(frozen=True, slots=True)
class Machine:
    """Where a pid means something: the host, and its boot (pids and start times restart)."""

    host: str
    boot_id: str


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """A process as a later engine process can recognise it: a pid alone may have been recycled.

    `start_time` is in clock ticks after boot (proc(5) field 22); None where there is no /proc, and
    then the process cannot be recognised later, so it is never signalled from a record.
    """

    pid: int
    group: int
    start_time: int | None
    machine: Machine


@dataclass(frozen=True, slots=True)
class _Stat:
    state: str
    group: int
    start_time: int


def this_machine() -> Machine:
    try:
        boot_id = BOOT_ID.read_text().strip()
    except OSError:
        boot_id = ""
    return Machine(socket.gethostname(), boot_id)


def identify(pid: int, group: int) -> ProcessIdentity | None:
    """The identity of a running process; None if it has already gone (or is a zombie)."""
    if not PROC.is_dir():
        return ProcessIdentity(pid, group, None, this_machine())
    stat = _read_stat(pid)
    if stat is None or stat.state == "Z":
        return None
    return ProcessIdentity(pid, group, stat.start_time, this_machine())


def live_group_members(identity: ProcessIdentity) -> list[int] | None:
    """The live processes of the group the identified process leads, on this machine.

    None when that group cannot be the recorded one: the pid now belongs to a younger process
    (or, without /proc, nobody can tell). While any process of a group lives, Linux hands out its
    id neither as a pid nor as a group id, so a leader with the recorded start time, or members
    when the leader is gone, are the recorded group; members older than the leader never are.
    """
    if identity.start_time is None or not PROC.is_dir():
        return None
    leader = _read_stat(identity.pid)
    if leader is not None and leader.start_time != identity.start_time:
        return None
    return [
        pid
        for pid, stat in _all_stats()
        if stat.group == identity.group
        and stat.state != "Z"
        and stat.start_time >= identity.start_time
    ]


def group_alive(group: int) -> bool:
    """Whether any process of the group still runs (zombies excluded)."""
    if not PROC.is_dir():
        return signal_group(group, 0)
    return any(stat.group == group and stat.state != "Z" for _, stat in _all_stats())


async def group_gone(
    process: asyncio.subprocess.Process, group: int, deadline: Callable[[], float]
) -> bool:
    """Wait until the leader is reaped and no process of the group remains, or `deadline()` (a
    monotonic time, asked again at each look: an aborted run brings it closer)."""
    while time.monotonic() < deadline():
        if process.returncode is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(process.wait(), timeout=0.05)
            continue
        if not group_alive(group):
            return True
        await asyncio.sleep(0.05)
    return process.returncode is not None and not group_alive(group)


def signal_group(group: int, signum: int) -> bool:
    """Signal every process in the group; False if none is left."""
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    return True


def exit_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child get SIGTERM when its spawning thread dies; Linux only.

    The kernel fires it when the *thread* that forked the child exits, so spawn from a thread that
    lives as long as the server (the event loop's). As a dying engine's threads exit one by one,
    the kernel hands the child from thread to thread and signals it at each hand-over, so a
    server may get SIGTERM more than once. If the engine died between the fork and `prctl`, the
    child would never be signalled: it checks its parent and gives up instead.
    Everything it calls is looked up before the fork; the child runs no imports.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    engine = os.getpid()

    def arm() -> None:
        if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != engine:
            os._exit(1)

    return arm


def _all_stats() -> list[tuple[int, _Stat]]:
    stats = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _read_stat(int(entry.name))
            if stat is not None:
                stats.append((int(entry.name), stat))
    return stats


def _read_stat(pid: int) -> _Stat | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after it
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return _Stat(fields[_STATE], int(fields[_PGRP]), int(fields[_STARTTIME]))
    except (IndexError, ValueError):
        return None
