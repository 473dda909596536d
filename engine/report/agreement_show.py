"""`mtbench show --agreement`: how much the judges agree, as tables and as JSON.

The figures are `engine.report.agreement_data`'s; this module only writes them, every figure beside
the number of items (or models) it rests on, labels escaped for the terminal. The reading guide is
shared with the HTML report, so the two say the same.
"""

from __future__ import annotations

import textwrap
from typing import Any

from engine.display import format_number, format_table, terminal_text
from engine.report.agreement_data import JudgeAgreement, RatingAgreement, VerdictAgreementRow
from engine.scoring.agreement import Agreement, VerdictAgreement

__all__ = [
    "PAIRWISE_GUIDE",
    "RATING_GUIDE",
    "RATING_HEADERS",
    "VERDICT_HEADERS",
    "agreement_json",
    "format_agreement",
]

GUIDE_WIDTH = 100
RATING_HEADERS = (
    "judge", "judge", "alpha", "items", "spearman", "items", "kendall tau", "models"
)  # fmt: skip
VERDICT_HEADERS = (
    "judge", "judge", "kappa", "matches", "agreement", "agreed/pairs",
    "without ties", "agreed/pairs",
)  # fmt: skip
RATING_GUIDE = (
    "Single ratings: an item is one model's turn of one question, valued at the judge's median "
    "over its samples (-1s left out). Krippendorff's alpha (interval) and Spearman's rho over "
    "the items both rated; Kendall's tau-b between the two leaderboards, over the models both "
    "scored. 1 is perfect agreement, 0 no more than chance; alpha above 0.8 is reliable, 0.67-0.8 "
    "tentative, below that the judges disagree; rho and tau near 1 mean the same order."
)
PAIRWISE_GUIDE = (
    "Pairwise verdicts: an item is a match (two games with the answers swapped; games that "
    "disagree are a tie; a game without verdict leaves the match out). Cohen's kappa corrects "
    "agreement for chance (above 0.6 substantial, 0.4-0.6 moderate, below 0.2 slight). Agreement "
    "is FastChat's compute_agreement ratio; 'without ties' leaves out every pair where either "
    "judge said tie, so it counts only clear verdicts and is usually higher (the MT-Bench paper "
    "has GPT-4 vs human experts at 66% with ties, 85% without)."
)


def _figure(agreement: Agreement) -> str:
    return format_number(agreement.value, 3)


def _ratio(agreement: VerdictAgreement) -> str:
    return "-" if agreement.value is None else f"{agreement.value:.1%}"


def _name(label: str) -> str:
    return terminal_text(label, name=True)


def format_agreement(agreement: JudgeAgreement) -> str:
    compared = ", ".join(_name(label) for label in agreement.judges)
    title = f"How much the judges agree ({compared})"
    if agreement.against is not None:
        title += f", each against {_name(agreement.against)}"
    parts = [title]
    if agreement.ratings:
        rows = [_rating_row(row) for row in agreement.ratings]
        parts.append(f"Single ratings\n{format_table(RATING_HEADERS, rows, left_columns=2)}")
        parts.append(textwrap.fill(RATING_GUIDE, GUIDE_WIDTH))
    if agreement.verdicts:
        rows = [_verdict_row(row) for row in agreement.verdicts]
        parts.append(f"Pairwise verdicts\n{format_table(VERDICT_HEADERS, rows, left_columns=2)}")
        parts.append(textwrap.fill(PAIRWISE_GUIDE, GUIDE_WIDTH))
    if agreement.apart:
        parts.append("Not compared:\n" + "\n".join(f"  {_name(a)}" for a in agreement.apart))
    return "\n\n".join(parts)


def _rating_row(row: RatingAgreement) -> list[object]:
    return [
        row.first, row.second, _figure(row.alpha), row.alpha.items,
        _figure(row.spearman), row.spearman.items, _figure(row.tau), row.tau.items,
    ]  # fmt: skip


def _verdict_row(row: VerdictAgreementRow) -> list[object]:
    return [
        row.first, row.second, _figure(row.kappa), row.kappa.items,
        _ratio(row.with_ties), f"{row.with_ties.agreed}/{row.with_ties.total}",
        _ratio(row.without_ties), f"{row.without_ties.agreed}/{row.without_ties.total}",
    ]  # fmt: skip


def agreement_json(agreement: JudgeAgreement) -> dict[str, Any]:
    """What `mtbench show --agreement --json` prints."""
    return {
        "judges": list(agreement.judges),
        "against": agreement.against,
        "single": [
            {
                "judges": [row.first, row.second],
                "krippendorff_alpha": _figure_json(row.alpha, "items"),
                "spearman": _figure_json(row.spearman, "items"),
                "kendall_tau": _figure_json(row.tau, "models"),
            }
            for row in agreement.ratings
        ],
        "pairwise": [
            {
                "judges": [row.first, row.second],
                "cohen_kappa": _figure_json(row.kappa, "items"),
                "agreement": _ratio_json(row.with_ties),
                "agreement_without_ties": _ratio_json(row.without_ties),
            }
            for row in agreement.verdicts
        ],
        "not_compared": list(agreement.apart),
    }


def _figure_json(agreement: Agreement, counted: str) -> dict[str, Any]:
    return {"value": agreement.value, counted: agreement.items}


def _ratio_json(agreement: VerdictAgreement) -> dict[str, Any]:
    return {"value": agreement.value, "agreed": agreement.agreed, "pairs": agreement.total}
