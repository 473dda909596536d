"""The HTML report's "How much the judges agree" section, shown when a store has two judges or more.

The same figures and reading guide as `mtbench show --agreement` (`engine.report.agreement_data`,
`engine.report.agreement_show`), one table per mode, each figure beside the items it rests on.
Judge labels come from configs and imported files: every one is escaped.
"""

from __future__ import annotations

from engine.report.agreement_data import JudgeAgreement, RatingAgreement, VerdictAgreementRow
from engine.report.agreement_show import (
    PAIRWISE_GUIDE,
    RATING_GUIDE,
    RATING_HEADERS,
    VERDICT_HEADERS,
)
from engine.report.markup import escape, number, rate, table
from engine.scoring.agreement import Agreement, VerdictAgreement

__all__ = ["AGREEMENT_ANCHOR", "agreement_section"]

AGREEMENT_ANCHOR = "agreement"


def agreement_section(agreement: JudgeAgreement | None) -> str:
    if agreement is None:
        return ""
    parts = [
        f'<section id="{AGREEMENT_ANCHOR}"><h2>How much the judges agree</h2>',
        '<p class="note">Every pair of judges, over the items both judged; each figure is '
        "followed by the number of items (or models) behind it. 1 is perfect agreement, 0 no "
        "better than chance.</p>",
    ]
    if agreement.ratings:
        rows = [_rating_row(row) for row in agreement.ratings]
        parts += [
            "<h3>Single ratings</h3>",
            f'<p class="note">{escape(RATING_GUIDE)}</p>',
            f'<div class="agreement-single">{table(RATING_HEADERS, rows, 0)}</div>',
        ]
    if agreement.verdicts:
        rows = [_verdict_row(row) for row in agreement.verdicts]
        parts += [
            "<h3>Pairwise verdicts</h3>",
            f'<p class="note">{escape(PAIRWISE_GUIDE)}</p>',
            f'<div class="agreement-pairwise">{table(VERDICT_HEADERS, rows, 0)}</div>',
        ]
    if agreement.apart:
        items = "".join(f"<li>{escape(line)}</li>" for line in agreement.apart)
        parts.append(f'<h3>Not compared</h3><ul class="agreement-apart">{items}</ul>')
    parts.append("</section>")
    return "".join(parts)


def _judges(first: str, second: str) -> str:
    return f'<td class="model">{escape(first)}</td><td class="model">{escape(second)}</td>'


def _figure(agreement: Agreement) -> str:
    return f"<td>{number(agreement.value, 3)}</td><td>{agreement.items}</td>"


def _ratio(agreement: VerdictAgreement) -> str:
    return f"<td>{rate(agreement.value)}</td><td>{agreement.agreed}/{agreement.total}</td>"


def _rating_row(row: RatingAgreement) -> str:
    return (
        f"<tr>{_judges(row.first, row.second)}{_figure(row.alpha)}{_figure(row.spearman)}"
        f"{_figure(row.tau)}</tr>"
    )


def _verdict_row(row: VerdictAgreementRow) -> str:
    return (
        f"<tr>{_judges(row.first, row.second)}{_figure(row.kappa)}{_ratio(row.with_ties)}"
        f"{_ratio(row.without_ties)}</tr>"
    )
