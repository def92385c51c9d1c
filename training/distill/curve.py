"""The training-loss curve as a small hand-written SVG: the loss per step, a smoothed line, axes, ticks, labels.

Pure functions of a list of floats, so it runs in any environment and needs no plotting library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 720, 400
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 44, 52  # margins around the plot area
RAW_COLOUR, SMOOTH_COLOUR, AXIS_COLOUR, GRID_COLOUR = "#9ecae1", "#08519c", "#333333", "#e5e5e5"


def smoothed(values: Sequence[float], window: int | None = None) -> list[float]:
    """A bias-corrected exponential moving average; `window` steps is its span (about 1/20 of the run)."""
    span = window or max(1, len(values) // 20)
    alpha = 2 / (span + 1)
    out, average, weight = [], 0.0, 0.0
    for v in values:
        average = (1 - alpha) * average + alpha * v
        weight = (1 - alpha) * weight + alpha
        out.append(average / weight)
    return out


def nice_ticks(low: float, high: float, count: int = 5, whole: bool = False) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]; whole: integers only."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if whole:
        step = max(1.0, step)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.0e}"


def loss_svg(losses: Sequence[float], title: str) -> str:
    """The SVG document: x = optimiser step (1..n), y = loss from 0 up to the highest value."""
    n = len(losses)
    x_ticks = nice_ticks(1, max(n, 2), 6, whole=True)
    y_ticks = nice_ticks(0.0, max(losses, default=1.0) or 1.0, 5)
    x_max, y_max = x_ticks[-1], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(step: float) -> float:
        return LEFT + (step - x_ticks[0]) / (x_max - x_ticks[0]) * plot_w

    def y(loss: float) -> float:
        return TOP + plot_h - loss / y_max * plot_h

    def polyline(values: Sequence[float], colour: str, width: float) -> str:
        points = " ".join(f"{x(i + 1):.1f},{y(v):.1f}" for i, v in enumerate(values))
        return f'<polyline fill="none" stroke="{colour}" stroke-width="{width}" points="{points}"/>'

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    for t in y_ticks:
        parts.append(f'<line x1="{LEFT}" y1="{y(t):.1f}" x2="{LEFT + plot_w}" y2="{y(t):.1f}" stroke="{GRID_COLOUR}"/>')
        parts.append(f'<text x="{LEFT - 8}" y="{y(t) + 4:.1f}" text-anchor="end">{_label(t)}</text>')
    for t in x_ticks:
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{TOP + plot_h}" x2="{x(t):.1f}" y2="{TOP + plot_h + 5}" '
            f'stroke="{AXIS_COLOUR}"/>'
        )
        parts.append(f'<text x="{x(t):.1f}" y="{TOP + plot_h + 19}" text-anchor="middle">{_label(t)}</text>')
    if n:
        parts.append(polyline(losses, RAW_COLOUR, 1))
        parts.append(polyline(smoothed(losses), SMOOTH_COLOUR, 2))
    parts += [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="{AXIS_COLOUR}"/>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="{AXIS_COLOUR}"/>',
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 12}" text-anchor="middle">optimiser step</text>',
        f'<text transform="translate(18 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        "training loss (completion tokens)</text>",
        f'<g transform="translate({LEFT + plot_w - 150} {TOP + 8})">'
        f'<line x1="0" y1="6" x2="18" y2="6" stroke="{RAW_COLOUR}"/><text x="24" y="10">per step</text>'
        f'<line x1="0" y1="22" x2="18" y2="22" stroke="{SMOOTH_COLOUR}" stroke-width="2"/>'
        '<text x="24" y="26">smoothed (EMA)</text></g>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
