"""`mtbench report`: one self-contained HTML file — leaderboards, charts, judge reliability, and a
browser over every question, answer and judge reply.

The file must open anywhere (offline, from an attachment, years later), so CSS, script, charts and
data are all inline and nothing is fetched. It also shows text written by models and judges, which
is untrusted: every piece of it is HTML-escaped when written as markup, the browser's data is a
JSON block with every `<`, `>` and `&` escaped (so no answer can close the tag), the script inserts
it with `textContent` only, and a Content-Security-Policy lets only our own script (by hash) run.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

from engine.errors import InputError
from engine.report.assets import REPORT_CSS, REPORT_JS
from engine.report.browser import browser_payload, browser_section, embed_json
from engine.report.data import JudgeReport, ReportData, gather_report
from engine.report.destination import refuse_output_over_a_store, write_output
from engine.report.markup import FALLBACK_COLOR, escape, model_cell, number, swatch, table
from engine.report.notes import ci_text, last_run_failures
from engine.report.reliability_section import reliability_section
from engine.report.svg import TURN_COLORS, RadarSeries, ci_bar, model_colors, radar_chart, turn_bars
from engine.report.sweep_html import SWEEP_ANCHOR, sweep_section
from engine.scoring.summaries import SingleModelSummary, category_names

__all__ = ["render_report", "report_page", "save_report", "write_report"]

MIN_RADAR_AXES = 3


async def write_report(
    store_path: Path, out: Path, *, bench: str = "mt_bench", judge: str | None = None
) -> Path:
    """Render the store's report to `out` (see `report_page` and `save_report`)."""
    page = await report_page(Path(store_path), Path(out), bench=bench, judge=judge)
    return await asyncio.to_thread(save_report, Path(out), page)


async def report_page(
    store_path: Path,
    out: Path,
    *,
    bench: str = "mt_bench",
    judge: str | None = None,
    texts: bool = True,
) -> bytes:
    """The store's report as bytes, once `out` is known not to be a store; without `texts`,
    the question browser shows scores but no answer or judge reply (`report --no-texts`).

    `out` may not be the store itself, by any name, nor its journal or lock, nor any other SQLite
    database: a report written there would destroy every answer paid for.
    """
    refuse_output_over_a_store(out, store_path)
    data = await gather_report(store_path, bench, judge=judge)
    page = await asyncio.to_thread(render_report, data, texts=texts)
    return page.encode("utf-8")


def save_report(out: Path, page: bytes) -> Path:
    """Write the page to `out`, replacing a file atomically (readers never see half).

    A device, a pipe or a terminal (`/dev/null`, `/dev/stdout`, a FIFO) is written into, never
    replaced by a file, and a symlink keeps pointing where it did: the file it names is replaced.
    Opening a pipe waits for its reader: the CLI calls this outside the event loop, where a signal
    ends that wait.
    """
    try:
        return write_output(out, page)
    except (OSError, RuntimeError) as error:  # RuntimeError: pathlib's symlink loop (< 3.13)
        reason = getattr(error, "strerror", None) or error
        raise InputError(f"{out}: cannot write the report ({reason})") from None


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(REPORT_JS.encode()).digest()).decode()
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def render_report(data: ReportData, *, texts: bool = True) -> str:
    """The whole page as one string: markup from trusted numbers, escaped text, then the data."""
    colors = model_colors(data.models)
    judged = ", ".join(escape(j.label) for j in data.judges) or "none yet"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(data.created))
    nav = [(f"judge-{i}", f"Judge {j.name}") for i, j in enumerate(data.judges)]
    nav += [(SWEEP_ANCHOR, "Score vs step")] if data.sweeps else []
    nav += [("reliability", "Judge reliability"), ("questions", "Questions")]
    body = [
        '<header class="top"><h1>MT-Bench report</h1>',
        f'<p class="meta">store <code>{escape(data.store)}</code> · bench {escape(data.bench)} · '
        f"{len(data.models)} models · {len(data.questions)} questions · judges: {judged} · "
        f"generated {stamp}</p>",
        _last_run_note(data),
        '<nav class="sections">'
        + "".join(f'<a href="#{anchor}">{escape(title)}</a>' for anchor, title in nav)
        + "</nav></header><main>",
    ]
    if not data.judges:
        body.append('<p class="note">No judgments in this store yet: run `mtbench judge`.</p>')
    body += [_judge_section(i, j, colors) for i, j in enumerate(data.judges)]
    body.append(sweep_section(data.sweeps))
    body.append(reliability_section(data.judges))
    body.append(browser_section())
    body.append("</main>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>MT-Bench report · {escape(data.store)}</title>"
        '<link rel="icon" href="data:,">'
        f"<style>{REPORT_CSS}</style></head><body>"
        + "\n".join(body)
        + '\n<script type="application/json" id="report-data">'
        + embed_json(browser_payload(data, colors, texts=texts))
        + f"</script>\n<script>{REPORT_JS}</script></body></html>\n"
    )


def _last_run_note(data: ReportData) -> str:
    failures = last_run_failures(data.last_run, escape)
    return "" if failures is None else f'<p class="meta warning">{failures}</p>'


def _domain(
    lows: Sequence[float], highs: Sequence[float], bounds: tuple[float, float]
) -> tuple[float, float]:
    """A shared scale for a table's interval bars: whole units around every interval."""
    if not lows:
        return bounds
    step = 1.0 if bounds[1] > 1 else 0.1
    low = max(bounds[0], (min(lows) // step) * step)
    high = min(bounds[1], -((-max(highs)) // step) * step)
    return (low, high) if high > low else bounds


def _judge_section(index: int, judge: JudgeReport, colors: dict[str, str]) -> str:
    parts = [f'<section class="judge" id="judge-{index}"><h2>Judge {escape(judge.label)}</h2>']
    if judge.single:
        parts += [
            "<h3>Leaderboard (single grading)</h3>",
            '<p class="note">FastChat\'s <code>show_result</code> numbers: -1 ratings are left '
            "out, overall is the mean over every remaining turn. The 95% interval is a bootstrap "
            f"over questions (1000 resamples).{_samples_note(judge)}</p>",
            _single_table(judge, colors),
            '<div class="grid2"><div>',
            _radar_block(judge.single, colors),
            '</div><div><h3>Turn 1 vs turn 2</h3><p class="turn-legend">'
            f"{swatch(TURN_COLORS[0])}turn 1 {swatch(TURN_COLORS[1])}turn 2</p>",
            turn_bars([(s.model, s.turn_1, s.turn_2) for s in judge.single]),
            "</div></div><h3>Per category (mean score)</h3>",
            _category_table(judge.single, colors),
        ]
    if judge.pairwise:
        against = "all pairs" if judge.pair_baseline is None else f"against {judge.pair_baseline}"
        parts.append(f"<h3>Leaderboard (pairwise, {escape(against)})</h3>")
        parts.append(
            '<p class="note">A match is two games with the answers swapped; games that disagree, '
            "or a tie in game 1, count as a tie; matches with a game without verdict are left "
            "out (errors). The interval is of the adjusted win rate.</p>"
        )
        parts.append(_pair_table(judge, colors))
    parts.append("</section>")
    return "".join(parts)


def _samples_note(judge: JudgeReport) -> str:
    if judge.samples < 2:
        return ""
    return f" Each turn was judged {judge.samples} times and scores the median of its samples."


def _single_table(judge: JudgeReport, colors: dict[str, str]) -> str:
    intervals = [s.ci for s in judge.single if s.ci is not None]
    domain = _domain([c.low for c in intervals], [c.high for c in intervals], (1.0, 10.0))
    rows = []
    for rank, s in enumerate(judge.single, 1):
        bar = "" if s.ci is None else ci_bar(s.score, s.ci.low, s.ci.high, domain)
        unjudged = s.unjudged(judge.expected)
        rows.append(
            f'<tr data-model="{escape(s.model)}"><td class="rank">{rank}</td>'
            f"{model_cell(s.model, colors)}"
            f'<td class="turn-1">{number(s.turn_1)}</td><td class="turn-2">{number(s.turn_2)}</td>'
            f'<td class="overall">{number(s.score)}</td><td class="ci">{ci_text(s)}</td>'
            f'<td class="ci-cell">{bar}</td><td class="missing">{s.missing}</td>'
            f"<td>{'-' if unjudged is None else unjudged}</td><td>{s.rows}</td></tr>"
        )
    scale = f"{domain[0]:g}–{domain[1]:g}"
    headers = ["#", "model", "turn 1", "turn 2", "overall", "95% CI", f"CI ({scale})", "-1s"]
    return table([*headers, "unjudged", "rows"], rows)


def _category_table(summaries: Sequence[SingleModelSummary], colors: dict[str, str]) -> str:
    names = category_names(summaries)
    rows = []
    for s in summaries:
        cells = "".join(f"<td>{number(s.category_score(name), 2)}</td>" for name in names)
        rows.append(f"<tr>{model_cell(s.model, colors)}{cells}</tr>")
    return table(["model", *names], rows, first_left=0)


def _radar_block(summaries: Sequence[SingleModelSummary], colors: dict[str, str]) -> str:
    axes = category_names(summaries)
    if len(axes) < MIN_RADAR_AXES:
        return (
            '<h3>Per category</h3><p class="note">A radar chart needs three or more categories; '
            "record the questions (`mtbench import --data`) so answers get theirs.</p>"
        )
    series = [RadarSeries(s.model, tuple(s.category_score(a) for a in axes)) for s in summaries]
    legend = "".join(
        f'<button type="button" data-model="{escape(s.model)}" aria-pressed="true">'
        f"{swatch(colors.get(s.model, FALLBACK_COLOR))}"
        f"{escape(s.model)}</button>"
        for s in summaries
    )
    toggles = (
        '<button type="button" class="all" data-show="all">show all</button>'
        '<button type="button" class="all" data-show="none">hide all</button>'
    )
    return (
        '<h3>Per category</h3><div class="chart-with-legend">'
        + radar_chart(axes, series, colors)
        + f'<div class="legend">{legend}{toggles}</div></div>'
    )


def _pair_table(judge: JudgeReport, colors: dict[str, str]) -> str:
    rows = []
    for rank, s in enumerate(judge.pairwise, 1):
        bar = "" if s.ci is None else ci_bar(s.win_rate_adjusted, s.ci.low, s.ci.high, (0.0, 1.0))
        rows.append(
            f'<tr data-model="{escape(s.model)}"><td class="rank">{rank}</td>'
            f"{model_cell(s.model, colors)}"
            f"<td>{s.win}</td><td>{s.loss}</td><td>{s.tie}</td><td>{number(s.win_rate)}</td>"
            f"<td>{number(s.loss_rate)}</td><td>{number(s.win_rate_adjusted)}</td>"
            f'<td>{ci_text(s)}</td><td class="ci-cell">{bar}</td><td>{s.errors}</td></tr>'
        )
    headers = ["#", "model", "win", "loss", "tie", "win_rate", "loss_rate", "win_rate_adjusted"]
    return table([*headers, "95% CI", "CI (0–1)", "errors"], rows)
