"""Judge panels' leaderboards from the store: the recorded panels, or one `show --panel` names.

A panel's members are stored judges, found by label. Each member is first read as its own
leaderboard would be (`engine.report.results`: its median over samples per item, its majority
verdict per game), then pooled on the items every member judged (`engine.scoring.panel`) and
summarised with the same code, bootstrap intervals included, as a single judge's board. A panel is
shown in the view all its members share (single grading, or the same pairwise mode and baseline);
a recorded panel that cannot be shown (a member with no judgments yet, members judged in
different modes) is named with the reason, never dropped silently. A panel asked for on the
command line is refused instead, with the same line `--judge` gets for a label the store lacks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.config_panel import AGGREGATES, DEFAULT_PANEL_NAME, PanelConfig, panel_problem
from engine.config_tables import shown
from engine.errors import InputError
from engine.report.judged_views import JudgeViews, View, judge_views, unavailable
from engine.report.results import load_pair_matches, load_single_scores
from engine.scoring.panel import PanelMatches, panel_matches, panel_scores
from engine.scoring.summaries import (
    PairModelSummary,
    SingleModelSummary,
    summarize_pairwise,
    summarize_single,
)
from engine.store.judges import no_such_judge
from engine.store.panels import recorded_members, stored_panels
from engine.store.rows import JudgeIdentity
from engine.store.store import Store

__all__ = ["PanelBoard", "PanelBoards", "adhoc_panel", "panel_boards"]


@dataclass(frozen=True, slots=True)
class PanelBoard:
    """One panel's leaderboard: FastChat's numbers over the panel's pooled grades."""

    panel: PanelConfig
    members: tuple[JudgeIdentity, ...]  # in the panel's order
    recorded: bool  # defined by a run's [panel]; False: asked for with `show --panel`
    mode: str
    baseline: str | None
    single: tuple[SingleModelSummary, ...] = ()
    pairwise: tuple[PairModelSummary, ...] = ()
    left_out: tuple[tuple[str, int], ...] = ()  # model -> items (matches) some member lacks

    def left_out_of(self, model: str) -> int:
        return dict(self.left_out).get(model, 0)

    def unscored(self) -> tuple[tuple[str, int], ...]:
        """Models with items left out and none scored: not on the board, said beside it."""
        shown = {s.model for s in self.single} | {s.model for s in self.pairwise}
        return tuple((model, count) for model, count in self.left_out if model not in shown)


@dataclass(frozen=True, slots=True)
class PanelBoards:
    boards: tuple[PanelBoard, ...] = ()
    not_shown: tuple[str, ...] = ()  # recorded panels that cannot be shown, and why


def adhoc_panel(labels: str | Sequence[str] | None, aggregate: str | None) -> PanelConfig | None:
    """The panel of `show --panel a,b,c [--aggregate median]` (labels as one comma-separated
    string, or a list from Python), None without --panel."""
    if labels is None:
        if aggregate is not None:
            raise InputError("mtbench show: --aggregate goes with --panel a,b,...")
        return None
    parts = labels.split(",") if isinstance(labels, str) else _label_list(labels)
    judges = tuple(label.strip() for label in parts)
    problem = "an empty judge label" if "" in judges else panel_problem(judges)
    if aggregate not in (None, *AGGREGATES):
        problem = f"--aggregate {aggregate!r}: give one of {', '.join(AGGREGATES)}"
    if problem is not None:
        raise InputError(f"mtbench show: --panel {','.join(parts)!r}: {problem}")
    return PanelConfig(judges, "median" if aggregate == "median" else "mean", DEFAULT_PANEL_NAME)


def _label_list(labels: object) -> list[str]:
    """The labels of a panel given from Python (`engine.scores(panel=[...])`): strings only."""
    parts: list[object] = []
    if isinstance(labels, Iterable) and not isinstance(labels, bytes):
        parts = list(labels)
    if not parts and not isinstance(labels, (list, tuple)):
        parts = [labels]  # not a list of labels at all: refused below
    if not all(isinstance(label, str) for label in parts):
        raise InputError(
            f"engine.scores: panel = {shown(labels)}: expected judge labels, a list of strings "
            "such as ['a', 'b'] or one string 'a,b'"
        )
    return [str(label) for label in parts]


async def panel_boards(
    store: Store,
    store_path: object,
    bench: str,
    *,
    judge: str | None = None,
    adhoc: PanelConfig | None = None,
    mode: str | None = None,
    baseline: str | None = None,
) -> PanelBoards:
    """The boards of `adhoc`, or else of the recorded panels (none when `--judge` narrows the
    output to one judge), in `mode` against `baseline` when given."""
    if adhoc is None and judge is not None:
        return PanelBoards()
    views = await judge_views(store, bench)
    panels = [adhoc] if adhoc is not None else await stored_panels(store, bench)
    boards, not_shown = [], []
    for panel in panels:
        meant = {} if adhoc is not None else await recorded_members(store, bench, panel.name)
        members = _members(panel, views, store_path, bench, strict=adhoc is not None, meant=meant)
        view = members if isinstance(members, str) else _shared_view(members, mode, baseline)
        if isinstance(view, str):
            if adhoc is not None:
                raise InputError(f"{store_path}: no leaderboard for --panel: {view}")
            not_shown.append(f"panel {panel.name!r} not shown: {view}")
            continue
        assert not isinstance(members, str)
        boards.append(await _board(store, bench, panel, members, view, adhoc is None))
    return PanelBoards(tuple(boards), tuple(not_shown))


def _members(
    panel: PanelConfig,
    views: Sequence[JudgeViews],
    store_path: object,
    bench: str,
    *,
    strict: bool,
    meant: Mapping[str, JudgeIdentity],
) -> list[JudgeViews] | str:
    """Each member's stored judge, or why there is none (with `strict`: the refusal). A label
    naming several judges is the one `meant` gives (the recording run's), when it is stored."""
    members = []
    for label in panel.judges:
        found = [view for view in views if view.name == label]
        if len(found) > 1 and label in meant:
            found = [view for view in found if view.judge.identity == meant[label]] or found
        if not found and strict:
            raise no_such_judge(store_path, bench, label, [view.name for view in views])
        if not found:
            return f"judge {label!r} has no judgments for bench {bench} yet"
        if len(found) > 1:
            models = ", ".join(f"{v.judge.identity.model} ({v.judge.identity.api})" for v in found)
            problem = f"judge label {label!r} names {len(found)} judges ({models})"
            if strict:
                raise InputError(f"{store_path}: --panel: {problem}; a member must be one judge")
            return problem
        members.append(found[0])
    return members


def _shared_view(
    members: Sequence[JudgeViews], mode: str | None, baseline: str | None
) -> View | str:
    """The leaderboard every member can show (single first, by default), or why none."""
    if mode is None and baseline is None:
        if all("single" in member.judge.kinds for member in members):
            return View("single")
        chosen = [member.pair_view() if member.pair_models else None for member in members]
    else:
        chosen = [member.choose(mode, baseline) for member in members]
    if any(view is None for view in chosen) or len(set(chosen)) > 1:
        return unavailable(members, mode, baseline)
    view = chosen[0]
    assert view is not None
    return view


async def _board(
    store: Store,
    bench: str,
    panel: PanelConfig,
    members: Sequence[JudgeViews],
    view: View,
    recorded: bool,
) -> PanelBoard:
    identities = tuple(member.judge.identity for member in members)
    head = (panel, identities, recorded, view.mode, view.baseline)
    if view.mode == "single":
        rated = [await load_single_scores(store, bench, identity) for identity in identities]
        pooled = panel_scores(rated, panel.aggregate)
        return PanelBoard(*head, single=summarize_single(pooled.scores), left_out=pooled.left_out)
    played = [await load_pair_matches(store, bench, identity) for identity in identities]
    matches = panel_matches(played)
    pairwise = summarize_pairwise(matches.matches, baseline=view.baseline)
    left_out = _matches_left_out(matches, view.baseline)
    return PanelBoard(*head, pairwise=pairwise, left_out=left_out)


def _matches_left_out(matches: PanelMatches, baseline: str | None) -> tuple[tuple[str, int], ...]:
    """Per model, the matches of this board some member gave no verdict in (against the
    baseline only, in baseline mode, where the baseline itself has no row)."""
    counted: Counter[str] = Counter()
    for match in matches.left_out:
        players = (match.model_1, match.model_2)
        if baseline is not None and baseline not in players:
            continue
        counted.update(model for model in players if model != baseline)
    return tuple(sorted(counted.items()))
