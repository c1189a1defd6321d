"""Timestamps as the exchange renders them (REFERENCE.md §3, A-TS-1).

Historical rows carry naive ISO-8601 UTC strings with 0 to 6 fractional digits; which form a
stream uses is a per-stream *style* so that parsers meet every variant:

``auto``  ``.fff`` unless the millisecond part is zero, then no fraction (``2025-08-01T16:00:00``)
``us``    six digits; the sub-millisecond digits come from a per-row salt (``.691858``)
``trim``  like ``us`` with trailing zeros removed (1 to 6 digits)
``sec``   no fraction (whole-second events such as funding intervals)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["render_ts", "parse_ts_ms", "kline_ts", "EPOCH"]

EPOCH = datetime(1970, 1, 1)
_DAY_MS = 86_400_000


_DAYS: dict[int, str] = {}


def _base(ms: int) -> str:
    day, rest = divmod(ms // 1000, 86_400)
    text = _DAYS.get(day)
    if text is None:
        text = _DAYS[day] = (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{text}T{h:02d}:{m:02d}:{s:02d}"


def render_ts(ms: int, style: str = "auto", salt: int = 0) -> str:
    """Render a UTC millisecond instant as a naive ISO string in the given style."""
    base = _base(ms)
    frac_ms = ms % 1000
    if style == "sec":
        return base
    if style == "auto":
        return base if frac_ms == 0 else f"{base}.{frac_ms:03d}"
    micros = frac_ms * 1000 + salt % 1000
    if style == "us":
        return f"{base}.{micros:06d}"
    text = f"{micros:06d}".rstrip("0")
    return f"{base}.{text}" if text else base


def parse_ts_ms(text: str) -> int:
    """Naive (UTC) ISO string with 0..6 fractional digits, ``T`` or space, optional ``Z`` -> ms (floor)."""
    if not isinstance(text, str):
        raise ValueError(f"expected a timestamp string, got {type(text).__name__}")
    clean = text[:-1] if text.endswith("Z") else text
    moment = datetime.fromisoformat(clean)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    delta = moment - EPOCH
    return delta.days * _DAY_MS + delta.seconds * 1000 + delta.microseconds // 1000


def kline_ts(ms: int) -> str:
    """Kline ``start``/``end`` form: ``2025-07-19 13:09:00`` (space, no fraction)."""
    return (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%d %H:%M:%S")
