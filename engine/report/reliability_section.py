"""The HTML report's "Judge reliability" section: can each judge's grades be trusted?

Three tables, one question each: how its replies parsed (a judge that often gives no verdict
leaves holes in the leaderboard), whether it favours the answer shown first (pairwise), and
whether it favours longer answers (single). The figures are `engine.scoring.reliability`'s; this
module only writes them as markup, every label escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.report.data import JudgeReport
from engine.report.markup import escape, number, rate, table
from engine.report.svg import share_bar
from engine.scoring.reliability import PARSE_STATUSES, JudgeReliability

__all__ = ["reliability_section"]

POSITION_COLORS = {"won by A": "#4e79a7", "tie": "#bab0ac", "won by B": "#f28e2b"}


def reliability_section(judges: Sequence[JudgeReport]) -> str:
    return "".join(
        [
            '<section id="reliability"><h2>Judge reliability</h2>',
            _parse_table(judges),
            _position_table(judges),
            _length_table(judges),
            "</section>",
        ]
    )


def _parse_table(judges: Sequence[JudgeReport]) -> str:
    rows = []
    for judge in judges:
        for rates in judge.reliability.parse:
            counts = "".join(f"<td>{rates.count(status)}</td>" for status in PARSE_STATUSES)
            rows.append(
                f'<tr><td class="model">{escape(judge.label)}</td><td>{escape(rates.kind)}</td>'
                f"<td>{rates.total}</td>{counts}<td>{rate(rates.failure_rate)}</td></tr>"
            )
    return (
        '<h3>Parse status</h3><p class="note">How the judge\'s replies parsed: <b>ok</b> the '
        "canonical <code>[[rating]]</code> / <code>[[A]]</code>; <b>fallback</b> the one-bracket "
        "<code>[rating]</code> FastChat falls back to; <b>imported</b> an imported file's score "
        "that differs from what the parser reads in its reply; <b>out_of_range</b> a rating "
        "off the 1-10 scale (such as [[11]]), averaged as given, as FastChat does, but suspect; "
        "<b>missing</b> no rating or verdict (-1, or a game without verdict); <b>invalid</b> a "
        "rating FastChat's parser rejects (-1). Failure rate = missing + invalid.</p>"
        + table(["judge", "kind", "replies", *PARSE_STATUSES, "failure rate"], rows, 0)
    )


def _position_table(judges: Sequence[JudgeReport]) -> str:
    rows = [_position_row(j.label, j.reliability) for j in judges if j.reliability.position]
    if not rows:
        return ""
    headers = ["judge", "games", "won by A", "won by B", "ties", "A : tie : B", "no verdict"]
    return (
        '<h3>Position bias and consistency (pairwise)</h3><p class="note">Each match is played '
        "twice with the answers swapped. An unbiased judge wins about as many games for the "
        "answer shown first (A) as for the one shown second (B); a consistent one names the "
        "same winner in both games.</p>"
        + table([*headers, "consistent", "consistency rate"], rows, 0)
    )


def _position_row(label: str, reliability: JudgeReliability) -> str:
    bias, agree = reliability.position, reliability.consistency
    assert bias is not None and agree is not None
    counts = {"won by A": bias.won_by_a, "tie": bias.ties, "won by B": bias.won_by_b}
    bar = share_bar([(name, counts[name], color) for name, color in POSITION_COLORS.items()])
    return (
        f'<tr><td class="model">{escape(label)}</td><td>{bias.games}</td>'
        f"<td>{bias.won_by_a} ({rate(bias.share(bias.won_by_a))})</td>"
        f"<td>{bias.won_by_b} ({rate(bias.share(bias.won_by_b))})</td>"
        f"<td>{bias.ties} ({rate(bias.share(bias.ties))})</td><td>{bar}</td>"
        f"<td>{bias.errors}</td><td>{agree.consistent} / {agree.matches}</td>"
        f'<td class="consistency">{rate(agree.rate)}</td></tr>'
    )


def _length_table(judges: Sequence[JudgeReport]) -> str:
    rows = [
        f'<tr><td class="model">{escape(j.label)}</td><td>{j.reliability.length.points}</td>'
        f"<td>{number(j.reliability.length.pearson, 3)}</td></tr>"
        for j in judges
        if j.reliability.length is not None
    ]
    if not rows:
        return ""
    return (
        '<h3>Verbosity bias</h3><p class="note">Pearson correlation between a single score '
        "and the length in characters of the answer it grades (the judged turn's answer; "
        "-1 ratings left out). MT-Bench judges are known to favour longer answers; a "
        "strongly positive r is a warning.</p>"
        + table(["judge", "scored answers", "Pearson r"], rows, 0)
    )
