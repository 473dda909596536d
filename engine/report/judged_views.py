"""Which leaderboards a store's judgments can honestly show, judge by judge.

The store keeps a judge's pairwise matches, not the FastChat mode that played them. Matches that
all involve one model, among more than two models, were played in pairwise-baseline mode against
it: a pairwise-all table would rank that baseline as a contestant. Any other set of matches is
all-pairs, from which FastChat's `show_result` derives a baseline table for any of its models too.
One pair of two models fits both readings; the run that judged them recorded its mode (in `runs`),
and that decides the default. `show` and `report` show the view that exists, and refuse a judge,
mode or baseline that does not with one line listing what does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from engine.bench.judge import MISSING_RATING, RATING_MAX, RATING_MIN
from engine.config_schema import FASTCHAT_BASELINE, JUDGE_MODES
from engine.errors import InputError
from engine.report.results import StoredJudge, stored_judges
from engine.store import rows
from engine.store.judges import no_such_judge
from engine.store.rows import JudgeIdentity, judge_params
from engine.store.store import Store

__all__ = [
    "JudgeViews",
    "View",
    "judge_views",
    "judges_named",
    "out_of_range_counts",
    "select_judges",
    "unavailable",
]

PAIR_MODES = JUDGE_MODES[1:]  # the pairwise ones


@dataclass(frozen=True, slots=True)
class View:
    """One leaderboard: a judge's judgments in one mode (with its baseline, when pairwise)."""

    mode: str
    baseline: str | None = None


@dataclass(frozen=True, slots=True)
class JudgeViews:
    """What one judge's stored judgments can be shown as."""

    judge: StoredJudge
    pair_models: tuple[str, ...]  # every model in a pairwise match, sorted
    only_baseline: str | None  # the model every match was played against, when that is all
    recorded: View | None  # the pairwise mode this judge's latest run was configured with

    @property
    def name(self) -> str:
        return self.judge.identity.name

    def baselines(self) -> tuple[str, ...]:
        if self.only_baseline is not None:
            return (self.only_baseline,)
        return self.pair_models

    def modes(self) -> tuple[str, ...]:
        modes = ["single"] if "single" in self.judge.kinds else []
        if self.pair_models:
            modes.append("pairwise-baseline")
            if self.only_baseline is None:
                modes.append("pairwise-all")
        return tuple(modes)

    def default(self) -> View:
        return View("single") if "single" in self.judge.kinds else self.pair_view()

    def pair_view(self) -> View:
        """The pairwise table the matches were played for: against their baseline, else all."""
        baseline = self._default_baseline()
        return View("pairwise-all") if baseline is None else View("pairwise-baseline", baseline)

    def choose(self, mode: str | None, baseline: str | None) -> View | None:
        """The view asked for, None when this judge's judgments cannot show it."""
        if mode is None and baseline is None:
            return self.default()
        if mode is None or mode == "pairwise-baseline":
            chosen = baseline or self._default_baseline()
            if chosen is None and FASTCHAT_BASELINE in self.pair_models:
                chosen = FASTCHAT_BASELINE  # show_result's default for all-pairs judgments
            return View("pairwise-baseline", chosen) if chosen in self.baselines() else None
        return View(mode) if mode in self.modes() else None

    def _default_baseline(self) -> str | None:
        if self.only_baseline is not None:
            return self.only_baseline
        recorded = self.recorded
        if recorded is not None and recorded.baseline in self.pair_models:
            return recorded.baseline
        return None

    def describe(self) -> str:
        """What exists, for an error line: `single, pairwise-baseline (baseline gpt-3.5)`."""
        parts = []
        for mode in self.modes():
            if mode != "pairwise-baseline":
                parts.append(mode)
                continue
            baselines = self.baselines()
            shown = ", ".join(baselines[:5]) + (", ..." if len(baselines) > 5 else "")
            parts.append(f"pairwise-baseline (baseline {shown})")
        return f"judge {self.name!r} has {'; '.join(parts)}"


async def judge_views(store: Store, bench: str) -> list[JudgeViews]:
    """Every judge identity with judgments for `bench`, and what each can be shown as."""
    recorded = await _recorded_pair_modes(store, bench)
    views = []
    for stored in await stored_judges(store, bench):
        pairs = await _pairs(store, bench, stored.identity) if "pair" in stored.kinds else []
        models = sorted({model for pair in pairs for model in pair})
        common = set(models)
        for pair in pairs:
            common &= set(pair)
        only = next(iter(common)) if len(models) > 2 and len(common) == 1 else None
        views.append(JudgeViews(stored, tuple(models), only, recorded.get(stored.identity)))
    return views


async def select_judges(
    store: Store, store_path: object, bench: str, judge: str | None
) -> list[JudgeViews]:
    """The judges `--judge` names (all when None); an unknown name lists those that exist."""
    views = await judge_views(store, bench)
    if not views:
        benches = [row[0] for row in await store.fetch(rows.JUDGED_BENCHES)]
        elsewhere = f" (judgments exist for bench {', '.join(benches)})" if benches else ""
        raise InputError(
            f"{store_path}: no judgments for bench {bench}{elsewhere}; run `mtbench judge` first"
        )
    return judges_named(views, judge, store_path, bench)


def judges_named(
    views: Sequence[JudgeViews], judge: str | None, store_path: object, bench: str, advice: str = ""
) -> list[JudgeViews]:
    """The judges labelled `judge` (all when None); an unknown label is refused, naming those."""
    chosen = [view for view in views if judge in (None, view.name)]
    if judge is not None and not chosen:
        raise no_such_judge(store_path, bench, judge, [view.name for view in views], advice)
    return chosen


async def _pairs(store: Store, bench: str, identity: JudgeIdentity) -> list[tuple[str, str]]:
    found = await store.fetch(rows.PAIRS, judge_params(identity, bench))
    return [(model, opponent) for model, opponent in found]


async def _recorded_pair_modes(store: Store, bench: str) -> dict[JudgeIdentity, View]:
    """Per judge identity, the pairwise mode of the latest run that judged with it."""
    recorded: dict[JudgeIdentity, View] = {}
    for (config,) in await store.fetch(rows.JUDGING_RUN_CONFIGS):
        for judge in _judges_of(config, bench):
            if judge.get("mode") not in PAIR_MODES:
                continue
            identity = JudgeIdentity(judge["name"], judge["model"], judge["api"])
            baseline = judge.get("baseline") if judge["mode"] == "pairwise-baseline" else None
            recorded.setdefault(identity, View(judge["mode"], baseline))
    return recorded


def _judges_of(config: str | None, bench: str) -> list[dict[str, str]]:
    """A run's judges as its config snapshot recorded them: `judges`, or (older runs) `judge`."""
    try:
        snapshot = orjson.loads(config or "null")
    except orjson.JSONDecodeError:
        return []
    if not isinstance(snapshot, dict) or snapshot.get("bench", bench) != bench:
        return []
    judges = snapshot.get("judges")
    if not isinstance(judges, list):
        judges = [snapshot.get("judge")]
    keys = ("name", "model", "api")
    return [
        judge
        for judge in judges
        if isinstance(judge, dict) and all(isinstance(judge.get(k), str) for k in keys)
    ]


async def out_of_range_counts(store: Store, bench: str, identity: JudgeIdentity) -> dict[str, int]:
    """Per model, single ratings outside 1-10 (every sample; -1 is no rating, not counted)."""
    limits = {"missing": MISSING_RATING, "low": RATING_MIN, "high": RATING_MAX}
    found = await store.fetch(rows.OUT_OF_RANGE, judge_params(identity, bench, **limits))
    return {model: count for model, count in found}


def unavailable(views: Sequence[JudgeViews], mode: str | None, baseline: str | None) -> str:
    """One line saying what was asked for and what each judge has instead."""
    asked = " ".join(
        part
        for part in (f"mode {mode}" if mode else "", f"baseline {baseline!r}" if baseline else "")
        if part
    )
    if mode == "pairwise-baseline" and baseline is None:
        asked += " without --baseline"
    what = f"no {asked} leaderboard" if asked else "no leaderboard in a mode they all share"
    return f"{what}; " + "; ".join(view.describe() for view in views)
