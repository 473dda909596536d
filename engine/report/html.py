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
import html
import os
import stat
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from engine.display import format_number
from engine.errors import InputError
from engine.report.assets import REPORT_CSS, REPORT_JS
from engine.report.browser import browser_payload, browser_section, embed_json
from engine.report.data import JudgeReport, ReportData, gather_report
from engine.report.svg import (
    TURN_COLORS,
    RadarSeries,
    ci_bar,
    model_colors,
    radar_chart,
    share_bar,
    turn_bars,
)
from engine.scoring.reliability import PARSE_STATUSES, JudgeReliability
from engine.scoring.summaries import SingleModelSummary
from engine.store.storefile import SQLITE_MAGIC

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
    _refuse_output_over_a_store(out, store_path)
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
        return _write_output(out, page)
    except OSError as error:
        raise InputError(f"{out}: cannot write the report ({error.strerror or error})") from None


def _refuse_output_over_a_store(out: Path, store: Path) -> None:
    try:
        if out.is_file() and store.exists() and os.path.samefile(out, store):
            raise InputError(f"{out}: is the store itself; give -o a path for the HTML file")
        companions = {
            store.resolve().with_name(store.resolve().name + suffix)
            for suffix in ("-wal", "-shm", "-journal", ".lock")
        }
        if out.resolve() in companions:
            raise InputError(f"{out}: belongs to the store {store}; give -o another path")
        if out.is_file():
            with out.open("rb") as existing:
                head = existing.read(len(SQLITE_MAGIC))
            if head == SQLITE_MAGIC:
                raise InputError(
                    f"{out}: is a SQLite database, which the report would replace; "
                    "give -o another path"
                )
    except OSError:
        return  # writing will say what is wrong with the path


def _write_output(out: Path, payload: bytes) -> Path:
    """Replace a file atomically; write into a device, pipe or terminal where it is."""
    try:
        mode = out.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        with out.open("wb") as stream:
            stream.write(payload)
        return out
    _atomic_write(out.resolve() if out.is_symlink() else out, payload)
    return out


def _atomic_write(out: Path, payload: bytes) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return out


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(REPORT_JS.encode()).digest()).decode()
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def render_report(data: ReportData, *, texts: bool = True) -> str:
    """The whole page as one string: markup from trusted numbers, escaped text, then the data."""
    colors = model_colors(data.models)
    judged = ", ".join(_e(j.label) for j in data.judges) or "none yet"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(data.created))
    nav = [(f"judge-{i}", f"Judge {j.name}") for i, j in enumerate(data.judges)]
    nav += [("reliability", "Judge reliability"), ("questions", "Questions")]
    body = [
        '<header class="top"><h1>MT-Bench report</h1>',
        f'<p class="meta">store <code>{_e(data.store)}</code> · bench {_e(data.bench)} · '
        f"{len(data.models)} models · {len(data.questions)} questions · judges: {judged} · "
        f"generated {stamp}</p>",
        _last_run_note(data),
        '<nav class="sections">'
        + "".join(f'<a href="#{anchor}">{_e(title)}</a>' for anchor, title in nav)
        + "</nav></header><main>",
    ]
    if not data.judges:
        body.append('<p class="note">No judgments in this store yet: run `mtbench judge`.</p>')
    body += [_judge_section(i, j, colors) for i, j in enumerate(data.judges)]
    body.append(_reliability_section(data.judges))
    body.append(browser_section())
    body.append("</main>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>MT-Bench report · {_e(data.store)}</title>"
        '<link rel="icon" href="data:,">'
        f"<style>{REPORT_CSS}</style></head><body>"
        + "\n".join(body)
        + '\n<script type="application/json" id="report-data">'
        + embed_json(browser_payload(data, colors, texts=texts))
        + f"</script>\n<script>{REPORT_JS}</script></body></html>\n"
    )


def _last_run_note(data: ReportData) -> str:
    run = data.last_run
    if run is None or not run.failures:
        return ""
    classes = ", ".join(f"{_e(name)} {count}" for name, count in run.failures.items())
    return (
        f'<p class="meta warning">last run #{run.id} ({_e(run.command)}, {_e(run.status)}): '
        f"{sum(run.failures.values())} jobs failed ({classes}); see the store's failures table</p>"
    )


def _num(value: float | None, digits: int = 6) -> str:
    return format_number(value, digits)


def _model_cell(model: str, colors: dict[str, str]) -> str:
    swatch = f'<span class="swatch" style="background:{colors.get(model, "#999")}"></span>'
    return f'<td class="model">{swatch}{_e(model)}</td>'


def _table(headers: Sequence[str], rows: Sequence[str], first_left: int = 1) -> str:
    cells = "".join(
        f'<th class="model">{_e(h)}</th>' if i == first_left else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(rows)
    return (
        f'<div class="scroll"><table><thead><tr>{cells}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


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
    parts = [f'<section class="judge" id="judge-{index}"><h2>Judge {_e(judge.label)}</h2>']
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
            f'<span class="swatch" style="background:{TURN_COLORS[0]}"></span>turn 1 '
            f'<span class="swatch" style="background:{TURN_COLORS[1]}"></span>turn 2</p>',
            turn_bars([(s.model, s.turn_1, s.turn_2) for s in judge.single]),
            "</div></div><h3>Per category (mean score)</h3>",
            _category_table(judge.single, colors),
        ]
    if judge.pairwise:
        against = "all pairs" if judge.pair_baseline is None else f"against {judge.pair_baseline}"
        parts.append(f"<h3>Leaderboard (pairwise, {_e(against)})</h3>")
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
        ci_text = "-" if s.ci is None else f"[{_num(s.ci.low, 2)}, {_num(s.ci.high, 2)}]"
        bar = "" if s.ci is None else ci_bar(s.score, s.ci.low, s.ci.high, domain)
        unjudged = judge.unjudged(s)
        rows.append(
            f'<tr data-model="{_e(s.model)}"><td class="rank">{rank}</td>'
            f"{_model_cell(s.model, colors)}"
            f'<td class="turn-1">{_num(s.turn_1)}</td><td class="turn-2">{_num(s.turn_2)}</td>'
            f'<td class="overall">{_num(s.score)}</td><td class="ci">{ci_text}</td>'
            f'<td class="ci-cell">{bar}</td><td class="missing">{s.missing}</td>'
            f"<td>{'-' if unjudged is None else unjudged}</td><td>{s.rows}</td></tr>"
        )
    scale = f"{domain[0]:g}–{domain[1]:g}"
    headers = ["#", "model", "turn 1", "turn 2", "overall", "95% CI", f"CI ({scale})", "-1s"]
    return _table([*headers, "unjudged", "rows"], rows)


def _categories(summaries: Sequence[SingleModelSummary]) -> list[str]:
    return sorted({c.category for s in summaries for c in s.categories})


def _category_table(summaries: Sequence[SingleModelSummary], colors: dict[str, str]) -> str:
    names = _categories(summaries)
    rows = []
    for s in summaries:
        scores = {c.category: c.score for c in s.categories}
        cells = "".join(f"<td>{_num(scores.get(name), 2)}</td>" for name in names)
        rows.append(f"<tr>{_model_cell(s.model, colors)}{cells}</tr>")
    return _table(["model", *names], rows, first_left=0)


def _radar_block(summaries: Sequence[SingleModelSummary], colors: dict[str, str]) -> str:
    axes = _categories(summaries)
    if len(axes) < MIN_RADAR_AXES:
        return (
            '<h3>Per category</h3><p class="note">A radar chart needs three or more categories; '
            "record the questions (`mtbench import --data`) so answers get theirs.</p>"
        )
    series = []
    for s in summaries:
        scores = {c.category: c.score for c in s.categories}
        series.append(RadarSeries(s.model, tuple(scores.get(axis) for axis in axes)))
    legend = "".join(
        f'<button type="button" data-model="{_e(s.model)}" aria-pressed="true">'
        f'<span class="swatch" style="background:{colors.get(s.model, "#999")}"></span>'
        f"{_e(s.model)}</button>"
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
        ci_text = "-" if s.ci is None else f"[{_num(s.ci.low, 3)}, {_num(s.ci.high, 3)}]"
        bar = "" if s.ci is None else ci_bar(s.win_rate_adjusted, s.ci.low, s.ci.high, (0.0, 1.0))
        rows.append(
            f'<tr data-model="{_e(s.model)}"><td class="rank">{rank}</td>'
            f"{_model_cell(s.model, colors)}"
            f"<td>{s.win}</td><td>{s.loss}</td><td>{s.tie}</td><td>{_num(s.win_rate)}</td>"
            f"<td>{_num(s.loss_rate)}</td><td>{_num(s.win_rate_adjusted)}</td>"
            f'<td>{ci_text}</td><td class="ci-cell">{bar}</td><td>{s.errors}</td></tr>'
        )
    headers = ["#", "model", "win", "loss", "tie", "win_rate", "loss_rate", "win_rate_adjusted"]
    return _table([*headers, "95% CI", "CI (0–1)", "errors"], rows)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _reliability_section(judges: Sequence[JudgeReport]) -> str:
    parts = [
        '<section id="reliability"><h2>Judge reliability</h2>',
        '<h3>Parse status</h3><p class="note">How the judge\'s replies parsed: <b>ok</b> the '
        "canonical <code>[[rating]]</code> / <code>[[A]]</code>; <b>fallback</b> the one-bracket "
        "<code>[rating]</code> FastChat falls back to; <b>imported</b> an imported file's score "
        "that differs from what the parser reads in its reply; <b>out_of_range</b> a rating "
        "off the 1-10 scale (such as [[11]]), averaged as given, as FastChat does, but suspect; "
        "<b>missing</b> no rating or verdict (-1, or a game without verdict); <b>invalid</b> a "
        "rating FastChat's parser rejects (-1). Failure rate = missing + invalid.</p>",
    ]
    rows = []
    for judge in judges:
        for rates in judge.reliability.parse:
            counts = "".join(f"<td>{rates.count(status)}</td>" for status in PARSE_STATUSES)
            rows.append(
                f'<tr><td class="model">{_e(judge.label)}</td><td>{_e(rates.kind)}</td>'
                f"<td>{rates.total}</td>{counts}<td>{_rate(rates.failure_rate)}</td></tr>"
            )
    parts.append(_table(["judge", "kind", "replies", *PARSE_STATUSES, "failure rate"], rows, 0))
    pair_rows = [_position_row(j.label, j.reliability) for j in judges if j.reliability.position]
    if pair_rows:
        parts.append(
            '<h3>Position bias and consistency (pairwise)</h3><p class="note">Each match is played '
            "twice with the answers swapped. An unbiased judge wins about as many games for the "
            "answer shown first (A) as for the one shown second (B); a consistent one names the "
            "same winner in both games.</p>"
        )
        headers = ["judge", "games", "won by A", "won by B", "ties", "A : tie : B", "no verdict"]
        parts.append(_table([*headers, "consistent", "consistency rate"], pair_rows, 0))
    length_rows = [
        f'<tr><td class="model">{_e(j.label)}</td><td>{j.reliability.length.points}</td>'
        f"<td>{_num(j.reliability.length.pearson, 3)}</td></tr>"
        for j in judges
        if j.reliability.length is not None
    ]
    if length_rows:
        parts.append(
            '<h3>Verbosity bias</h3><p class="note">Pearson correlation between a single score '
            "and the length in characters of the answer it grades (the judged turn's answer; "
            "-1 ratings left out). MT-Bench judges are known to favour longer answers; a "
            "strongly positive r is a warning.</p>"
        )
        parts.append(_table(["judge", "scored answers", "Pearson r"], length_rows, 0))
    parts.append("</section>")
    return "".join(parts)


def _position_row(label: str, reliability: JudgeReliability) -> str:
    bias, agree = reliability.position, reliability.consistency
    assert bias is not None and agree is not None
    bar = share_bar(
        [("won by A", bias.won_by_a, "#4e79a7"), ("tie", bias.ties, "#bab0ac"),
         ("won by B", bias.won_by_b, "#f28e2b")]
    )  # fmt: skip
    return (
        f'<tr><td class="model">{_e(label)}</td><td>{bias.games}</td>'
        f"<td>{bias.won_by_a} ({_rate(bias.share(bias.won_by_a))})</td>"
        f"<td>{bias.won_by_b} ({_rate(bias.share(bias.won_by_b))})</td>"
        f"<td>{bias.ties} ({_rate(bias.share(bias.ties))})</td><td>{bar}</td>"
        f"<td>{bias.errors}</td><td>{agree.consistent} / {agree.matches}</td>"
        f'<td class="consistency">{_rate(agree.rate)}</td></tr>'
    )
