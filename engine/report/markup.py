"""The HTML report's building blocks: the one escaper, tables, model cells and numbers.

Model names, categories, judge labels and replies are untrusted text (they come from configs, file
names and servers). Every piece of it written as markup, in the page (`engine.report.html`) and in
its charts (`engine.report.svg`), goes through `escape` here, so there is one escaper to audit.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from engine.display import format_number

__all__ = ["FALLBACK_COLOR", "escape", "model_cell", "number", "rate", "swatch", "table"]

FALLBACK_COLOR = "#999"  # a model the page has no colour for (none should be left out)


def escape(text: object) -> str:
    """Text as HTML content or as a quoted attribute value: `<`, `>`, `&` and both quotes."""
    return html.escape(str(text), quote=True)


def number(value: float | None, digits: int = 6) -> str:
    return format_number(value, digits)


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{color}"></span>'


def model_cell(model: str, colors: Mapping[str, str]) -> str:
    return f'<td class="model">{swatch(colors.get(model, FALLBACK_COLOR))}{escape(model)}</td>'


def table(headers: Sequence[str], rows: Sequence[str], first_left: int = 1) -> str:
    """A scrollable table of ready-made `<tr>` rows; column `first_left` is the names column."""
    cells = "".join(
        f'<th class="model">{escape(h)}</th>' if i == first_left else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(rows)
    return (
        f'<div class="scroll"><table><thead><tr>{cells}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )
