"""Judge panels kept in the store, so `show` and `report` pool the same judges without the config.

A run or `judge` with a `[panel]` records the panel's definition (its judge labels and aggregate)
when it starts; a later run with the same panel name replaces it, since the latest definition is
the one the user meant. Only the definition is stored: the panel's grades are always computed from
its members' stored judgments, so they follow every judgment added later.
"""

from __future__ import annotations

import time

import orjson

from engine.config_panel import AGGREGATES, PanelConfig, panel_problem
from engine.store import rows
from engine.store.rows import PanelRow
from engine.store.store import Store

__all__ = ["record_panel", "stored_panels"]


async def record_panel(store: Store, bench: str, panel: PanelConfig, run_id: int | None) -> None:
    """Keep `panel`'s definition for `bench` (a store that refuses it: StoreWriteError)."""
    judges = orjson.dumps(list(panel.judges)).decode()
    row = PanelRow(bench, panel.name, judges, panel.aggregate, run_id, time.time())
    await store.execute(*row.write())


async def stored_panels(store: Store, bench: str) -> list[PanelConfig]:
    """The panels recorded for `bench`, by name; a row no engine wrote (edited by hand) is left
    out rather than pooled wrongly."""
    panels = []
    for name, judges, aggregate in await store.fetch(rows.STORED_PANELS, {"bench": bench}):
        labels = _labels(judges)
        if labels is not None and panel_problem(labels) is None and aggregate in AGGREGATES:
            panels.append(PanelConfig(labels, aggregate, name))
    return panels


def _labels(column: str) -> tuple[str, ...] | None:
    try:
        labels = orjson.loads(column)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        return None
    return tuple(labels)
