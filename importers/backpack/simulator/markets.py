"""Market catalogue, the deterministic price path, and klines consistent with the fills.

Prices are integers in units of the market's tick. The path is piecewise linear between hourly
anchors and *floored*, so within one hour it is monotone: any bar that lies inside one hour has
every traded price between its open and its close, and its high/low widen that range by a
per-hour wiggle. Bars spanning hours aggregate their hour segments. Hence every generated fill's
price lies within its 1m bar's low..high (a property the e2e tests check).
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ._time import EPOCH, kline_ts, render_ts

__all__ = ["MarketDef", "PricePath", "RecordKlines", "INTERVALS", "interval_buckets", "CATALOGUE", "ASSETS"]

HOUR_MS = 3_600_000
MINUTE_MS = 60_000

INTERVALS: dict[str, int] = {
    "1s": 1000, "1m": MINUTE_MS, "3m": 3 * MINUTE_MS, "5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS, "1h": HOUR_MS, "2h": 2 * HOUR_MS, "4h": 4 * HOUR_MS, "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS, "12h": 12 * HOUR_MS, "1d": 24 * HOUR_MS, "3d": 72 * HOUR_MS, "1w": 168 * HOUR_MS,
    "1month": 0,  # calendar months
}
_WEEK_OFFSET_MS = 4 * 24 * HOUR_MS  # weeks start on Monday (1970-01-05)
MAX_BARS = 1000


@dataclass(frozen=True, slots=True)
class MarketDef:
    symbol: str
    base: str
    quote: str
    market_type: str  # SPOT | PERP | RFQ
    price_dp: int  # tick = 10**-price_dp
    qty_dp: int  # step = 10**-qty_dp
    start_price: int  # in ticks
    created_at: str = "2023-09-15T00:00:00"

    @property
    def tick(self) -> Decimal:
        return Decimal(1).scaleb(-self.price_dp)

    @property
    def step(self) -> Decimal:
        return Decimal(1).scaleb(-self.qty_dp)

    def price(self, ticks: int) -> Decimal:
        return Decimal(ticks).scaleb(-self.price_dp)

    def render(self) -> dict:
        tick = format(self.tick, "f")
        step = format(self.step, "f")
        out = {
            "symbol": self.symbol, "baseSymbol": self.base, "quoteSymbol": self.quote,
            "marketType": self.market_type,
            "filters": {
                "price": {"minPrice": tick, "maxPrice": None, "tickSize": tick, "maxMultiplier": "1.25",
                          "minMultiplier": "0.75", "maxImpactMultiplier": "1.05", "minImpactMultiplier": "0.95",
                          "meanMarkPriceBand": None, "meanPremiumBand": None},
                "quantity": {"minQuantity": step, "maxQuantity": None, "stepSize": step},
            },
            "imfFunction": None, "mmfFunction": None, "fundingInterval": None,
            "fundingRateUpperBound": None, "fundingRateLowerBound": None, "openInterestLimit": None,
            "orderBookState": "Open", "createdAt": self.created_at, "visible": True,
            "positionLimitWeight": None,
        }
        if self.market_type == "PERP":
            out.update({
                "imfFunction": {"type": "sqrt", "base": "0.02", "factor": "0.0000935"},
                "mmfFunction": {"type": "sqrt", "base": "0.0125", "factor": "0.0000561"},
                "fundingInterval": HOUR_MS, "fundingRateUpperBound": "0.0025",
                "fundingRateLowerBound": "-0.0025", "openInterestLimit": "1000000",
            })
        return out


def _m(symbol: str, mtype: str, pdp: int, qdp: int, start: int) -> MarketDef:
    parts = symbol.split("_")
    return MarketDef(symbol, parts[0], parts[1], mtype, pdp, qdp, start)


#: The generated world's markets. Perps and RFQ share their base asset's path (same tick).
CATALOGUE: tuple[MarketDef, ...] = (
    _m("SOL_USDC", "SPOT", 2, 2, 15_000),
    _m("BTC_USDC", "SPOT", 1, 5, 600_000),
    _m("ETH_USDC", "SPOT", 2, 4, 300_000),
    _m("USDT_USDC", "SPOT", 4, 2, 10_000),
    _m("SOL_USDC_PERP", "PERP", 2, 2, 15_000),
    _m("BTC_USDC_PERP", "PERP", 1, 5, 600_000),
    _m("ETH_USDC_PERP", "PERP", 2, 4, 300_000),
    _m("SOL_USDC_RFQ", "RFQ", 2, 2, 15_000),
    _m("BTC_USDC_RFQ", "RFQ", 1, 5, 600_000),
)

#: Assets served by /api/v1/assets: (symbol, display name, blockchain, withdrawal fee, decimals).
ASSETS: tuple[tuple[str, str, str, str, str], ...] = (
    ("USDC", "USD Coin", "Solana", "1", "6"),
    ("USDT", "Tether", "Ethereum", "3", "6"),
    ("SOL", "Solana", "Solana", "0.01", "9"),
    ("BTC", "Bitcoin", "Bitcoin", "0.0001", "8"),
    ("ETH", "Ethereum", "Ethereum", "0.002", "18"),
    ("PYTH", "Pyth Network", "Solana", "0.5", "6"),
    ("JUP", "Jupiter", "Solana", "0.5", "6"),
)


def _bar_starts(interval: str, start_ms: int, end_ms: int) -> list[int]:
    """Bar start instants of ``interval`` covering [start_ms, end_ms], at most MAX_BARS (+1 end mark)."""
    out: list[int] = []
    if interval == "1month":
        d = EPOCH + timedelta(milliseconds=start_ms)
        y, m = d.year, d.month
        while True:
            t = calendar.timegm((y, m, 1, 0, 0, 0)) * 1000
            if t > end_ms or len(out) > MAX_BARS:
                break
            out.append(t)
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        out.append(calendar.timegm((y, m, 1, 0, 0, 0)) * 1000)
        return out
    size = INTERVALS[interval]
    offset = _WEEK_OFFSET_MS if interval == "1w" else 0
    t = (start_ms - offset) // size * size + offset
    while t <= end_ms and len(out) <= MAX_BARS:
        out.append(t)
        t += size
    out.append(t)
    return out


def interval_buckets(interval: str, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    starts = _bar_starts(interval, start_ms, end_ms)
    return [(starts[i], starts[i + 1]) for i in range(min(len(starts) - 1, MAX_BARS))]


class PricePath:
    """Hourly anchors per base asset, in ticks, deterministic by seed."""

    def __init__(self, seed: int, start_ms: int, end_ms: int, markets: tuple[MarketDef, ...] = CATALOGUE):
        self.start_ms = start_ms
        self.end_ms = end_ms
        hours = (end_ms - start_ms) // HOUR_MS + 2
        self.anchors: dict[str, list[int]] = {}
        self.wiggle: dict[str, list[int]] = {}
        self.volume: dict[str, list[int]] = {}
        self.by_symbol: dict[str, MarketDef] = {m.symbol: m for m in markets}
        for m in markets:
            if m.base in self.anchors:
                continue
            rng = random.Random(f"path:{seed}:{m.base}")
            vol = 0.0004 if m.base == "USDT" else 0.004
            a = [m.start_price]
            for _ in range(hours):
                pull = 0.002 * (m.start_price - a[-1]) / a[-1]  # mild mean reversion keeps a year plausible
                nxt = int(a[-1] * (1.0 + pull + rng.gauss(0.0, vol)))
                if m.base == "USDT":
                    nxt = min(max(nxt, 9_970), 10_030)
                a.append(max(nxt, m.start_price // 5))
            self.anchors[m.base] = a
            self.wiggle[m.base] = [1 + rng.randrange(max(2, x // 800)) for x in a]
            self.volume[m.base] = [rng.randrange(50, 5000) for _ in a]

    def base_of(self, symbol: str) -> str:
        return self.by_symbol[symbol].base

    def ticks_at(self, symbol: str, ms: int) -> int:
        a = self.anchors[self.base_of(symbol)]
        off = ms - self.start_ms
        h, r = divmod(off, HOUR_MS)
        lo, hi = a[h], a[h + 1]
        return lo + (hi - lo) * r // HOUR_MS

    def price_at(self, symbol: str, ms: int) -> Decimal:
        return self.by_symbol[symbol].price(self.ticks_at(symbol, ms))

    def _segment(self, base: str, s: int, e: int) -> tuple[int, int, int, int]:
        """open, high, low, close (ticks) of [s, e) inside one hour."""
        a = self.anchors[base]
        h = (s - self.start_ms) // HOUR_MS
        h0 = self.start_ms + h * HOUR_MS
        lo, hi = a[h], a[h + 1]
        o = lo + (hi - lo) * (s - h0) // HOUR_MS
        c = lo + (hi - lo) * (e - 1 - h0) // HOUR_MS
        w = self.wiggle[base][h]
        return o, max(o, c) + w, min(o, c) - w, c

    def bars(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[dict]:
        m = self.by_symbol.get(symbol)
        if m is None:
            return []
        lo_t = max(start_ms, self.start_ms)
        hi_t = min(end_ms, self.end_ms - 1)
        out = []
        for bs, be in interval_buckets(interval, lo_t, hi_t) if lo_t <= hi_t else ():
            s = max(bs, self.start_ms)
            e = min(be, self.end_ms)
            if s >= e:
                continue
            o = c = None
            high = low = 0
            vol = 0
            t = s
            while t < e:
                seg_end = min(e, self.start_ms + ((t - self.start_ms) // HOUR_MS + 1) * HOUR_MS)
                so, sh, sl, sc = self._segment(m.base, t, seg_end)
                h = (t - self.start_ms) // HOUR_MS
                vol += self.volume[m.base][h] * (seg_end - t) // HOUR_MS
                if o is None:
                    o, high, low = so, sh, sl
                else:
                    high, low = max(high, sh), min(low, sl)
                c = sc
                t = seg_end
            out.append(_kline(m, bs, be, o, high, low, c, vol))
        if end_ms >= self.end_ms and len(out) < MAX_BARS:
            # After the generated history the market stays at its last price (the world's marks, taken
            # there): bars with no trades up to the requested end, as an exchange serves a quiet market, so
            # an instant after the history (a year end) has its kline (docs/simulator.md).
            last = self.ticks_at(symbol, self.end_ms - 1)
            for bs, be in interval_buckets(interval, max(start_ms, self.end_ms), end_ms):
                if bs < self.end_ms:
                    continue  # the bar holding the history's end is built above
                bar = _kline(m, bs, be, last, last, last, last, 0)
                bar["trades"] = "0"
                out.append(bar)
                if len(out) >= MAX_BARS:
                    break
        return out


def _kline(m: MarketDef, bs: int, be: int, o: int, h: int, l: int, c: int, vol: int) -> dict:
    volume = Decimal(vol).scaleb(-2)
    close = m.price(c)
    return {
        "start": kline_ts(bs), "end": kline_ts(be), "open": format(m.price(o), "f"),
        "high": format(m.price(h), "f"), "low": format(m.price(l), "f"), "close": format(close, "f"),
        "volume": format(volume, "f"), "quoteVolume": format(volume * close, "f"),
        "trades": str(max(1, vol // 37)),
    }


class RecordKlines:
    """Klines from a scenario: given 1m bars per symbol, or (absent) 1m bars built from the fills."""

    def __init__(self, minute_bars: dict[str, dict[int, list]]):
        # symbol -> minute start ms -> [open, high, low, close, volume, quoteVolume, trades] (Decimals, int)
        self.minute_bars = minute_bars
        self.sorted_minutes = {s: sorted(b) for s, b in minute_bars.items()}

    @classmethod
    def from_fills(cls, fills: list[tuple[str, int, Decimal, Decimal]]) -> "RecordKlines":
        bars: dict[str, dict[int, list]] = {}
        for symbol, ms, price, qty in sorted(fills, key=lambda f: f[1]):
            b = bars.setdefault(symbol, {})
            minute = ms - ms % MINUTE_MS
            bar = b.get(minute)
            if bar is None:
                b[minute] = [price, price, price, price, qty, qty * price, 1]
            else:
                bar[1] = max(bar[1], price)
                bar[2] = min(bar[2], price)
                bar[3] = price
                bar[4] += qty
                bar[5] += qty * price
                bar[6] += 1
        return cls(bars)

    def last_price(self, symbol: str) -> Decimal | None:
        mins = self.sorted_minutes.get(symbol)
        return self.minute_bars[symbol][mins[-1]][3] if mins else None

    def bars(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[dict]:
        import bisect

        mins = self.sorted_minutes.get(symbol)
        if not mins:
            return []
        src = self.minute_bars[symbol]
        out = []
        first = max(start_ms, mins[0] - mins[0] % max(INTERVALS.get(interval) or MINUTE_MS, 1))
        for bs, be in interval_buckets(interval, first, min(end_ms, mins[-1])):
            i = bisect.bisect_left(mins, bs - bs % MINUTE_MS)
            j = bisect.bisect_left(mins, be)
            if i >= j:
                continue
            parts = [src[k] for k in mins[i:j]]
            o, c = parts[0][0], parts[-1][3]
            hi = max(p[1] for p in parts)
            lo = min(p[2] for p in parts)
            out.append({
                "start": kline_ts(bs), "end": kline_ts(be), "open": format(o, "f"), "high": format(hi, "f"),
                "low": format(lo, "f"), "close": format(c, "f"), "volume": format(sum(p[4] for p in parts), "f"),
                "quoteVolume": format(sum(p[5] for p in parts), "f"), "trades": str(sum(p[6] for p in parts)),
            })
        return out


def start_of_day(ms: int) -> int:
    return ms - ms % (24 * HOUR_MS)


def iso(ms: int) -> str:
    return render_ts(ms, "sec")


def utc(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)
