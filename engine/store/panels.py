"""Judge panels kept in the store, so `show` and `report` pool the same judges without the config.

A run or `judge` with a `[panel]` records the panel's definition (its judge labels and aggregate)
when it starts; a later run with the same panel name replaces it, since the latest definition is
the one the user meant. Only the definition is stored: the panel's grades are always computed from
its members' stored judgments, so they follow every judgment added later.

A member is named by its label, and a label can name several judges over time (a judge whose
model string was upgraded under the same name). The run that recorded the panel knew which judge
each label meant: `recorded_members` reads that from the run's stored config.
"""

from __future__ import annotations

import time

import orjson

from engine.config_panel import AGGREGATES, PanelConfig, panel_problem
from engine.store import rows
from engine.store.rows import JudgeIdentity, PanelRow
from engine.store.store import Store

__all__ = ["record_panel", "recorded_members", "stored_panels"]


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


async def recorded_members(store: Store, bench: str, name: str) -> dict[str, JudgeIdentity]:
    """Label -> judge identity, as the run that recorded panel `name` configured its judges
    (empty when that run or its config is gone)."""
    found = await store.fetch(rows.PANEL_RUN_CONFIG, {"bench": bench, "name": name})
    if not found:
        return {}
    try:
        snapshot = orjson.loads(found[0][0] or "null")
    except orjson.JSONDecodeError:
        return {}
    judges = snapshot.get("judges") if isinstance(snapshot, dict) else None
    members: dict[str, JudgeIdentity] = {}
    for judge in judges if isinstance(judges, list) else []:
        identity = _identity(judge)
        if identity is not None:
            members.setdefault(identity.name, identity)
    return members


def _identity(judge: object) -> JudgeIdentity | None:
    """A judge of a run's stored config as an identity; None for a table no engine wrote."""
    if not isinstance(judge, dict):
        return None
    name, model, api = judge.get("name"), judge.get("model"), judge.get("api")
    if not (isinstance(name, str) and isinstance(model, str) and isinstance(api, str)):
        return None
    return JudgeIdentity(name, model, api)
