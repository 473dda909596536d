"""What `mtbench show` and the HTML report both say beside the numbers, written once.

How a judge is described, an interval's text and the last run's failures read the same in the
terminal and in the page. The names in them (judge labels, error classes, commands) come from
configs, files and the store, so each caller escapes them its own way: `terminal_text` for the
terminal, the report's HTML escaper for the page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.display import format_number
from engine.reasoning import describe_settings
from engine.report.results import LastRun
from engine.scoring.summaries import PairModelSummary, SingleModelSummary
from engine.store.rows import JudgeIdentity

__all__ = ["RATE_CI_DIGITS", "SCORE_CI_DIGITS", "ci_text", "judge_details", "last_run_failures"]

SCORE_CI_DIGITS = 2  # the interval of a 1-10 score
RATE_CI_DIGITS = 3  # the interval of a 0-1 win rate


def judge_details(judge: JudgeIdentity, settings: Sequence[str]) -> str:
    """`model gpt-4o, api openai, reasoning_effort=high`: what tells a judge from another of the
    same label (its reasoning settings change its grades, so they are part of who judged)."""
    described = f", {describe_settings(settings)}" if settings else ""
    return f"model {judge.model}, api {judge.api}{described}"


def ci_text(summary: SingleModelSummary | PairModelSummary) -> str:
    """`[low, high]`, the summary's 95% interval; "-" without one."""
    if summary.ci is None:
        return "-"
    digits = SCORE_CI_DIGITS if isinstance(summary, SingleModelSummary) else RATE_CI_DIGITS
    return f"[{format_number(summary.ci.low, digits)}, {format_number(summary.ci.high, digits)}]"


def last_run_failures(run: LastRun | None, escape: Callable[[str], str]) -> str | None:
    """The latest run's failed jobs by error class; None when it has none."""
    if run is None or not run.failures:
        return None
    classes = ", ".join(f"{escape(name)} {count}" for name, count in run.failures.items())
    return (
        f"last run #{run.id} ({escape(run.command)}, {escape(run.status)}): "
        f"{sum(run.failures.values())} jobs failed ({classes}); see the store's failures table"
    )
