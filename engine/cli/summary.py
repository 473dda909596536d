"""What `plan`, `generate`, `run` and `judge` print: the plan and run summary tables, failures by
class, and the `--json` summary. Pure formatting of a `RunSummary`, no I/O.

Every cell is escaped for the terminal (names and messages are untrusted text) and measured in
terminal cells (`engine.display.format_table`).
"""

from __future__ import annotations

from typing import Any

from engine.chat import CHARS_PER_TOKEN
from engine.display import format_dollars, format_table, terminal_text
from engine.run.tally import RunSummary

__all__ = ["format_failures", "format_plan", "format_run_summary", "tally_json"]

FIRST_MESSAGES = 3


def format_plan(tally: RunSummary) -> str:
    """Requests to send and cached per endpoint, with estimated tokens and dollars; the mean
    reasoning tokens of earlier answers where a server reported them."""
    reasoning = any(t.reasoning_mean is not None for t in tally.endpoints)
    counters = ["jobs", "to_send", "cached", "prompt_tokens", "completion_tokens"]
    counters += ["reasoning_mean"] if reasoning else []
    headers = ["endpoint", "role", "jobs", "to send", "cached", "est. tokens in", "est. tokens out"]
    headers += ["mean reasoning"] if reasoning else []
    text = format_table([*headers, "est. cost"], _rows(tally, counters), left_columns=2)
    note = (
        f"(estimates: prompts at {CHARS_PER_TOKEN} characters per token; answers at the mean of "
        "earlier answers of the same label, reasoning included, else max_tokens"
    )
    if reasoning:
        note += "; mean reasoning: tokens an earlier answer spent reasoning, part of tokens out"
    return f"{text}\n{note})"


def format_run_summary(tally: RunSummary) -> str:
    """Per endpoint: jobs, requests sent, cache hits, failures, tokens and cost; reasoning tokens
    (part of tokens out, billed as output) when a server reported any."""
    reasoning = tally.total("reasoning_tokens") > 0
    counters = ["jobs", "done", "cached", "failed", "prompt_tokens", "completion_tokens"]
    counters += ["reasoning_tokens"] if reasoning else []
    headers = ["endpoint", "role", "jobs", "sent", "cached", "failed", "tokens in", "tokens out"]
    headers += ["of which reasoning"] if reasoning else []
    text = format_table([*headers, "cost"], _rows(tally, counters), left_columns=2)
    text += f"\n{tally.total('jobs')} jobs in {tally.elapsed:.1f}s"
    if tally.failures:
        text += "\n" + format_failures(tally)
    return text


def _rows(tally: RunSummary, counters: list[str]) -> list[list[object]]:
    """A row per endpoint (name, role, the counters, cost), then the total row; a mean has no
    total."""
    rows: list[list[object]] = [
        [t.name, t.role, *(_cell(getattr(t, name)) for name in counters), format_dollars(t.cost)]
        for t in tally.endpoints
    ]
    totals = ["-" if name == "reasoning_mean" else tally.total(name) for name in counters]
    rows.append(["total", "-", *totals, format_dollars(tally.total_cost())])
    return rows


def _cell(value: object) -> object:
    return round(value) if isinstance(value, float) else value


def tally_json(tally: RunSummary) -> dict[str, Any]:
    """The plan or run summary for machines: per model and judge counts, tokens, cost, failures.

    Models and judges are kept apart: a model may carry the judge's name (GPT-4 judging GPT-4).
    """
    by_role: dict[str, dict[str, Any]] = {"models": {}, "judges": {}}
    for t in tally.endpoints:
        by_role[f"{t.role}s"][t.name] = t.counts()
    return {
        **by_role,
        "total": {
            "jobs": tally.total("jobs"),
            "to_send": tally.total("to_send"),
            "sent": tally.total("done"),
            "cached": tally.total("cached"),
            "failed": tally.total("failed"),
            "prompt_tokens": tally.total("prompt_tokens"),
            "completion_tokens": tally.total("completion_tokens"),
            "reasoning_tokens": tally.total("reasoning_tokens"),
            "cost": tally.total_cost(),
        },
        "failures": dict(tally.failure_classes()),
        "elapsed": tally.elapsed,
    }


def format_failures(tally: RunSummary) -> str:
    """Failures by class, with the first distinct messages of each (one for dependencies)."""
    lines = [f"{len(tally.failures)} jobs failed:"]
    for error_class, count in tally.failure_classes().most_common():
        lines.append(f"  {terminal_text(error_class)}: {count}")
        limit = 1 if error_class == "dependency" else FIRST_MESSAGES
        shown: list[str] = []
        for failure in tally.failures:
            if failure.error_class != error_class or failure.message in shown:
                continue
            shown.append(failure.message)
            tries = f" (after {failure.attempts} attempts)" if failure.attempts else ""
            lines.append(
                f"    {terminal_text(failure.job)}{tries}: {terminal_text(failure.message)}"
            )
            if len(shown) >= limit:
                break
    return "\n".join(lines)
