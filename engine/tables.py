"""Plain-text tables for the terminal: plan, run summary. Pure formatting, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from engine.scheduler import RunTally

__all__ = ["format_dollars", "format_plan", "format_run_summary", "format_table", "tally_json"]

FIRST_MESSAGES = 3


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-align the first column, right-align the rest."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def format_plan(tally: RunTally) -> str:
    """Requests to send and cached per endpoint, with estimated tokens and dollars."""
    rows: list[list[object]] = [
        [
            name,
            t.jobs,
            t.to_send,
            t.cached,
            t.prompt_tokens,
            t.completion_tokens,
            format_dollars(t.cost),
        ]
        for name, t in sorted(tally.endpoints.items())
    ]
    rows.append(
        [
            "total",
            tally.total("jobs"),
            tally.total("to_send"),
            tally.total("cached"),
            tally.total("prompt_tokens"),
            tally.total("completion_tokens"),
            format_dollars(tally.total_cost()),
        ]
    )
    headers = ["endpoint", "jobs", "to send", "cached", "est. tokens in", "est. tokens out"]
    text = format_table([*headers, "est. cost"], rows)
    return text + "\n(estimates: prompts at 4 characters per token; answers at the mean of "
    "earlier answers of the same label, else max_tokens)"


def format_dollars(cost: float | None) -> str:
    """Dollars for tables and progress lines; "-" when the endpoint has no price."""
    return "-" if cost is None else f"${cost:,.2f}"


def format_run_summary(tally: RunTally) -> str:
    rows: list[list[object]] = [
        [
            name,
            t.jobs,
            t.done,
            t.cached,
            t.failed,
            t.prompt_tokens,
            t.completion_tokens,
            format_dollars(t.cost),
        ]
        for name, t in sorted(tally.endpoints.items())
    ]
    rows.append(
        [
            "total",
            tally.total("jobs"),
            tally.total("done"),
            tally.total("cached"),
            tally.total("failed"),
            tally.total("prompt_tokens"),
            tally.total("completion_tokens"),
            format_dollars(tally.total_cost()),
        ]
    )
    headers = ["endpoint", "jobs", "sent", "cached", "failed", "tokens in", "tokens out", "cost"]
    text = format_table(headers, rows)
    text += f"\n{tally.total('jobs')} jobs in {tally.elapsed:.1f}s"
    if tally.failures:
        text += "\n" + format_failures(tally)
    return text


def tally_json(tally: RunTally) -> dict[str, Any]:
    """The plan or run summary for machines: per endpoint counts, tokens, cost, failures."""
    return {
        "endpoints": {name: asdict(t) for name, t in sorted(tally.endpoints.items())},
        "total": {
            "jobs": tally.total("jobs"),
            "to_send": tally.total("to_send"),
            "sent": tally.total("done"),
            "cached": tally.total("cached"),
            "failed": tally.total("failed"),
            "prompt_tokens": tally.total("prompt_tokens"),
            "completion_tokens": tally.total("completion_tokens"),
            "cost": tally.total_cost(),
        },
        "failures": dict(tally.failure_classes()),
        "elapsed": tally.elapsed,
    }


def format_failures(tally: RunTally) -> str:
    """Failures by class, with the first distinct messages of each (one for dependencies)."""
    lines = [f"{len(tally.failures)} jobs failed:"]
    for error_class, count in tally.failure_classes().most_common():
        lines.append(f"  {error_class}: {count}")
        limit = 1 if error_class == "dependency" else FIRST_MESSAGES
        shown: list[str] = []
        for failure in tally.failures:
            if failure.error_class != error_class or failure.message in shown:
                continue
            shown.append(failure.message)
            tries = f" (after {failure.attempts} attempts)" if failure.attempts else ""
            lines.append(f"    {failure.job}{tries}: {failure.message}")
            if len(shown) >= limit:
                break
    return "\n".join(lines)
