"""Plain-text tables for the terminal: plan, run summary. Pure formatting, no I/O.

Every cell is escaped for the terminal (names and messages are untrusted text) and measured in
terminal cells, and every number is formatted so that no value, however large, breaks a layout.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

from engine.config import EndpointConfig, JudgeConfig
from engine.display import COMPACT_ABOVE, cell_width, format_number, terminal_text
from engine.run.scheduler import EndpointTally, RunTally

__all__ = [
    "endpoint_role",
    "format_dollars",
    "format_plan",
    "format_run_summary",
    "format_table",
    "tally_json",
]

FIRST_MESSAGES = 3


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, left_columns: int = 1
) -> str:
    """Left-align the first `left_columns` columns (names), right-align the rest (numbers)."""
    cells = [[_cell(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(cell_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            _pad(cell, width, left=column < left_columns)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _pad(text: str, width: int, *, left: bool) -> str:
    padding = " " * (width - cell_width(text))
    return text + padding if left else padding + text


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format_number(value, 4)
    return terminal_text(value, name=True)


def endpoint_role(endpoint: EndpointConfig) -> str:
    return "judge" if isinstance(endpoint, JudgeConfig) else "model"


def _endpoints(tally: RunTally) -> Iterator[tuple[str, str, EndpointTally]]:
    """(role, name, tally), models before the judge, each in name order."""
    rows = [(endpoint_role(e), e.name, t) for e, t in tally.endpoints.items()]
    yield from sorted(rows, key=lambda row: (row[0] == "judge", row[1]))


def format_plan(tally: RunTally) -> str:
    """Requests to send and cached per endpoint, with estimated tokens and dollars; the mean
    reasoning tokens of earlier answers where a server reported them."""
    reasoning = any(t.reasoning_mean is not None for t in tally.endpoints.values())
    rows: list[list[object]] = [
        [
            name,
            role,
            t.jobs,
            t.to_send,
            t.cached,
            t.prompt_tokens,
            t.completion_tokens,
            *([_mean(t.reasoning_mean)] if reasoning else []),
            format_dollars(t.cost),
        ]
        for role, name, t in _endpoints(tally)
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
    return text + "\n(estimates: prompts at 4 characters per token; answers at the mean of "
    "earlier answers of the same label, reasoning included, else max_tokens" + (
        "; mean reasoning: tokens an earlier answer spent reasoning, part of tokens out)"
        if reasoning
        else ")"
    )


def _mean(value: float | None) -> object:
    return None if value is None else round(value)


def format_dollars(cost: float | None) -> str:
    """Dollars for tables and progress lines; "-" when the endpoint has no price."""
    if cost is None:
        return "-"
    if not math.isfinite(cost) or abs(cost) >= COMPACT_ABOVE:
        return f"${cost:.3g}"
    return f"${cost:,.2f}"


def format_run_summary(tally: RunTally) -> str:
    """Per endpoint: jobs, requests sent, cache hits, failures, tokens and cost; reasoning tokens
    (part of tokens out, billed as output) when a server reported any."""
    reasoning = tally.total("reasoning_tokens") > 0
    rows: list[list[object]] = [
        [
            name,
            role,
            t.jobs,
            t.done,
            t.cached,
            t.failed,
            t.prompt_tokens,
            t.completion_tokens,
            *([t.reasoning_tokens] if reasoning else []),
            format_dollars(t.cost),
        ]
        for role, name, t in _endpoints(tally)
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


def tally_json(tally: RunTally) -> dict[str, Any]:
    """The plan or run summary for machines: per model and judge counts, tokens, cost, failures.

    Models and judges are kept apart: a model may carry the judge's name (GPT-4 judging GPT-4).
    """
    by_role: dict[str, dict[str, Any]] = {"models": {}, "judges": {}}
    for role, name, t in _endpoints(tally):
        by_role[f"{role}s"][name] = asdict(t)
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


def format_failures(tally: RunTally) -> str:
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
