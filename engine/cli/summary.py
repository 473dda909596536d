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
    rows: list[list[object]] = [
        [
            t.name,
            t.role,
            t.jobs,
            t.to_send,
            t.cached,
            t.prompt_tokens,
            t.completion_tokens,
            *([_mean(t.reasoning_mean)] if reasoning else []),
            format_dollars(t.cost),
        ]
        for t in tally.endpoints
    ]
    rows.append(
        [
            "total",
            "-",
            tally.total("jobs"),
            tally.total("to_send"),
            tally.total("cached"),
            tally.total("prompt_tokens"),
            tally.total("completion_tokens"),
            *(["-"] if reasoning else []),
            format_dollars(tally.total_cost()),
        ]
    )
    headers = ["endpoint", "role", "jobs", "to send", "cached", "est. tokens in", "est. tokens out"]
    headers += ["mean reasoning"] if reasoning else []
    text = format_table([*headers, "est. cost"], rows, left_columns=2)
    note = (
        f"(estimates: prompts at {CHARS_PER_TOKEN} characters per token; answers at the mean of "
        "earlier answers of the same label, reasoning included, else max_tokens"
    )
    if reasoning:
        note += "; mean reasoning: tokens an earlier answer spent reasoning, part of tokens out"
    return f"{text}\n{note})"


def _mean(value: float | None) -> object:
    return None if value is None else round(value)


def format_run_summary(tally: RunSummary) -> str:
    """Per endpoint: jobs, requests sent, cache hits, failures, tokens and cost; reasoning tokens
    (part of tokens out, billed as output) when a server reported any."""
    reasoning = tally.total("reasoning_tokens") > 0
    rows: list[list[object]] = [
        [
            t.name,
            t.role,
            t.jobs,
            t.done,
            t.cached,
            t.failed,
            t.prompt_tokens,
            t.completion_tokens,
            *([t.reasoning_tokens] if reasoning else []),
            format_dollars(t.cost),
        ]
        for t in tally.endpoints
    ]
    rows.append(
        [
            "total",
            "-",
            tally.total("jobs"),
            tally.total("done"),
            tally.total("cached"),
            tally.total("failed"),
            tally.total("prompt_tokens"),
            tally.total("completion_tokens"),
            *([tally.total("reasoning_tokens")] if reasoning else []),
            format_dollars(tally.total_cost()),
        ]
    )
    headers = ["endpoint", "role", "jobs", "sent", "cached", "failed", "tokens in", "tokens out"]
    headers += ["of which reasoning"] if reasoning else []
    headers.append("cost")
    text = format_table(headers, rows, left_columns=2)
    text += f"\n{tally.total('jobs')} jobs in {tally.elapsed:.1f}s"
    if tally.failures:
        text += "\n" + format_failures(tally)
    return text


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
