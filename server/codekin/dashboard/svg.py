"""Small inline SVG charts, drawn on the server: no script, no CDN, works offline and in print."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 560, 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 52, 16, 16, 44
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]  # (x, y); x is a position on the x axis (0, 1, 2, ...)
    color: str = ""


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 1 else f"{value:.1f}"


def tick_labels(values: list[float]) -> list[str]:
    """Axis labels with as many decimals as it takes for neighbours to differ (0.500, 0.502, ...)."""
    labels = [_fmt(v) for v in values]
    digits = 2
    while len(set(labels)) < len(labels) and digits < 6:
        digits += 1
        labels = [f"{v:.{digits}f}" for v in values]
    return labels


def _empty(title: str, note: str) -> str:
    return (f'<svg class="chart" role="img" aria-label="{escape(title)}: no data" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}"><rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fafafa"/>'
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#888">{escape(note)}</text></svg>')


class _Frame:
    """Maps data to pixels and draws axes with ticks."""

    def __init__(self, xs: list[float], ys: list[float], y_min: float | None, y_max: float | None) -> None:
        self.x0, self.x1 = min(xs), max(xs)
        lo = min(ys) if y_min is None else y_min
        hi = max(ys) if y_max is None else y_max
        if hi - lo < 1e-9:  # one value: pad around it, never below a given floor or below 0 for data >= 0
            pad = max(abs(hi) * 0.1, 0.05)
            lo, hi = (lo, hi + 2 * pad) if y_min is not None else (lo - pad, hi + pad)
            if y_min is None and min(ys) >= 0:
                lo = max(lo, 0.0)
        self.y0, self.y1 = lo, hi
        self.w = WIDTH - PAD_LEFT - PAD_RIGHT
        self.h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def px(self, x: float) -> float:
        span = self.x1 - self.x0
        return PAD_LEFT + (self.w / 2 if span == 0 else (x - self.x0) / span * self.w)

    def py(self, y: float) -> float:
        return PAD_TOP + self.h - (y - self.y0) / (self.y1 - self.y0) * self.h

    def axes(self, labels: list[str], y_label: str, positions: list[float] | None = None) -> list[str]:
        parts = [f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + self.h}" x2="{PAD_LEFT + self.w}" y2="{PAD_TOP + self.h}" '
                 'stroke="#999"/>',
                 f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{PAD_TOP + self.h}" stroke="#999"/>']
        values = [self.y0 + (self.y1 - self.y0) * i / 4 for i in range(5)]
        for value, text in zip(values, tick_labels(values), strict=True):
            y = self.py(value)
            parts.append(f'<line x1="{PAD_LEFT}" y1="{y:.1f}" x2="{PAD_LEFT + self.w}" y2="{y:.1f}" stroke="#eee"/>')
            parts.append(f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                         f'fill="#555">{text}</text>')
        step = max(1, len(labels) // 8)
        for i, label in enumerate(labels):
            if i % step == 0:
                x = positions[i] if positions is not None else self.px(i)
                anchor = "end" if positions is None and i == len(labels) - 1 and i else "middle"
                parts.append(f'<text x="{x:.1f}" y="{PAD_TOP + self.h + 16}" text-anchor="{anchor}" '
                             f'font-size="11" fill="#555">{escape(label)}</text>')
        parts.append(f'<text x="12" y="{PAD_TOP + self.h / 2}" font-size="11" fill="#555" text-anchor="middle" '
                     f'transform="rotate(-90 12 {PAD_TOP + self.h / 2})">{escape(y_label)}</text>')
        return parts


def _legend(series: list[Series]) -> list[str]:
    parts, x = [], PAD_LEFT
    for s in series:
        parts.append(f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{s.color}"/>')
        parts.append(f'<text x="{x + 14}" y="{HEIGHT - 5}" font-size="11" fill="#333">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return parts


def line_chart(title: str, labels: list[str], series: list[Series], y_label: str = "",
               y_min: float | None = None, y_max: float | None = None) -> str:
    """Lines with dots over categorical x positions 0..len(labels)-1."""
    series = [s for s in series if s.points]
    if not series:
        return _empty(title, "no data yet")
    for i, s in enumerate(series):
        s.color = s.color or PALETTE[i % len(PALETTE)]
    xs = [x for s in series for x, _ in s.points] + [0, max(0, len(labels) - 1)]
    frame = _Frame(xs, [y for s in series for _, y in s.points], y_min, y_max)
    parts = frame.axes(labels, y_label)
    for s in series:
        coords = " ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in s.points)
        parts.append(f'<polyline class="series" data-series="{escape(s.name)}" points="{coords}" fill="none" '
                     f'stroke="{s.color}" stroke-width="2"/>')
        for x, y in s.points:
            parts.append(f'<circle cx="{frame.px(x):.1f}" cy="{frame.py(y):.1f}" r="3.5" fill="{s.color}">'
                         f'<title>{escape(s.name)}: {y:.4g}</title></circle>')
    parts += _legend(series)
    return (f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}">' + "".join(parts) + "</svg>")


def bar_chart(title: str, labels: list[str], values: list[float], colors: list[str], y_label: str = "",
              legend: list[Series] | None = None) -> str:
    """One bar per label, each with its own color (e.g. promoted vs rejected runs)."""
    if not values:
        return _empty(title, "no data yet")
    frame = _Frame([0, max(1, len(values) - 1)], [0.0, *values], 0.0, None)
    slot = frame.w / max(1, len(values))
    parts = frame.axes(labels, y_label, [PAD_LEFT + slot * (i + 0.5) for i in range(len(values))])
    width = max(4.0, slot * 0.6)
    for i, (value, color) in enumerate(zip(values, colors, strict=True)):
        x = PAD_LEFT + slot * i + (slot - width) / 2
        top = min(frame.py(value), PAD_TOP + frame.h - 3)  # a run without a value still shows a stub
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" '
                     f'height="{PAD_TOP + frame.h - top:.1f}" fill="{color}"><title>{escape(labels[i])}: '
                     f'{value:.4g}</title></rect>')
    if legend:
        parts += _legend(legend)
    return (f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}">' + "".join(parts) + "</svg>")
