"""Where the figures go: a table on the terminal, a section of RESULTS.md, the raw numbers in JSON.

RESULTS.md is shared with people: the harness only ever rewrites the text between its own section
markers (`<!-- section: HEADING -->` ... `<!-- end: HEADING -->`), so prose around the sections and
other headings' sections ("Before optimisation", "After ...") survive a rerun. A rerun of some
scenarios under a heading replaces just those scenarios' rows; results.json keeps, per heading and
scenario, every raw number the row was computed from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench_scenarios import SCENARIOS, Figure, Outcome

__all__ = ["format_table", "save"]

HEADERS = ("scenario", "figure", "measured", "target", "result")

_PREAMBLE = """# Throughput benchmarks

Written by `python benchmarks/throughput.py` (see README, "Performance"): every scenario starts
`benchmarks/fake_server.py` in its own process and runs the engine as a subprocess
(`python -m engine run|generate -c FILE`), timing its wall clock and reading its peak RSS from
`wait4`. Each section holds the latest figures per scenario under one heading; the raw numbers
behind every row are in `benchmarks/results.json` under the same heading. A FAIL is a measurement,
reported as it came out.

- **saturation**: 3 models, each limited by the server to R requests/min (per model, 60 s sliding
  window) and configured with `rpm = R`, concurrency 64, N = 160 requests each: wall vs N/R.
- **pipeline**: 3 models × 80 questions × 2 turns + single judging, lognormal latency, concurrency
  16 per endpoint: wall vs a DAG- and capacity-respecting lower bound computed from the latencies
  the server applied; a model-after-model, generate-then-judge schedule from the same latencies.
- **overhead**: zero latency, 30 models + judge (9,600 requests; the "Before" run used 10 models and
  3,200 requests): requests/s of the engine process
  vs a bare aiohttp loop (same server, concurrency and body size) run just before and after it.
- **resume**: a second `mtbench run` of 50 models + judge (16,000 cached results): time and HTTP
  requests sent.
- **memory**: peak RSS and wall of a fresh `mtbench run` (zero latency) at 1, 10 and 50 models.
"""


def _result(passed: bool | None) -> str:
    return "" if passed is None else "PASS" if passed else "FAIL"


def _rows(outcomes: Mapping[str, Outcome]) -> list[tuple[str, ...]]:
    return [
        (name, f.name, f.measured, f.target, _result(f.passed))
        for name, outcome in outcomes.items()
        for f in outcome.figures
    ]


def format_table(outcomes: Mapping[str, Outcome]) -> str:
    """The terminal table: scenario | figure | measured | target | PASS/FAIL."""
    rows = [HEADERS, *_rows(outcomes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _markdown(outcomes: Mapping[str, Outcome]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in _rows(outcomes):
        cells = [cell.replace("|", "\\|") for cell in row]
        cells[-1] = f"**{cells[-1]}**" if cells[-1] else ""
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _revisions(scenarios: Mapping[str, dict[str, Any]]) -> str:
    """The engine commit(s) measured, and which scenarios ran on which when they differ."""
    by_revision: dict[str, list[str]] = {}
    for name, data in scenarios.items():
        by_revision.setdefault(data.get("engine", "unknown"), []).append(name)
    if len(by_revision) == 1:
        return next(iter(by_revision))
    return "; ".join(f"{rev} ({', '.join(names)})" for rev, names in by_revision.items())


def _section(heading: str, entry: dict[str, Any]) -> str:
    # The harness's own scenario order first; scenarios from other modules (tail, report) after.
    order = [name for name in SCENARIOS if name in entry["scenarios"]]
    order += [name for name in entry["scenarios"] if name not in order]
    scenarios = {name: entry["scenarios"][name] for name in order}
    outcomes = {
        name: Outcome([Figure(**f) for f in data["figures"]]) for name, data in scenarios.items()
    }
    dates = sorted({data["measured"] for data in scenarios.values()})
    measured = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    machine = entry["machine"]
    parts = [
        f"<!-- section: {heading} -->",
        f"## {heading} (measured {measured})",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram']} RAM, "
        f"{machine['python']}, {machine['os']}. Engine: {_revisions(scenarios)}.",
        "",
        _markdown(outcomes),
    ]
    parts.append(f"<!-- end: {heading} -->")
    return "\n".join(parts)


def save(
    heading: str,
    date: str,
    machine: Mapping[str, str],
    revisions: Mapping[str, str],
    outcomes: Mapping[str, Outcome],
    markdown: Path,
    raw_json: Path,
) -> None:
    """Merge these scenarios into `heading`'s entry of `raw_json`, then redraw its section.

    `revisions` is the engine commit each scenario ran on (see `bench_env.engine_revision`).
    """
    data = json.loads(raw_json.read_text()) if raw_json.exists() else {"sections": {}}
    entry = data["sections"].setdefault(heading, {"scenarios": {}})
    entry["machine"] = dict(machine)
    for name, outcome in outcomes.items():
        entry["scenarios"][name] = {
            "measured": date,
            "engine": revisions[name],
            "figures": [vars(f) for f in outcome.figures],
            "raw": outcome.raw,
        }
    raw_json.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    _replace_section(markdown, heading, _section(heading, entry))


def _replace_section(markdown: Path, heading: str, section: str) -> None:
    text = markdown.read_text() if markdown.exists() else _PREAMBLE
    pattern = re.compile(
        rf"<!-- section: {re.escape(heading)} -->.*?<!-- end: {re.escape(heading)} -->", re.S
    )
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    markdown.write_text(text)


def passed_all(outcomes: Sequence[Outcome]) -> bool:
    return all(f.passed is not False for outcome in outcomes for f in outcome.figures)
