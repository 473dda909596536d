"""The `tail` scenario: what hung requests cost with default settings; slow ones are never cut.

Three runs of 3 models + a single-mode judge against one fake server (lognormal latency, median
0.2 s, sigma 0.5), each on a fresh store, with the engine's default settings (no `timeout`, no
`hedge_after`, no `stall_timeout`): no faults; 0.5% of requests hanging forever; 2% of answers
streaming slowly over 20x the median. A hung request must cost about a learned threshold, not the
600 s timeout (wall within 1.25x of the run without hangs), and a slow answer that keeps sending
bytes must never be given up by the client (the server counts hang-ups per fault).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench_env import FakeServerProcess
from bench_scenarios import Outcome, Settings, _config, _engine, _judge, _models

__all__ = ["QUICK_NOTE", "tail"]

QUICK_NOTE = "questions 81-100 only (a smoke test: start-up weighs more, the ratio means less)"
MEDIAN, SIGMA, MODELS, SEED = 0.2, 0.5, 3, 7
HANG_SHARE, SLOW_SHARE, SLOW_FACTOR = 0.005, 0.02, 20.0


@dataclass(frozen=True)
class _Run:
    wall: float
    failed: int
    stats: dict[str, Any]
    jobs: int

    @property
    def healthy_given_up(self) -> int:
        """Requests the engine hung up on although the server was answering them."""
        return sum(n for fault, n in self.stats["given_up"].items() if fault != "hang")

    @property
    def twins(self) -> int:
        return int(self.stats["requests"]) - self.jobs


def _measure(settings: Settings, server: FakeServerProcess, name: str, **faults: float) -> _Run:
    server.reset()
    server.configure(**{"fault_hang": 0.0, "fault_slow": 0.0, **faults})
    questions = list(range(81, 101)) if settings.quick else None
    config, store = _config(
        settings,
        f"tail-{name}",
        models=_models(MODELS, server.base_url),
        judge=_judge(server.base_url),
        questions=questions,
    )
    run = _engine(settings, f"tail-{name}", "run", config, store)
    stats = server.stats()
    jobs = MODELS * len(questions or range(80)) * 2 * 2
    return _Run(run.wall, run.failed, stats, jobs)


def tail(settings: Settings) -> Outcome:
    out = Outcome()
    options = {"latency_median": MEDIAN, "latency_sigma": SIGMA, "seed": SEED}
    with FakeServerProcess(slow_factor=SLOW_FACTOR, **options) as server:
        clean = _measure(settings, server, "clean")
        hung = _measure(settings, server, "hangs", fault_hang=HANG_SHARE)
        slow = _measure(settings, server, "slow", fault_slow=SLOW_SHARE)
    ratio = hung.wall / clean.wall
    out.add(
        "wall with 0.5% hangs ÷ wall without",
        f"{ratio:.3f} ({hung.wall:.2f} s / {clean.wall:.2f} s)",
        "≤ 1.25",
        ratio <= 1.25,
    )
    failed = (clean.failed, hung.failed, slow.failed)
    out.add("failed jobs (clean, hangs, slow)", ", ".join(map(str, failed)), "0", not any(failed))
    out.add(
        "slow answers given up (2% at 20× median)",
        f"{slow.healthy_given_up} of {slow.stats['faults']['slow']} slow",
        "0",
        slow.healthy_given_up == 0,
    )
    out.add("wall with 2% slow answers ÷ wall without", f"{slow.wall / clean.wall:.3f}")
    out.add(
        "hung requests; twins sent; healthy requests given up",
        f"{hung.stats['faults']['hang']}; {hung.twins}; {hung.healthy_given_up}",
    )
    out.add(
        "settings",
        f"defaults; lognormal median {MEDIAN} s, sigma {SIGMA}; {MODELS} models + judge",
    )
    out.raw = {
        name: {
            "wall_s": run.wall,
            "failed": run.failed,
            "requests": run.stats["requests"],
            "jobs": run.jobs,
            "faults": run.stats["faults"],
            "given_up": run.stats["given_up"],
        }
        for name, run in (("clean", clean), ("hangs", hung), ("slow", slow))
    }
    return out
