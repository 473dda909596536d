"""Inline SVG charts for the HTML report: radar, turn bars, interval bars, share bars.

The report must open offline and from a mail attachment, so charts are plain SVG markup written
here rather than drawn by a charting library at view time. Every label and attribute that carries a
model name goes through the report's one escaper (`engine.report.markup.escape`): model names come
from file names and configs, not from us.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.display import format_number
from engine.report.markup import escape

__all__ = [
    "TURN_COLORS",
    "RadarSeries",
    "ci_bar",
    "model_colors",
    "radar_chart",
    "share_bar",
    "turn_bars",
]

# Tableau 10: distinct at a glance for small tables; larger ones continue round the hue circle.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
TURN_COLORS = ("#4e79a7", "#f28e2b")
GOLDEN_ANGLE = 0.381966
MAX_SCORE = 10.0
LABEL_CHARS = 30
CROWDED = 8


@dataclass(frozen=True, slots=True)
class RadarSeries:
    """One model's polygon: a value per radar axis (None draws at the centre)."""

    model: str
    values: tuple[float | None, ...]


def _on_scale(value: float) -> float:
    return min(max(0.0, value), MAX_SCORE) if math.isfinite(value) else MAX_SCORE


def _clip(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """A stable colour per model, the same in every chart and in the question browser."""
    colors = {}
    for index, model in enumerate(models):
        if index < len(PALETTE):
            colors[model] = PALETTE[index]
            continue
        hue = (index * GOLDEN_ANGLE) % 1.0
        lightness = 0.42 if index % 2 else 0.55
        red, green, blue = colorsys.hls_to_rgb(hue, lightness, 0.65)
        colors[model] = f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"
    return colors


def radar_chart(
    axes: Sequence[str], series: Sequence[RadarSeries], colors: Mapping[str, str]
) -> str:
    """Scores 0–10 on one spoke per category; exactly one `<polygon>` per model, nothing else."""
    radius, pad = 150.0, 95.0
    count = len(axes)
    angles = [-math.pi / 2 + 2 * math.pi * i / count for i in range(count)]

    def point(angle: float, value: float) -> tuple[float, float]:
        scale = radius * max(0.0, min(value, MAX_SCORE)) / MAX_SCORE
        return scale * math.cos(angle), scale * math.sin(angle)

    parts = []
    for level in (2, 4, 6, 8, 10):
        ring = " ".join(
            f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}"
            for i, (x, y) in enumerate(point(a, level) for a in angles)
        )
        parts.append(f'<path class="ring" d="{ring} Z"/>')
        parts.append(
            f'<text class="tick" x="3" y="{-radius * level / MAX_SCORE + 4:.1f}">{level}</text>'
        )
    for axis, angle in zip(axes, angles, strict=True):
        x, y = point(angle, MAX_SCORE)
        lx, ly = (radius + 14) * math.cos(angle), (radius + 14) * math.sin(angle)
        anchor = "middle" if abs(lx) < 1 else ("start" if lx > 0 else "end")
        parts.append(f'<line class="spoke" x1="0" y1="0" x2="{x:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{lx:.1f}" y="{ly + 4:.1f}" text-anchor="{anchor}">'
            f"{escape(axis)}</text>"
        )
    for line in series:
        points = " ".join(
            "{:.1f},{:.1f}".format(*point(angle, value or 0.0))
            for angle, value in zip(angles, line.values, strict=True)
        )
        detail = ", ".join(
            f"{axis} {'-' if value is None else f'{value:.2f}'}"
            for axis, value in zip(axes, line.values, strict=True)
        )
        color = colors.get(line.model, PALETTE[0])
        parts.append(
            f'<polygon class="series" data-model="{escape(line.model)}" points="{points}" '
            f'stroke="{color}" fill="{color}"><title>{escape(line.model)}: {escape(detail)}</title>'
            "</polygon>"
        )
    size = 2 * (radius + pad)
    # Dozens of filled polygons turn to mud; past a handful only the outlines are kept strong.
    crowded = " crowded" if len(series) > CROWDED else ""
    return (
        f'<svg class="radar{crowded}" role="img" aria-label="mean score per category" '
        f'viewBox="{-size / 2:.0f} {-(radius + 30):.0f} {size:.0f} {2 * radius + 60:.0f}">'
        + "".join(parts)
        + "</svg>"
    )


def turn_bars(rows: Sequence[tuple[str, float | None, float | None]]) -> str:
    """Two bars per model (turn 1, turn 2) on a shared 0–10 scale, in the order given."""
    label_width, bar_width, row_height, top = 200, 330, 28, 26
    height = top + row_height * len(rows) + 6
    parts = []
    for tick in range(0, 11, 2):
        x = label_width + bar_width * tick / MAX_SCORE
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height}"/>')
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{top - 8}" text-anchor="middle">{tick}</text>'
        )
    for index, (model, turn_1, turn_2) in enumerate(rows):
        y = top + index * row_height
        parts.append(
            f'<text class="label" x="{label_width - 8}" y="{y + 15}" text-anchor="end">'
            f"<title>{escape(model)}</title>{escape(_clip(model))}</text>"
        )
        for turn, value in enumerate((turn_1, turn_2)):
            bar_y = y + 3 + turn * 11
            # A mean off the scale (a judge that rated 11) ends at the axis, with its number.
            width = 0.0 if value is None else bar_width * _on_scale(value) / MAX_SCORE
            shown = format_number(value, 2)
            parts.append(
                f'<rect class="bar turn-{turn + 1}" data-model="{escape(model)}" x="{label_width}" '
                f'y="{bar_y}" width="{width:.1f}" height="10" fill="{TURN_COLORS[turn]}">'
                f"<title>{escape(model)} turn {turn + 1}: {shown}</title></rect>"
                f'<text class="value" x="{label_width + width + 4:.1f}" y="{bar_y + 9}">'
                f"{shown}</text>"
            )
    return (
        f'<svg class="turn-bars" role="img" aria-label="turn 1 and turn 2 mean score per model" '
        f'viewBox="0 0 {label_width + bar_width + 50} {height}" '
        f'width="{label_width + bar_width + 50}" height="{height}">' + "".join(parts) + "</svg>"
    )


def ci_bar(value: float | None, low: float, high: float, domain: tuple[float, float]) -> str:
    """A small interval bar for a table cell: the interval as a line, the estimate as a dot."""
    width, height, pad = 140, 16, 5
    start, end = domain
    span = (end - start) or 1.0

    def x(v: float) -> float:
        return pad + (width - 2 * pad) * (min(max(v, start), end) - start) / span

    ticks = "".join(
        f'<line class="grid" x1="{x(t):.1f}" y1="2" x2="{x(t):.1f}" y2="{height - 2}"/>'
        for t in _ticks(start, end)
    )
    dot = "" if value is None else f'<circle cx="{x(value):.1f}" cy="{height / 2}" r="3.2"/>'
    return (
        f'<svg class="ci-bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="interval {low:.2f} to {high:.2f}">{ticks}'
        f'<line class="interval" x1="{x(low):.1f}" y1="{height / 2}" x2="{x(high):.1f}" '
        f'y2="{height / 2}"/>{dot}</svg>'
    )


def _ticks(start: float, end: float) -> list[float]:
    step = 0.25 if end - start <= 1.0 else 1.0
    first = math.ceil(start / step) * step
    return [first + i * step for i in range(int((end - first) / step + 1e-9) + 1)]


def share_bar(parts: Sequence[tuple[str, int, str]]) -> str:
    """A 100% stacked bar of (label, count, colour) parts, e.g. games won by position A/tie/B."""
    width, height = 220, 14
    total = sum(count for _, count, _ in parts)
    if not total:
        return ""
    shapes, x = [], 0.0
    for label, count, color in parts:
        w = width * count / total
        shapes.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{color}">'
            f"<title>{escape(label)}: {count} ({count / total:.1%})</title></rect>"
        )
        x += w
    return (
        f'<svg class="share-bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="shares">' + "".join(shapes) + "</svg>"
    )
