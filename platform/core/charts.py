"""Server-side charts: an inline SVG line/scatter chart from points (pure Python, Django-free).

No JavaScript, no download: :func:`line_chart` returns the ``<svg>`` markup as a string, with axis ticks
and labels, an optional dashed diagonal reference line (y = x) and a legend. The chart is an image to
assistive technology (``role="img"``, ``aria-label`` and ``<title>``); pages give the numbers in a table
too. Every text (title, labels, tick labels) is escaped.

A series is a mapping ``{"label": str, "points": [(x, y), ...], "mode": "line" | "markers" | "both"}``;
points outside the axis ranges are drawn on the plot area's edge.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

PALETTE = ("#1f5fa8", "#c0392b", "#2e7d32", "#8e44ad")
MARGIN = {"left": 56, "right": 14, "top": 14, "bottom": 46}


def _e(text) -> str:
    return escape(str(text), quote=True)


def _f(value: float) -> str:
    return f"{value:.1f}"


def nice_step(span: float, count: int) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about ``count`` ticks on ``span``."""
    if span <= 0 or count < 2:
        return 1.0
    raw = span / (count - 1)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power * (1 + 1e-9):
            return m * power
    return 10 * power


def axis_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values from ``low`` to ``high`` (both included when they fall on the step)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    step = nice_step(high - low, count)
    first = math.ceil(low / step - 1e-9)
    ticks, k = [], first
    while k * step <= high + step * 1e-9:
        ticks.append(round(k * step, 10))
        k += 1
    return ticks


class Plot:
    """The plot area of a chart ``width`` × ``height`` and the mapping of data to SVG coordinates."""

    def __init__(self, width: int, height: int, x_range: Sequence[float], y_range: Sequence[float]):
        self.left, self.top = MARGIN["left"], MARGIN["top"]
        self.right, self.bottom = width - MARGIN["right"], height - MARGIN["bottom"]
        self.x0, self.x1 = float(x_range[0]), float(x_range[1])
        self.y0, self.y1 = float(y_range[0]), float(y_range[1])
        if not self.x1 > self.x0 or not self.y1 > self.y0:
            raise ValueError("an axis range must go from low to high")

    def x(self, value: float) -> float:
        t = min(max((float(value) - self.x0) / (self.x1 - self.x0), 0.0), 1.0)
        return self.left + t * (self.right - self.left)

    def y(self, value: float) -> float:
        t = min(max((float(value) - self.y0) / (self.y1 - self.y0), 0.0), 1.0)
        return self.bottom - t * (self.bottom - self.top)


def _finite(points) -> list[tuple[float, float]]:
    out = []
    for p in points or ():
        try:
            x, y = float(p[0]), float(p[1])
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(x) and math.isfinite(y):
            out.append((x, y))
    return out


def line_chart(series: Sequence[Mapping], *, title: str, x_label: str = "", y_label: str = "",
               x_range: Sequence[float] = (0.0, 1.0), y_range: Sequence[float] = (0.0, 1.0),
               diagonal: bool = False, diagonal_label: str = "", width: int = 360, height: int = 300,
               ticks: int = 6, tick_format: Callable[[float], str] | None = None,
               chart_id: str = "") -> str:
    """The SVG markup of a line/scatter chart of ``series`` (see the module docstring)."""
    fmt = tick_format or (lambda v: f"{v:g}")
    plot = Plot(width, height, x_range, y_range)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{_e(title)}" '
             f'viewBox="0 0 {int(width)} {int(height)}" width="{int(width)}" height="{int(height)}"'
             + (f' id="{_e(chart_id)}"' if chart_id else "")
             + ' font-family="sans-serif" font-size="11" style="max-width:100%;height:auto">',
             f"<title>{_e(title)}</title>"]
    grid, labels = [], []
    for v in axis_ticks(plot.x0, plot.x1, ticks):
        x = _f(plot.x(v))
        grid.append(f'<line x1="{x}" y1="{_f(plot.top)}" x2="{x}" y2="{_f(plot.bottom)}"/>')
        labels.append(f'<text x="{x}" y="{_f(plot.bottom + 15)}" text-anchor="middle">{_e(fmt(v))}</text>')
    for v in axis_ticks(plot.y0, plot.y1, ticks):
        y = _f(plot.y(v))
        grid.append(f'<line x1="{_f(plot.left)}" y1="{y}" x2="{_f(plot.right)}" y2="{y}"/>')
        labels.append(f'<text x="{_f(plot.left - 5)}" y="{y}" text-anchor="end" '
                      f'dominant-baseline="middle">{_e(fmt(v))}</text>')
    parts.append('<g class="chart-grid" stroke="#e3e3e3" stroke-width="1">' + "".join(grid) + "</g>")
    parts.append(f'<rect class="chart-plot" x="{_f(plot.left)}" y="{_f(plot.top)}" '
                 f'width="{_f(plot.right - plot.left)}" height="{_f(plot.bottom - plot.top)}" '
                 'fill="none" stroke="#888"/>')
    parts.append('<g class="chart-ticks" fill="#444">' + "".join(labels) + "</g>")
    legend: list[tuple[str, str, bool]] = []
    if diagonal:
        lo, hi = max(plot.x0, plot.y0), min(plot.x1, plot.y1)
        if hi > lo:
            parts.append(f'<line class="chart-diagonal" x1="{_f(plot.x(lo))}" y1="{_f(plot.y(lo))}" '
                         f'x2="{_f(plot.x(hi))}" y2="{_f(plot.y(hi))}" stroke="#999" '
                         'stroke-dasharray="5 4"/>')
            if diagonal_label:
                legend.append((diagonal_label, "#999", True))
    for i, s in enumerate(series):
        color = s.get("color") or PALETTE[i % len(PALETTE)]
        pts = [(plot.x(x), plot.y(y)) for x, y in _finite(s.get("points"))]
        mode = s.get("mode", "line")
        group = [f'<g class="chart-series" data-series="{i}">']
        if pts and mode in ("line", "both"):
            coords = " ".join(f"{_f(x)},{_f(y)}" for x, y in pts)
            group.append(f'<polyline points="{coords}" fill="none" stroke="{_e(color)}" stroke-width="2"/>')
        if pts and mode in ("markers", "both"):
            group += [f'<circle cx="{_f(x)}" cy="{_f(y)}" r="3.5" fill="{_e(color)}"/>' for x, y in pts]
        parts.append("".join(group) + "</g>")
        if s.get("label"):
            legend.append((str(s["label"]), color, False))
    for i, (text, color, dashed) in enumerate(legend):
        y = plot.bottom - 12 - 15 * (len(legend) - 1 - i)  # bottom right, clear of a ROC curve
        x = plot.right - 26
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        parts.append(f'<g class="chart-legend"><line x1="{_f(x)}" y1="{_f(y)}" x2="{_f(x + 18)}" '
                     f'y2="{_f(y)}" stroke="{_e(color)}" stroke-width="2"{dash}/>'
                     f'<text x="{_f(x - 5)}" y="{_f(y)}" text-anchor="end" dominant-baseline="middle" '
                     f'fill="#222">{_e(text)}</text></g>')
    if x_label:
        parts.append(f'<text class="chart-label" x="{_f((plot.left + plot.right) / 2)}" y="{height - 8}" '
                     f'text-anchor="middle" fill="#222">{_e(x_label)}</text>')
    if y_label:
        cy = _f((plot.top + plot.bottom) / 2)
        parts.append(f'<text class="chart-label" x="14" y="{cy}" text-anchor="middle" fill="#222" '
                     f'transform="rotate(-90 14 {cy})">{_e(y_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
