"""mtbench-engine: MT-Bench for many models at once, judged FastChat's way, everything cached.

The public API (`engine.api`): `evaluate` / `evaluate_async` run a config or `Model`s against a
`Judge` and return a `RunResult`; `scores` / `scores_async` read the leaderboards back. Names are
loaded on first use, so `import engine` (and the `mtbench` command's start) stays cheap.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The engine's records go where the caller's logging sends them and, with none set up, nowhere:
# not to Python's last-resort stderr handler, since the API prints nothing. `mtbench` sets up its.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ConfigError",
    "DataError",
    "InputError",
    "Judge",
    "JudgeConfig",
    "Model",
    "ModelConfig",
    "MtbenchError",
    "ProgressView",
    "RunControl",
    "RunResult",
    "RunStopped",
    "Scoreboard",
    "Snapshot",
    "StoreError",
    "StoreWriteError",
    "__version__",
    "evaluate",
    "evaluate_async",
    "scores",
    "scores_async",
]

_HOMES = {
    "ConfigError": "engine.errors",
    "DataError": "engine.errors",
    "InputError": "engine.errors",
    "MtbenchError": "engine.errors",
    "StoreError": "engine.errors",
    "StoreWriteError": "engine.errors",
    "JudgeConfig": "engine.config",
    "ModelConfig": "engine.config",
    "Judge": "engine.api",
    "Model": "engine.api",
    "evaluate": "engine.api",
    "evaluate_async": "engine.api",
    "scores": "engine.api",
    "scores_async": "engine.api",
    "ProgressView": "engine.run.progress",
    "Snapshot": "engine.run.progress",
    "RunControl": "engine.run.control",
    "RunStopped": "engine.run.control",
    "RunResult": "engine.run.runner",
    "Scoreboard": "engine.report.show",
}

if TYPE_CHECKING:
    from engine.api import Judge, Model, evaluate, evaluate_async, scores, scores_async
    from engine.config import JudgeConfig, ModelConfig
    from engine.errors import (
        ConfigError,
        DataError,
        InputError,
        MtbenchError,
        StoreError,
        StoreWriteError,
    )
    from engine.report.show import Scoreboard
    from engine.run.control import RunControl, RunStopped
    from engine.run.progress import ProgressView, Snapshot
    from engine.run.runner import RunResult


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
