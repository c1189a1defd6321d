"""Fetch the klines valuation needs into the price cache (``reconcile prices``; docs/pricing.md).

What is needed comes from the valuation engine itself: the entries in the period are valued with a
bar lookup that answers from the cache and records every (symbol, instant) it could not answer. Those
instants are fetched finest interval first (1m by default), in windows of at most
:data:`KLINE_MAX_BARS` bars starting at the first needed bar, one request per window; an instant the
exchange has no bar for falls back to 1h, then 1d. Every window asked for is recorded with its bars
(``price_fetches``), so a second run asks for nothing already held and works offline from the cache.
Only closed bars are asked for (a bar still open at ``now`` waits for a later run). Each window is
stored in its own transaction, so an interrupted run keeps what it fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from importers.backpack.endpoints import parse_ts
from ledger.money import D
from ledger.prices import Bar, CachedBars, iter_entries, settings_from, store_bars, load_price_file
from ledger.valuation import INTERVAL_SECONDS, KLINE_QUOTE, Valuer

__all__ = ["KLINE_MAX_BARS", "FetchReport", "Valuation", "fetch_prices", "fetch_and_value", "plan_windows"]

log = logging.getLogger(__name__)

#: A-KLINE-1: the most bars one klines request returns (the simulator's cap; the exchange documents none).
#: A response this long is taken as possibly truncated: only up to its last bar counts as asked for.
KLINE_MAX_BARS = 1000

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)


def _secs(t: datetime) -> int:
    return int((t - _EPOCH).total_seconds())


class _Recorder(CachedBars):
    """Answers from the cache and records what it could not answer."""

    def __init__(self, conn) -> None:
        super().__init__(conn)
        self.missing: dict[str, set[int]] = {}

    def why_missing(self, symbol: str, t: datetime, intervals: Sequence[str]) -> str:
        self.missing.setdefault(symbol, set()).add(_secs(t))
        return super().why_missing(symbol, t, intervals)


@dataclass
class FetchReport:
    """What one :func:`fetch_prices` run did."""

    requests: int = 0
    bars_stored: int = 0
    needed: int = 0  # (symbol, instant) pairs the cache could not answer before the run
    windows: dict[str, int] = field(default_factory=dict)  # interval -> requests
    no_market: list[str] = field(default_factory=list)
    still_missing: int = 0  # instants with no bar at any interval after the run


def plan_windows(times: Iterable[int], interval: str, *, until_s: int, max_bars: int = KLINE_MAX_BARS) -> list[tuple[int, int]]:
    """Windows [start, end) of at most ``max_bars`` bars covering the bars containing ``times``.

    A window starts at the first uncovered bar and spans ``max_bars`` bars, clipped to ``until_s``
    (the start of the bar still open); instants at or after ``until_s`` get no window.
    """
    step = INTERVAL_SECONDS[interval]
    out: list[tuple[int, int]] = []
    for t in sorted(times):
        s = t - t % step
        if s + step > until_s:
            continue
        if out and s < out[-1][1]:
            continue
        out.append((s, min(s + max_bars * step, until_s - until_s % step)))
    return out


def _bars(records: list[dict[str, Any]]) -> list[Bar]:
    def dec(v: Any) -> Decimal | None:
        return None if v is None else D(v)

    return [Bar(_secs(parse_ts(r["start"])), dec(r.get("open")), dec(r.get("high")), dec(r.get("low")), dec(r.get("close")))
            for r in records]


def fetch_prices(engine: Engine, client: Any, *, start: datetime | None = None, end: datetime | None = None,
                 assets: Iterable[str] | None = None, settings: Any = None, price_file: str | None = None,
                 now: datetime | None = None, progress: Any = None) -> FetchReport:
    """Fetch and cache the klines that valuing the entries in [start, end) needs.

    ``client``: a :class:`importers.backpack.client.BackpackClient` (``klines``, ``markets``).
    ``assets``: only these assets (default all). ``settings``: as for :func:`ledger.prices.value_ledger`
    (the stablecoin policy decides whether USDT needs klines; a user price file means its prices need
    none). Asks for nothing already held: a second run over the same period makes no request.
    ``progress(done, total)``: called once the symbols to fetch are known and after each symbol.
    """
    vs = settings_from(settings) if settings is not None else settings_from(object())
    price_file = price_file or getattr(settings, "price_file", None)
    user = load_price_file(price_file) if price_file else None
    now = now or datetime.now(_UTC)
    only = {f"{a.upper()}_{KLINE_QUOTE}" for a in assets} if assets is not None else None
    report = FetchReport()

    with engine.connect() as conn:
        rec = _Recorder(conn)
        valuer = Valuer(vs, rec, user_prices=user)
        for e in iter_entries(conn, start=start, end=end):
            valuer.value_entry(e)
        needs = {s: t for s, t in rec.missing.items() if only is None or s in only}
    report.needed = sum(len(t) for t in needs.values())
    if not needs:
        return report

    markets: set[str] | None = None
    until_s = _secs(now)
    if progress is not None:
        progress(0, len(needs))
    for done, symbol in enumerate(sorted(needs), 1):
        pending = sorted(needs[symbol])
        for interval in vs.intervals:
            if not pending:
                break
            with engine.connect() as conn:
                cache = CachedBars(conn)
                step = INTERVAL_SECONDS[interval]
                spans = cache.spans(symbol, interval)
                todo = [t for t in pending if not any(sp.start_s <= t - t % step < sp.end_s for sp in spans)]
            windows = plan_windows(todo, interval, until_s=until_s)
            if windows and markets is None:
                markets = {m["symbol"] for m in client.markets()}
                report.requests += 1
            for ws, we in windows:
                fetched_at = datetime.now(_UTC)
                if symbol not in markets:  # type: ignore[operator]
                    with engine.begin() as conn:
                        store_bars(conn, symbol=symbol, interval=interval, span=(ws, we), bars=[], status="no-market",
                                   fetched_at=fetched_at)
                    if symbol not in report.no_market:
                        report.no_market.append(symbol)
                    continue
                records = client.klines(symbol, interval, ws, we - 1)
                report.requests += 1
                report.windows[interval] = report.windows.get(interval, 0) + 1
                bars = [b for b in _bars(records) if ws <= b.start_s < we]
                end_s = we
                if len(records) >= KLINE_MAX_BARS and bars:
                    end_s = max(b.start_s for b in bars) + step  # possibly truncated: later bars stay unasked
                with engine.begin() as conn:
                    report.bars_stored += store_bars(conn, symbol=symbol, interval=interval, span=(ws, end_s), bars=bars,
                                                     fetched_at=fetched_at)
                log.info("prices %s %s: %d bar(s) from %s", symbol, interval, len(bars),
                         datetime.fromtimestamp(ws, _UTC).isoformat())
            with engine.connect() as conn:
                cache = CachedBars(conn)
                pending = [t for t in pending if cache.close(symbol, interval, t - t % step) is None]
        report.still_missing += len(pending)
        if progress is not None:
            progress(done, len(needs))
    return report


def fetch_mark_prices(engine: Engine, client: Any, markets: Iterable[str], instants: Iterable[datetime]) -> int:
    """Cache the exchange's mark price of each perpetual market at each instant (docs/pricing.md,
    "Perpetuals"): the 1m ``priceType=Mark`` kline that ends at the instant (floored to the minute),
    stored as symbol ``<market>@Mark``. Returns the number of requests made; a bar already held is not
    asked again."""
    from datetime import timedelta

    from ledger.perps import mark_symbol

    requests = 0
    for market in sorted(set(markets)):
        sym = mark_symbol(market)
        for t in sorted(set(instants)):
            end_s = _secs(t) - _secs(t) % 60
            ws = end_s - 60
            with engine.connect() as conn:
                if CachedBars(conn).close(sym, "1m", ws) is not None:
                    continue
            records = client.klines(market, "1m", ws, end_s - 1, price_type="Mark")
            requests += 1
            bars = [b for b in _bars(records) if ws <= b.start_s < end_s]
            with engine.begin() as conn:
                store_bars(conn, symbol=sym, interval="1m", span=(ws, end_s), bars=bars, fetched_at=datetime.now(_UTC))
            log.info("mark price %s at %s: %d bar(s)", market, (t - timedelta(0)).isoformat(), len(bars))
    return requests


@dataclass
class Valuation:
    """What ``fetch_and_value`` did: the fetch (None when nothing was asked of the exchange), the
    valuation, and the unpriced events left (the count ``reconcile status`` shows, a sample of them)."""

    fetch: FetchReport | None
    priced: int
    currency: str
    unpriced: int
    sample: list = field(default_factory=list)


def fetch_and_value(engine: Engine, reporting: Any, *, base_url: str, kline_rate_per_minute: float, start: datetime | None = None,
                    end: datetime | None = None, offline: bool = False, full: bool = False, only_new: bool = False,
                    progress=None, make_client=None) -> Valuation:
    """``reconcile prices`` and the end of ``reconcile sync``: fetch the klines valuation needs (unless
    ``offline``; public endpoints only, no key), the mark prices of open perpetuals at each year end
    (docs/pricing.md), then value the ledger (``ledger.prices.value_ledger``). ``only_new``: fetch
    only for entries not yet valued (what the fills price themselves needs no request).
    ``progress(done, total)`` is told of the symbols fetched."""
    from ledger.perps import perp_markets
    from ledger.prices import first_unvalued, unpriced_count, unpriced_events, value_ledger

    fr: FetchReport | None = None
    if not offline:
        if only_new and start is None:
            with engine.connect() as conn:
                start = first_unvalued(conn, reporting.currency)
        if not only_new or start is not None:
            if make_client is None:
                from importers.backpack.client import BackpackClient

                def make_client():
                    return BackpackClient(base_url, None, historical_rate_per_minute=kline_rate_per_minute)

            with make_client() as client:
                fr = fetch_prices(engine, client, start=start, end=end, settings=reporting, progress=progress)
                with engine.connect() as conn:
                    perp_list, instants = perp_markets(conn)
                fr.requests += fetch_mark_prices(engine, client, perp_list, instants)
    vr = value_ledger(engine, reporting, full=full)
    with engine.connect() as conn:
        missing = unpriced_count(conn)
        sample = unpriced_events(conn, limit=5) if missing else []
    return Valuation(fetch=fr, priced=vr.priced, currency=vr.currency, unpriced=missing, sample=sample)
