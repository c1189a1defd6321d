"""Inline SVG charts for the HTML statement: no script, no external request, every label escaped.

Each function takes plain figures (Decimals) and returns SVG markup (``markupsafe.Markup``) with a
``<title>`` per mark, so a reader hovering a bar sees its exact figure. Scales are linear over the
data's range (zero always included); an empty series draws an empty frame saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape as _html_escape

from .safety import terminal


def escape(value: object) -> Markup:
    """HTML-escaped text whose control and bidi characters are shown as escapes (reports.safety)."""
    return _html_escape(terminal(value))

__all__ = ["bar_chart", "line_chart", "hbar_chart", "PALETTE"]

PALETTE = ("#1f6fb2", "#e08a1e", "#2e8b57", "#b23b3b", "#7a4fb2", "#5b5b5b")
_W, _H = 720, 260
_L, _R, _T, _B = 70, 16, 16, 44


_D = Decimal


def _px(n) -> Decimal:
    """A pixel length or position as a Decimal (geometry stays in decimals too: no float anywhere)."""
    return n if type(n) is Decimal else _D(n)


def _fmt(d: Decimal) -> str:
    return f"{d:,.2f}"


def _scale(lo: Decimal, hi: Decimal):
    lo, hi = min(lo, Decimal(0)), max(hi, Decimal(0))
    if lo == hi:
        hi = lo + 1
    span = hi - lo
    top, bottom = _T, _H - _B

    def y(v: Decimal) -> Decimal:
        return bottom - ((v - lo) / span) * (bottom - top)

    return y, lo, hi


def _axis(y, lo: Decimal, hi: Decimal, currency: str) -> list[str]:
    out = []
    for i in range(5):
        v = lo + (hi - lo) * Decimal(i) / Decimal(4)
        yy = y(v)
        out.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>')
        out.append(f'<text x="{_L - 6}" y="{yy + 4:.1f}" text-anchor="end" class="tick">{escape(_fmt(v))}</text>')
    y0 = y(Decimal(0))
    out.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{y0:.1f}" y2="{y0:.1f}" class="zero"/>')
    return out


def _legend(names: Sequence[str]) -> list[str]:
    out, x = [], _L
    for i, n in enumerate(names):
        out.append(f'<rect x="{x}" y="{_H - 14}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14}" y="{_H - 5}" class="tick">{escape(n)}</text>')
        x += 14 + 8 * len(n) + 18
    return out


def _svg(title: str, body: list[str]) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="100%" role="img" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>")
    return Markup(head + "".join(body) + "</svg>")


def bar_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[Decimal]], currency: str) -> Markup:
    """Grouped bars per label (e.g. month), one bar per series (e.g. term)."""
    names = list(series)
    values = [v for s in series.values() for v in s]
    if not labels or not names:
        return _svg(title, [f'<text x="{_W // 2}" y="{_H // 2}" text-anchor="middle" class="tick">no figures in the period</text>'])
    y, lo, hi = _scale(min(values, default=Decimal(0)), max(values, default=Decimal(0)))
    body = _axis(y, lo, hi, currency)
    slot = _px(_W - _L - _R) / len(labels)
    bw = max(slot * _D("0.8") / len(names), _D(1))
    y0 = y(Decimal(0))
    for i, label in enumerate(labels):
        x0 = _L + i * slot + slot * _D("0.1")
        for j, n in enumerate(names):
            v = series[n][i]
            yy = y(v)
            top, h = min(yy, y0), abs(y0 - yy)
            body.append(f'<rect x="{x0 + j * bw:.1f}" y="{top:.1f}" width="{bw:.1f}" height="{max(h, _D("0.5")):.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                        f"<title>{escape(label)} {escape(n)}: {escape(_fmt(v))} {escape(currency)}</title></rect>")
        if len(labels) <= 24:
            body.append(f'<text x="{x0 + slot * _D("0.4"):.1f}" y="{_H - _B + 14}" text-anchor="middle" class="tick">{escape(label[-5:])}</text>')
    body += _legend(names)
    return _svg(title, body)


def line_chart(title: str, xs: Sequence[str], series: dict[str, Sequence[Decimal]], currency: str) -> Markup:
    """One polyline per series over the x labels (e.g. days or month ends)."""
    names = list(series)
    values = [v for s in series.values() for v in s]
    if not xs or not names:
        return _svg(title, [f'<text x="{_W // 2}" y="{_H // 2}" text-anchor="middle" class="tick">no figures in the period</text>'])
    y, lo, hi = _scale(min(values), max(values))
    body = _axis(y, lo, hi, currency)
    n = len(xs)
    step = _px(_W - _L - _R) / max(n - 1, 1)
    for j, name in enumerate(names):
        pts = " ".join(f"{_L + i * step:.1f},{y(v):.1f}" for i, v in enumerate(series[name]))
        color = PALETTE[j % len(PALETTE)]
        body.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"><title>{escape(name)}: {escape(_fmt(series[name][-1]))} {escape(currency)} at {escape(xs[-1])}</title></polyline>')
        if n <= 40:
            for i, v in enumerate(series[name]):
                body.append(f'<circle cx="{_L + i * step:.1f}" cy="{y(v):.1f}" r="2.5" fill="{color}"><title>{escape(xs[i])} {escape(name)}: {escape(_fmt(v))} {escape(currency)}</title></circle>')
    every = max(n // 6, 1)
    for i in sorted({0, n - 1, *(k for k in range(0, n, every) if 2 * (n - 1 - k) >= every)}):
        body.append(f'<text x="{_L + i * step:.1f}" y="{_H - _B + 14}" text-anchor="middle" class="tick">{escape(xs[i])}</text>')
    body += _legend(names)
    return _svg(title, body)


def hbar_chart(title: str, items: Sequence[tuple[str, Decimal]], currency: str) -> Markup:
    """Horizontal bars (e.g. holdings by value), largest first, with their share of the total."""
    items = sorted(((k, v) for k, v in items if v > 0), key=lambda kv: kv[1], reverse=True)[:12]
    if not items:
        return _svg(title, [f'<text x="{_W // 2}" y="{_H // 2}" text-anchor="middle" class="tick">no priced holdings at the period end</text>'])
    total = sum((v for _k, v in items), Decimal(0))
    hi = items[0][1]
    row = _px(_H - _T - 8) / len(items)
    body = []
    for i, (k, v) in enumerate(items):
        w = (v / hi) * (_W - 150 - 180)
        yy = _T + i * row
        share = v / total * 100 if total else Decimal(0)
        body.append(f'<text x="140" y="{yy + row * _D("0.65"):.1f}" text-anchor="end" class="tick">{escape(k)}</text>')
        body.append(f'<rect x="150" y="{yy + row * _D("0.15"):.1f}" width="{max(w, 1):.1f}" height="{row * _D("0.7"):.1f}" fill="{PALETTE[i % len(PALETTE)]}">'
                    f"<title>{escape(k)}: {escape(_fmt(v))} {escape(currency)} ({share:.1f}%)</title></rect>")
        body.append(f'<text x="{156 + w:.1f}" y="{yy + row * _D("0.65"):.1f}" class="tick">{escape(_fmt(v))} ({share:.1f}%)</text>')
    return _svg(title, body)
