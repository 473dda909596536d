"""Inline SVG for score against training step: a line through each checkpoint's mean, its 95%
interval as a band, the best checkpoint marked.

Like `engine.report.svg`, plain markup written here so the report opens offline; every label
comes from a checkpoint's name (a file name, a config) and goes through `html.escape`. The x axis
is the training step on a linear scale, so uneven checkpoint spacing shows as it is; the y axis
spans whole units around every interval (within 0-10), so small differences stay visible.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from engine.display import format_number

__all__ = ["StepPoint", "step_chart"]

LINE_COLOR = "#4e79a7"
BAND_COLOR = "#4e79a7"
BEST_COLOR = "#e15759"
MAX_SCORE = 10.0


@dataclass(frozen=True, slots=True)
class StepPoint:
    """One scored checkpoint on the chart."""

    label: str
    step: int
    score: float
    low: float | None  # the interval, when bootstrapped
    high: float | None
    best: bool = False


@dataclass(frozen=True, slots=True)
class _Frame:
    width: float
    height: float
    left: float
    right: float
    top: float
    bottom: float
    steps: tuple[float, float]
    scores: tuple[float, float]

    def x(self, step: float) -> float:
        low, high = self.steps
        share = 0.5 if high == low else (step - low) / (high - low)
        return self.left + share * (self.width - self.left - self.right)

    def y(self, score: float) -> float:
        low, high = self.scores
        clipped = min(max(score, low), high) if math.isfinite(score) else high
        share = (clipped - low) / (high - low)
        return self.height - self.bottom - share * (self.height - self.top - self.bottom)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _score_domain(points: Sequence[StepPoint]) -> tuple[float, float]:
    values = [v for p in points for v in (p.score, p.low, p.high) if v is not None]
    finite = [v for v in values if math.isfinite(v)] or [0.0, MAX_SCORE]
    low = max(0.0, math.floor(min(finite)))
    high = min(MAX_SCORE, math.ceil(max(finite)))
    return (low, high) if high > low else (max(0.0, low - 1), min(MAX_SCORE, low + 1) or 1.0)


def step_chart(points: Sequence[StepPoint], *, title: str, small: bool = False) -> str:
    """One `<circle class="point">` per checkpoint given (in step order), a band for the
    intervals, a line through the means; the best point gets class `best` and a label."""
    width, height = (260.0, 150.0) if small else (760.0, 300.0)
    steps = [p.step for p in points] or [0]
    frame = _Frame(
        width, height, 40.0, 20.0, 22.0 if small else 28.0, 26.0,
        (float(min(steps)), float(max(steps))), _score_domain(points),
    )  # fmt: skip
    parts = [f'<text class="chart-title" x="{frame.left}" y="14">{_e(title)}</text>']
    parts += _axes(frame, steps, small)
    parts.append(_band(frame, points))
    if points:
        line = " ".join(f"{frame.x(p.step):.1f},{frame.y(p.score):.1f}" for p in points)
        parts.append(
            f'<polyline class="line" points="{line}" fill="none" stroke="{LINE_COLOR}" '
            'stroke-width="2"/>'
        )
    parts += [_point(frame, p, small) for p in points]
    kind = "step-chart small" if small else "step-chart"
    return (
        f'<svg class="{kind}" role="img" aria-label="{_e(title)} against training step" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}">'
        + "".join(parts)
        + "</svg>"
    )


def _axes(frame: _Frame, steps: Sequence[int], small: bool) -> list[str]:
    parts = []
    low, high = frame.scores
    for tick in _score_ticks(low, high):
        y = frame.y(tick)
        parts.append(
            f'<line x1="{frame.left}" y1="{y:.1f}" x2="{frame.width - frame.right}" '
            f'y2="{y:.1f}" stroke="#dde1e8"/>'
            f'<text class="tick" x="{frame.left - 4}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="10">{tick:g}</text>'
        )
    shown = _step_ticks(sorted(set(steps)), 4 if small else 8)
    for step in shown:
        x = frame.x(step)
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{frame.height - 8}" text-anchor="middle" '
            f'font-size="10">{step}</text>'
        )
    return parts


def _score_ticks(low: float, high: float) -> list[float]:
    step = 1.0 if high - low <= 5 else 2.0
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def _step_ticks(steps: Sequence[int], most: int) -> list[int]:
    """The checkpoints' own steps, thinned to at most `most` labels (first and last kept)."""
    if len(steps) <= most:
        return list(steps)
    stride = math.ceil((len(steps) - 1) / (most - 1))
    chosen = list(steps[::stride])
    return chosen if chosen[-1] == steps[-1] else [*chosen[:-1], steps[-1]]


def _band(frame: _Frame, points: Sequence[StepPoint]) -> str:
    bounded = [p for p in points if p.low is not None and p.high is not None]
    if not bounded:
        return ""
    upper = [f"{frame.x(p.step):.1f},{frame.y(p.high or 0.0):.1f}" for p in bounded]
    lower = [f"{frame.x(p.step):.1f},{frame.y(p.low or 0.0):.1f}" for p in reversed(bounded)]
    return (
        f'<polygon class="band" points="{" ".join(upper + lower)}" fill="{BAND_COLOR}" '
        'fill-opacity="0.18" stroke="none"/>'
    )


def _point(frame: _Frame, point: StepPoint, small: bool) -> str:
    x, y = frame.x(point.step), frame.y(point.score)
    interval = (
        ""
        if point.low is None or point.high is None
        else f" [{format_number(point.low, 2)}, {format_number(point.high, 2)}]"
    )
    tip = f"{point.label} (step {point.step}): {format_number(point.score, 2)}{interval}"
    color, radius = (BEST_COLOR, 5.5) if point.best else (LINE_COLOR, 3.5)
    marker = (
        f'<circle class="point{" best" if point.best else ""}" data-label="{_e(point.label)}" '
        f'data-step="{point.step}" cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{color}">'
        f"<title>{_e(tip)}</title></circle>"
    )
    if not point.best or small:
        return marker
    share = (x - frame.left) / (frame.width - frame.left - frame.right)
    anchor = "end" if share > 0.7 else ("start" if share < 0.3 else "middle")
    return marker + (
        f'<text class="best-label" x="{x:.1f}" y="{y - 10:.1f}" text-anchor="{anchor}" '
        f'font-size="11" fill="{BEST_COLOR}">best: {_e(point.label)}</text>'
    )
