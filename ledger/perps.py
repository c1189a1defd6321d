"""Perpetual futures from the ledger: read the fills and settlements, book the positions, prove them.

``read_perps(conn)`` reads, in (time, key) order, the journal entries of kind ``perp-fill`` and the
settlement entries (``realized-pnl``, ``funding``, ``perp-fee``, ``liquidation``) with their raw
records, and the raw records that are kept but not posted and that the proof needs (``history/funding``
rows, ``history/position`` rows: the position id -> market map). ``perp_books(conn, settings, year=)``
books them with the position engine (``ledger.booking.perps``) and is the one public source of every
perpetual figure (``docs/perps.md``): realized rows, funding per market and month, fees, liquidations,
open positions at a date. ``perp_proof(conn, venue_account)`` is the part of ``reconcile check`` that
proves them against the exchange's settlements, balances and positions (``docs/reconciliation.md``).

SQLAlchemy Core only; the booking is pure.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, text

from .booking.perps import (
    PERP_METHODS,
    Cycle,
    OpenPosition,
    PerpEngine,
    PerpFill,
    Realized,
    exchange_unrealized,
    perp_method_for,
)
from .db import driver_rows
from .money import EXACT, ZERO, plain
from .types import db_time, utc_from_db

__all__ = [
    "SETTLEMENT_UNIT",
    "REALIZED_SOURCES",
    "FEE_SOURCES",
    "FUNDING_SOURCES",
    "Settlement",
    "FundingRow",
    "PerpInputs",
    "read_perps",
    "FundingLine",
    "MarketTotals",
    "PositionLine",
    "PerpBooks",
    "perp_books",
    "stream_perps",
    "UsdcRates",
    "Difference",
    "PerpProof",
    "perp_proof",
    "start_perp_proof",
    "ProofHandle",
    "unknown_derivatives",
    "mark_symbol",
    "perp_markets",
]

#: A-PERP-3: realized P&L settles in whole units of USDC's 6 decimals, the remainder carried to the
#: next settlement of the market (half-even).
SETTLEMENT_UNIT = Decimal("0.000001")
REALIZED_SOURCES = frozenset({"RealizePnl", "CulledRealizePnlAuto", "CulledRealizePnlBookUtilisation", "CulledRealizePnlBookUtilization",
                              "CulledRealizePnlAccountThreshold", "CulledRealizePnlSystemThreshold"})
FEE_SOURCES = frozenset({"TradingFees", "TradingFeesSystem"})
FUNDING_SOURCES = frozenset({"FundingPayment"})
SETTLEMENT_KINDS = ("realized-pnl", "funding", "perp-fee", "liquidation")
#: A-PERP-4: a settlement covers the fills before the millisecond it is stamped with (its sub-millisecond
#: digits are the engine's processing time), and a FundingPayment belongs to the funding interval that
#: ends at its timestamp floored to the hour (every market's funding interval is a whole number of hours).
FUNDING_GRID_SECONDS = 3600
_SIDE = {"Bid": "buy", "Ask": "sell"}
_UTC = timezone.utc


def mark_symbol(market: str) -> str:
    """The ``price_bars`` symbol of a market's mark-price klines (``priceType=Mark``), docs/pricing.md."""
    return f"{market}@Mark"


def _ms_floor(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond - t.microsecond % 1000)


def _hour_floor(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _hist_time(s: str) -> datetime:
    """A history row's naive UTC timestamp (A-TS-1)."""
    return datetime.fromisoformat(s).replace(tzinfo=_UTC)


class Settlement(NamedTuple):
    account: str
    time: datetime
    key: str
    source: str
    quantity: Decimal
    position_id: str | None
    market: str | None  # from the position id; None when no position row names it


class FundingRow(NamedTuple):
    """One ``history/funding`` row (kept raw: the settlement is the posted cash, A-PERP-1)."""

    account: str
    market: str
    time: datetime
    quantity: Decimal
    rate: Decimal
    key: str


@dataclass
class PerpInputs:
    fills: list[PerpFill] = field(default_factory=list)
    settlements: list[Settlement] = field(default_factory=list)
    funding: list[FundingRow] = field(default_factory=list)
    position_markets: dict[tuple[str, str], str] = field(default_factory=dict)


def _account_filter(venue_account: str | None, col: str = "e.venue_account") -> str:
    return f" AND {col} = :acct" if venue_account else ""


def iter_perp_fills(conn: Connection, *, venue_account: str | None = None, until: datetime | None = None, chunk: int = 20_000):
    """The ledger's perp fills as ``PerpFill`` records in (time, key) order, a chunk at a time from the
    driver's own cursor (a million rows through SQLAlchemy's row objects cost more than booking them)."""
    sqlite = conn.dialect.name == "sqlite"
    ph = (lambda n: f":{n}") if sqlite else (lambda n: f"%({n})s")
    params: dict[str, Any] = {}
    cond = ""
    if venue_account:
        cond += f" AND e.venue_account = {ph('acct')}"
        params["acct"] = venue_account
    if until is not None:
        cond += f" AND e.timestamp <= {ph('until')}"
        params["until"] = db_time(conn, until)
    sql = ("SELECT e.timestamp, e.entry_key, e.venue_account, r.payload FROM journal_entries e JOIN raw_records r ON r.id = e.raw_record_id"
           f" WHERE e.kind = 'perp-fill'{cond} ORDER BY e.timestamp, e.entry_key")
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql, params)
        loads, new, parse, side_of = orjson.loads, tuple.__new__, datetime.fromisoformat, _SIDE
        # Prices and quantities repeat (a market's ticks, the usual sizes): each distinct text becomes a
        # Decimal once. Bounded, so a history of only distinct values costs no more than no cache.
        dec = _DecimalCache()
        num = dec.__getitem__
        D = Decimal
        while True:
            rows = cur.fetchmany(chunk)
            if not rows:
                return
            out = []
            append = out.append
            for t, key, acct, payload in rows:
                r = loads(payload)
                # ``fromisoformat(text + "+00:00")`` is a fifth of ``fromisoformat(text).replace(tzinfo=utc)``
                t = parse(t + "+00:00") if type(t) is str and (len(t) == 26 or len(t) == 19) else utc_from_db(t)
                fee = r.get("fee")
                append(new(PerpFill, (key, acct, r["symbol"], t, side_of[r["side"]], num(r["quantity"]), num(r["price"]), D(fee) if fee else ZERO,
                                      r.get("systemOrderType"))))
            dec.trim()
            yield out
    finally:
        cur.close()


class _DecimalCache(dict):
    """text -> Decimal, for the values that repeat; cleared when it grows past ``limit`` entries."""

    limit = 200_000

    def __missing__(self, s: str) -> Decimal:
        d = self[s] = Decimal(s)
        return d

    def trim(self) -> None:
        if len(self) > self.limit:
            self.clear()


def read_perps(conn: Connection, *, venue_account: str | None = None, until: datetime | None = None, fills: bool = True) -> PerpInputs:
    """The perp fills and settlements of the ledger (entries up to ``until`` if given), in (time, key) order."""
    params: dict[str, Any] = {"acct": venue_account}
    cond = _account_filter(venue_account)
    if until is not None:
        cond += " AND e.timestamp <= :until"
        params["until"] = db_time(conn, until)
    out = PerpInputs()
    loads = orjson.loads
    D = Decimal
    if fills:
        for part in iter_perp_fills(conn, venue_account=venue_account, until=until):
            out.fills += part
    # The position id -> market map: history/position rows, and the open positions of every snapshot.
    pm = out.position_markets
    acct_only = {"acct": venue_account} if venue_account else {}
    for acct, payload in driver_rows(conn, "SELECT venue_account, payload FROM raw_records WHERE endpoint = 'positionHistory'" + _account_filter(venue_account, "venue_account"), acct_only):
        r = loads(payload)
        if r.get("id") is not None and r.get("symbol"):
            pm[(acct, str(r["id"]))] = r["symbol"]
    for acct, payload in conn.execute(text("SELECT venue_account, payload FROM snapshots WHERE 1 = 1" + _account_filter(venue_account, "venue_account") + " ORDER BY taken_at"), params):
        for p in (json.loads(payload) or {}).get("positions") or []:
            if p.get("positionId") is not None and p.get("symbol"):
                pm[(acct, str(p["positionId"]))] = p["symbol"]
    kinds = ", ".join(f"'{k}'" for k in SETTLEMENT_KINDS)
    for t, key, acct, payload in driver_rows(
        conn,
        "SELECT e.timestamp, e.entry_key, e.venue_account, r.payload FROM journal_entries e JOIN raw_records r ON r.id = e.raw_record_id"
        f" WHERE e.endpoint = 'settlement' AND e.kind IN ({kinds}){cond} ORDER BY e.timestamp, e.entry_key",
        {k: v for k, v in params.items() if v is not None},
    ):
        r = loads(payload)
        pid = r.get("positionId")
        pid = None if pid is None else str(pid)
        out.settlements.append(Settlement(acct, utc_from_db(t), key, r["source"], D(r["quantity"]), pid, pm.get((acct, pid)) if pid else None))
    fcond = _account_filter(venue_account, "venue_account")
    for acct, key, payload in driver_rows(conn, f"SELECT venue_account, natural_key, payload FROM raw_records WHERE endpoint = 'funding'{fcond}", acct_only):
        r = loads(payload)
        t = _hist_time(r["intervalEndTimestamp"])
        if until is not None and t > until:
            continue
        out.funding.append(FundingRow(acct, r["symbol"], t, D(r["quantity"]), D(r["fundingRate"]), key))
    out.funding.sort(key=lambda f: (f.time, f.key))
    return out


# -- the books: every perpetual figure a report needs --------------------------------------------------
class FundingLine(NamedTuple):
    """Funding of one market in one calendar month (UTC): received and paid apart, from the settlements;
    ``*_reporting`` in the reporting currency (None when a payment of the month has no USDC rate)."""

    account: str
    market: str
    month: str  # YYYY-MM
    received: Decimal
    paid: Decimal  # negative
    payments: int
    received_reporting: Decimal | None = None
    paid_reporting: Decimal | None = None

    @property
    def net(self) -> Decimal:
        return self.received + self.paid

    @property
    def net_reporting(self) -> Decimal | None:
        if self.received_reporting is None or self.paid_reporting is None:
            return None
        return self.received_reporting + self.paid_reporting


@dataclass
class MarketTotals:
    """One market's year: ``net = realized - fees + funding + other``; ``liquidations`` and ``adl`` are
    the realized P&L (net of fees) of those closes, parts of ``realized - fees``, not added again.

    Every amount is USDC; the ``*_reporting`` twins are the same amounts in the reporting currency, each
    valued at the USDC rate of its own UTC day (``UsdcRates``); ``unvalued`` counts the amounts that had
    no rate (they are in no ``*_reporting`` figure, and ``net_reporting`` is then None: never a zero)."""

    account: str
    market: str
    realized: Decimal = ZERO  # price P&L of every close (pnl)
    fees: Decimal = ZERO  # every fill's fee (opening, closing; rebates negative)
    funding_received: Decimal = ZERO
    funding_paid: Decimal = ZERO
    liquidations: Decimal = ZERO
    adl: Decimal = ZERO
    other: Decimal = ZERO  # liquidation-kind settlements (backstop, liability transfer)
    closes: int = 0
    realized_reporting: Decimal = ZERO
    fees_reporting: Decimal = ZERO
    funding_received_reporting: Decimal = ZERO
    funding_paid_reporting: Decimal = ZERO
    other_reporting: Decimal = ZERO
    fills: int = 0  # fills in the period (their fees are ``fees``)
    #: part ("realized", "fees", "funding", "other") -> amounts of it with no USDC rate (in no ``*_reporting``)
    unvalued_parts: dict[str, int] = field(default_factory=dict)

    @property
    def unvalued(self) -> int:
        return sum(self.unvalued_parts.values())

    def _unvalued(self, part: str) -> None:
        self.unvalued_parts[part] = self.unvalued_parts.get(part, 0) + 1

    @property
    def funding(self) -> Decimal:
        return self.funding_received + self.funding_paid

    @property
    def net(self) -> Decimal:
        return self.realized - self.fees + self.funding + self.other

    @property
    def funding_reporting(self) -> Decimal:
        return self.funding_received_reporting + self.funding_paid_reporting

    @property
    def net_reporting(self) -> Decimal | None:
        if self.unvalued:
            return None
        return self.realized_reporting - self.fees_reporting + self.funding_reporting + self.other_reporting


class PositionLine(NamedTuple):
    """An open position at an instant, valued at the exchange's mark (None: no mark price held)."""

    account: str
    market: str
    side: str
    quantity: Decimal
    average_entry: Decimal
    exchange_entry: Decimal
    cost: Decimal
    mark: Decimal | None
    mark_source: str
    unrealized: Decimal | None  # USDC, at the exchange's entry
    unrealized_reporting: Decimal | None  # in the reporting currency
    opened: datetime


@dataclass
class PerpBooks:
    """The booked perpetuals for one period: rows, funding, totals, the positions open at its end."""

    method: str
    currency: str
    start: datetime | None
    end: datetime | None
    realized: list[Realized]
    funding: list[FundingLine]
    totals: list[MarketTotals]
    positions: list[PositionLine]
    cycles: list[Cycle]
    notes: list[str] = field(default_factory=list)
    #: Settlements with no market (their position id names no position): counted, never dropped.
    unattributed: list[Settlement] = field(default_factory=list)
    #: How each USDC amount became the reporting currency (``UsdcRates.describe``).
    fx: str = ""
    #: Rows handed to the sink (``stream_perps``) or kept in ``realized``.
    realized_count: int = 0

    @property
    def net(self) -> Decimal:
        return sum((t.net for t in self.totals), ZERO)

    @property
    def net_reporting(self) -> Decimal | None:
        """The net in the reporting currency; None when any amount had no USDC rate."""
        parts = [t.net_reporting for t in self.totals]
        return None if any(p is None for p in parts) else sum(parts, ZERO)  # type: ignore[misc]

    @property
    def unvalued(self) -> int:
        return sum(t.unvalued for t in self.totals)


_ONE = Decimal(1)


class UsdcRates:
    """The reporting-currency value of one USDC at an instant: the valuation's own rules for a USDC
    posting (docs/pricing.md: the user's price file, else USDC = 1 USD under either stablecoin policy,
    then the FX table's rate of the UTC date, at most ``FX_LOOKBACK_DAYS`` back). USDC has one value per
    UTC day unless the price file names USDC, so it is looked up once per day (per instant then).

    Built from the ``[reporting]`` config (``reporting``: its ``fx_file`` and ``price_file``). Without it,
    a reporting currency other than USD takes the unit price the ledger's valuation already gave the
    USDC postings of that UTC day (``reconcile prices``); a day with neither has no rate: the amounts
    of that day are counted as unvalued and named in the books' notes, never converted at zero."""

    def __init__(self, conn: Connection, currency: str, reporting: Any = None) -> None:
        self.conn, self.currency = conn, currency
        self._day: dict[Any, Decimal | None] = {}
        self._instant = False
        self._valuer = None
        self.missing: dict[Any, str] = {}
        if reporting is not None:
            from .prices import CachedBars, load_fx_file, load_price_file, settings_from
            from .valuation import Valuer

            price_file, fx_file = getattr(reporting, "price_file", None), getattr(reporting, "fx_file", None)
            user = load_price_file(price_file) if price_file else None
            vs = settings_from(reporting)
            if vs.currency != currency:
                raise ValueError(f"reporting currency {vs.currency!r} is not the books' {currency!r}")
            self._valuer = Valuer(vs, CachedBars(conn), user_prices=user, fx=load_fx_file(fx_file) if fx_file else None)
            self._instant = bool(user is not None and user.rows.get("USDC"))
        self.identity = currency == "USD" and not self._instant

    def describe(self) -> str:
        if self.identity:
            return "USDC = 1 USD (the stablecoin rule of docs/pricing.md): the USDC figures are the USD figures"
        if self._valuer is not None:
            return (f"USDC valued in {self.currency} by the ledger's valuation rules (price file, else USDC = 1 USD, then the FX table's rate "
                    f"of the UTC date){', per instant (the price file names USDC)' if self._instant else ', one rate per UTC day'}")
        return f"USDC valued in {self.currency} at the unit price the ledger's valuation gave the USDC postings of the same UTC day"

    def rate(self, t: datetime) -> Decimal | None:
        """Units of the reporting currency per USDC at ``t``; None (and ``missing`` says why) when none."""
        if self.identity:
            return _ONE
        if self._instant:
            return self._lookup(t)
        day = t.date() if t.tzinfo is _UTC else t.astimezone(_UTC).date()
        r = self._day.get(day, self)
        if r is self:
            r = self._day[day] = self._lookup(t)
        return r  # type: ignore[return-value]

    def _lookup(self, t: datetime) -> Decimal | None:
        day = t.astimezone(_UTC).date()
        if self._valuer is not None:
            from .valuation import EntryIn, PostingIn

            got = self._valuer.value_entry(EntryIn(0, "perp-value", t, "valuation", (PostingIn(0, "Assets:Backpack:x:Spot:USDC", "USDC", _ONE),)))
            v = got[0] if got else None
            if v is not None and v.unit_price is not None:
                return v.unit_price
            self.missing.setdefault(day, v.source if v is not None else "no value")
            return None
        lo = datetime(day.year, day.month, day.day, tzinfo=_UTC)
        row = self.conn.execute(
            text("SELECT p.unit_price FROM postings p JOIN journal_entries e ON e.id = p.entry_id JOIN assets a ON a.id = p.asset_id"
                 " WHERE a.symbol = 'USDC' AND p.price_currency = :c AND p.unit_price IS NOT NULL AND e.timestamp >= :lo AND e.timestamp < :hi"
                 " ORDER BY e.timestamp LIMIT 1"),
            {"c": self.currency, "lo": db_time(self.conn, lo), "hi": db_time(self.conn, lo + timedelta(days=1))},
        ).first()
        if row is not None:
            return row[0] if isinstance(row[0], Decimal) else Decimal(str(row[0]))
        self.missing.setdefault(day, f"no USDC posting of {day} valued in {self.currency} (run `reconcile prices` with an FX file)")
        return None

    def value(self, amount: Decimal, t: datetime) -> Decimal | None:
        r = self.rate(t)
        return None if r is None else (amount if r == 1 else EXACT.multiply(amount, r))

    def note(self) -> str | None:
        if not self.missing:
            return None
        days = sorted(self.missing)
        return (f"{len(days)} UTC day(s) with perpetual amounts have no USDC rate to {self.currency} (first {days[0]}: {self.missing[days[0]]}): "
                f"those amounts are in the USDC columns only, and the {self.currency} totals they belong to are left empty")


def _in(t: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or t >= start) and (end is None or t < end)


def _mark_at(conn: Connection, market: str, t: datetime) -> tuple[Decimal | None, str]:
    """The exchange's mark price of ``market`` at ``t``: the close of the cached mark kline that ends at
    or before ``t`` (1m, else 1h, else 1d), docs/pricing.md."""
    sym = mark_symbol(market)
    for iv, secs in (("1m", 60), ("1h", 3600), ("1d", 86400)):
        row = conn.execute(
            text("SELECT start, close FROM price_bars WHERE symbol = :s AND interval = :iv AND start <= :t AND close IS NOT NULL ORDER BY start DESC LIMIT 1"),
            {"s": sym, "iv": iv, "t": db_time(conn, t - timedelta(seconds=secs))},  # a bar that has closed by t
        ).first()
        if row is not None:
            start = utc_from_db(row[0])
            if (t - start).total_seconds() <= 2 * secs:
                return Decimal(str(row[1])) if not isinstance(row[1], Decimal) else row[1], f"mark kline {iv} {start.isoformat()}"
    return None, f"no cached mark-price kline of {market} at {t.isoformat()}: run `reconcile prices`"


def perp_books(conn: Connection, settings: Any, *, year: int | None = None, start: datetime | None = None, end: datetime | None = None,
               venue_account: str | None = None, method: str | None = None, inputs: PerpInputs | None = None, reporting: Any = None) -> PerpBooks:
    """Every perpetual figure for a period: ``year`` (a tax year of ``settings``, a ``ledger.books.BookSettings``)
    or [``start``, ``end``), or everything. Booking always runs over the whole history (earlier fills decide
    which lots are open); the rows, funding and totals are those of the period, the positions those open
    at its end, valued at the exchange's mark.

    ``method``: ``average`` or ``fifo``; default the jurisdiction's (``DEFAULT_PERP_METHOD``).
    ``reporting``: the ``[reporting]`` config, for the FX and price files the reporting-currency figures
    use (``UsdcRates``). ``stream_perps`` is the same booking handing the rows to a sink instead."""
    rows: list[Realized] = []
    books = stream_perps(conn, settings, year=year, start=start, end=end, venue_account=venue_account, method=method, inputs=inputs,
                         sink=rows.extend, cycles=True, reporting=reporting)
    books.realized = rows
    return books


def stream_perps(conn: Connection, settings: Any, *, year: int | None = None, start: datetime | None = None, end: datetime | None = None,
                 venue_account: str | None = None, method: str | None = None, inputs: PerpInputs | None = None,
                 sink: Callable[[list[Realized]], None] | None = None, cycles: bool = False, reporting: Any = None) -> PerpBooks:
    """``perp_books`` for an export of any size: the fills are read a chunk at a time and never held, the
    period's realized rows go to ``sink`` a chunk at a time as they are booked (in booking order), and only
    the totals, funding lines, open positions (and, with ``cycles``, the period's cycles) are returned;
    ``PerpBooks.realized`` is empty."""
    booking = getattr(settings, "booking", settings)
    jur = getattr(booking, "jurisdiction", "generic")
    m = perp_method_for(jur, method or getattr(settings, "perp_method", None))
    currency = getattr(settings, "currency", "USD")
    if year is not None:
        start, end = settings.year_bounds(year)
    rates = UsdcRates(conn, currency, reporting)
    inp = inputs if inputs is not None else read_perps(conn, venue_account=venue_account, fills=False)
    totals: dict[tuple[str, str], MarketTotals] = {}

    def tot(acct: str, market: str) -> MarketTotals:
        t = totals.get((acct, market))
        if t is None:
            t = totals[(acct, market)] = MarketTotals(acct, market)
        return t

    # USDC amounts per (account, market, what, UTC day), valued once per day at the end (exact: the
    # day's rate times the day's sum is the sum of each amount times it).
    by_day: dict[tuple[str, str, str, Any], Decimal] = defaultdict(lambda: ZERO)
    engine = PerpEngine(m)
    rows = engine.realized
    kept_cycles: list[Cycle] = []
    positions_at_end: list[OpenPosition] | None = None
    last: datetime | None = None
    n_rows = 0
    identity = rates.identity
    if inputs is not None:
        chunks: Iterable[list[PerpFill]] = [inputs.fills]
        feed = engine.feed  # fills built by the caller: checked
    else:
        chunks = iter_perp_fills(conn, venue_account=venue_account, until=end)
        feed = engine.feed_exact  # type: ignore[assignment]
    with localcontext(EXACT):
        for chunk in chunks:
            stop = False
            for f in chunk:
                t = f.time
                if end is not None and t >= end:
                    positions_at_end = engine.positions()
                    stop = True
                    break
                feed(f)
                last = t
                if start is None or t >= start:
                    mt = totals.get((f.account, f.market)) or tot(f.account, f.market)
                    mt.fees += f.fee
                    mt.fills += 1
                    if not identity:
                        by_day[(f.account, f.market, "fees", t.date())] += f.fee
            if rows:
                period = rows if start is None else [r for r in rows if r.closed >= start]
                for r in period:
                    mt = totals.get((r.account, r.market)) or tot(r.account, r.market)
                    mt.realized += r.pnl
                    mt.closes += 1
                    kind = r.close_kind
                    if kind == "liquidation":
                        mt.liquidations += r.net
                    elif kind == "adl":
                        mt.adl += r.net
                    if not identity:
                        by_day[(r.account, r.market, "realized", r.closed.date())] += r.pnl
                n_rows += len(period)
                if sink is not None and period:
                    sink(list(period))
                rows.clear()
            if engine.cycles:
                if cycles:
                    kept_cycles.extend(c for c in engine.cycles if start is None or c.end >= start)
                engine.cycles.clear()
            if stop:
                break
    if positions_at_end is None:
        positions_at_end = engine.positions()
    funding: dict[tuple[str, str, str], list] = {}
    unattributed = []
    for s in inp.settlements:
        if not _in(s.time, start, end):
            continue
        if s.source in FUNDING_SOURCES:
            if s.market is None:
                unattributed.append(s)
                continue
            month = s.time.strftime("%Y-%m")
            line = funding.setdefault((s.account, s.market, month), [ZERO, ZERO, 0, ZERO, ZERO, False])
            t = tot(s.account, s.market)
            v = rates.value(s.quantity, s.time)
            if v is None:
                line[5] = True
                t._unvalued("funding")
            if s.quantity >= 0:
                line[0] += s.quantity
                t.funding_received += s.quantity
                if v is not None:
                    line[3] += v
                    t.funding_received_reporting += v
            else:
                line[1] += s.quantity
                t.funding_paid += s.quantity
                if v is not None:
                    line[4] += v
                    t.funding_paid_reporting += v
            line[2] += 1
        elif s.source not in REALIZED_SOURCES and s.source not in FEE_SOURCES:
            if s.market is None:
                unattributed.append(s)
                continue
            t = tot(s.account, s.market)
            t.other += s.quantity
            v = rates.value(s.quantity, s.time)
            if v is None:
                t._unvalued("other")
            else:
                t.other_reporting += v
    # the fills' fees and the closes' P&L in the reporting currency, a day at a time
    for mt in totals.values():
        if identity:
            mt.realized_reporting, mt.fees_reporting = mt.realized, mt.fees
    for (acct, market, what, day), amount in by_day.items():
        mt = totals[(acct, market)]
        v = rates.value(amount, datetime(day.year, day.month, day.day, 12, tzinfo=_UTC))
        if v is None:
            mt._unvalued(what)
        elif what == "fees":
            mt.fees_reporting += v
        else:
            mt.realized_reporting += v
    books = PerpBooks(
        method=m, currency=currency, start=start, end=end, realized=[],
        funding=[FundingLine(a, mk, mo, v[0], v[1], v[2], None if v[5] else v[3], None if v[5] else v[4]) for (a, mk, mo), v in sorted(funding.items())],
        totals=[totals[k] for k in sorted(totals)], positions=[], cycles=kept_cycles, unattributed=unattributed, fx=rates.describe(), realized_count=n_rows,
    )
    when = end if end is not None else last
    mark_rate: Any = rates  # looked up once, and only for a position that has a mark price
    for p in positions_at_end:
        mark, source = _mark_at(conn, p.market, when) if when is not None else (None, "no time")
        upnl = exchange_unrealized(p.quantity, mark, p.exchange_entry) if mark is not None else None
        if upnl is not None and mark_rate is rates:
            mark_rate = rates.rate(when)  # type: ignore[arg-type]
        value = None if upnl is None or mark_rate is None else (upnl if mark_rate == 1 else EXACT.multiply(upnl, mark_rate))
        if upnl is not None and value is None:
            books.notes.append(f"{p.account} {p.market}: unrealized P&L in {currency} not computed: no USDC rate at {when.isoformat()}")  # type: ignore[union-attr]
        if mark is None:
            books.notes.append(f"{p.account} {p.market}: unrealized P&L not computed: {source}")
        books.positions.append(PositionLine(p.account, p.market, p.side, p.quantity, p.average_entry, p.exchange_entry, p.cost, mark, source, upnl, value, p.opened))
    if unattributed:
        books.notes.append(f"{len(unattributed)} settlement(s) name no known position (no market): counted in no market's totals")
    fx_note = rates.note()
    if fx_note:
        books.notes.append(fx_note)
    if inputs is None:
        orphans = _unbacked_perp_entries(conn, venue_account)
        if orphans:
            books.notes.append(f"{orphans} perpetual journal entr{'y has' if orphans == 1 else 'ies have'} no stored exchange record (posted by hand?): "
                               "not booked as positions; their figures are in no total")
    return books


def _unbacked_perp_entries(conn: Connection, venue_account: str | None) -> int:
    """Perp fills and settlements in the journal without a raw record: the position engine reads the
    exchange's records, so these are named, never silently left out."""
    kinds = ", ".join(f"'{k}'" for k in ("perp-fill", *SETTLEMENT_KINDS))
    q = f"SELECT COUNT(*) FROM journal_entries e WHERE e.kind IN ({kinds}) AND e.raw_record_id IS NULL"
    params: dict[str, Any] = {}
    if venue_account:
        q += " AND e.venue_account = :acct"
        params["acct"] = venue_account
    return int(conn.execute(text(q), params).scalar_one())


# -- the proof --------------------------------------------------------------------------------------
class Difference(NamedTuple):
    """One equation that does not hold, named by check, market and interval, with both figures."""

    check: str
    account: str
    market: str
    start: datetime | None
    end: datetime | None
    ledger: Decimal
    exchange: Decimal
    cause: str

    @property
    def difference(self) -> Decimal:
        return self.ledger - self.exchange

    def to_json(self) -> dict:
        return {"check": self.check, "account": self.account, "market": self.market,
                "start": self.start.isoformat() if self.start else None, "end": self.end.isoformat() if self.end else None,
                "ledger": plain(self.ledger), "exchange": plain(self.exchange), "difference": plain(self.difference), "cause": self.cause}

    def line(self) -> str:
        span = ""
        if self.start or self.end:
            span = f" [{self.start.isoformat() if self.start else '...'} .. {self.end.isoformat() if self.end else '...'})"
        return (f"{self.check} {self.market}{span}: ledger {plain(self.ledger)} vs exchange {plain(self.exchange)}, "
                f"difference {plain(self.difference)}: {self.cause}")


@dataclass
class PerpProof:
    venue_account: str
    snapshot_id: int | None
    as_of: datetime | None
    differences: list[Difference] = field(default_factory=list)
    #: What was compared: check -> number of equations that held.
    held: dict[str, int] = field(default_factory=dict)
    rollforward: dict[str, Decimal] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_json(self) -> dict:
        return {"venue_account": self.venue_account, "ok": self.ok, "held": dict(self.held),
                "usdc_rollforward": {k: plain(v) for k, v in self.rollforward.items()}, "notes": self.notes,
                "differences": [d.to_json() for d in self.differences]}


def _by_market(items: Iterable, key) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for x in items:
        out[key(x)].append(x)
    return out


#: Journal entry kinds of each USDC roll-forward category.
ROLLFORWARD_CATEGORIES = {
    "spot flows": ("spot-trade", "rfq-fill", "quote-fill", "dust"),
    "settlements": SETTLEMENT_KINDS,
    "interest": ("interest-income", "interest-expense"),
    "deposits": ("deposit", "transfer-in"),
    "withdrawals": ("withdrawal", "transfer-out"),
    "borrow and lend": ("borrow", "repay", "lend", "redeem"),
}


def _usdc_rollforward(conn: Connection, proof: PerpProof, snapshot_id: int) -> None:
    """Opening USDC + spot flows + settlements + interest + deposits - withdrawals + borrow/lend = the
    exchange's closing balance (the snapshot's lines, as stored; zero lines omitted) at ``proof.as_of``;
    and spot USDC never left negative at any instant (the exchange auto-borrows a negative USDC
    balance: one it does not explain is a missing auto-borrow)."""
    acct, until = proof.venue_account, proof.as_of
    exchange_spot = exchange_borrowed = ZERO
    for wallet, qty in conn.execute(text("SELECT wallet, quantity FROM snapshot_lines WHERE snapshot_id = :s AND asset = 'USDC'"), {"s": snapshot_id}):
        qty = qty if isinstance(qty, Decimal) else Decimal(str(qty))
        if wallet == "Spot":
            exchange_spot += qty
        elif wallet == "Borrowed":
            exchange_borrowed += qty
    spot = f"Assets:Backpack:{acct}:Spot:USDC"
    borrowed = f"Liabilities:Backpack:{acct}:Borrowed:USDC"
    rows = driver_rows(
        conn,
        "SELECT e.timestamp, e.kind, ac.name, p.quantity FROM postings p JOIN journal_entries e ON e.id = p.entry_id"
        " JOIN accounts ac ON ac.id = p.account_id JOIN assets a ON a.id = p.asset_id"
        " WHERE a.symbol = 'USDC' AND ac.name IN (:spot, :borrowed) AND e.timestamp <= :until ORDER BY e.timestamp, e.entry_key",
        {"spot": spot, "borrowed": borrowed, "until": db_time(conn, until)},
    )
    kind_cat = {k: c for c, ks in ROLLFORWARD_CATEGORIES.items() for k in ks}
    cats: dict[str, Decimal] = {"opening": ZERO, **{c: ZERO for c in ROLLFORWARD_CATEGORIES}, "other": ZERO}
    bal = owed = ZERO
    last_t = None
    negative: list[tuple[datetime, Decimal]] = []
    for t, kind, name, q in rows:
        q = q if isinstance(q, Decimal) else Decimal(q if isinstance(q, (str, int)) else str(q))
        t = _ms_floor(utc_from_db(t))  # A-PERP-4: records of one millisecond are one instant (sub-ms digits are processing time)
        if last_t is not None and t != last_t and bal < 0:
            negative.append((last_t, bal))
        last_t = t
        if name == spot:
            bal += q
            cats[kind_cat.get(kind, "other")] += q
        else:
            owed += q
    if last_t is not None and bal < 0:
        negative.append((last_t, bal))
    proof.rollforward = {**cats, "closing (ledger)": bal, "borrowed (ledger)": owed, "closing (exchange)": exchange_spot}
    if bal != exchange_spot:
        proof.differences.append(Difference("usdc-rollforward", acct, "USDC", None, until, bal, exchange_spot,
                                            "opening + flows + settlements + interest + deposits - withdrawals does not reach the exchange's USDC balance"))
    else:
        proof.held["usdc-rollforward"] = proof.held.get("usdc-rollforward", 0) + 1
    if owed != exchange_borrowed:
        proof.differences.append(Difference("usdc-borrowed", acct, "USDC", None, until, owed, exchange_borrowed,
                                            "the USDC borrowed (auto-borrow of a negative balance included) differs from the exchange's borrow position"))
    for t, b in negative[:20]:
        proof.differences.append(Difference("usdc-negative", acct, "USDC", t, t, b, ZERO,
                                            "spot USDC is negative after this instant and no auto-borrow brings it back: a borrow, deposit or settlement is missing"))
    if len(negative) > 20:
        proof.notes.append(f"{len(negative) - 20} more instants with a negative USDC balance")
    if not negative:
        proof.held["usdc-never-negative"] = 1


class _Walk:
    """The settlement, fee and funding intervals of one account, closed as the fills stream past them."""

    def __init__(self, proof: PerpProof, account: str) -> None:
        self.proof, self.account = proof, account
        self.realized: dict[str, list] = defaultdict(list)  # market -> [(ms-floored time, quantity, keys, time)]
        self.fees: dict[str, list] = defaultdict(list)
        self.fund_rows: dict[tuple[str, datetime], Decimal] = defaultdict(lambda: ZERO)
        self.fund_settled: dict[tuple[str, datetime], Decimal] = defaultdict(lambda: ZERO)
        self.rates: dict[tuple[str, datetime], Decimal] = {}
        self.funding: dict[str, list[datetime]] = {}
        #: market -> [pnl since the last RealizePnl, fees since the last TradingFees, fills since each (2)], carry,
        #: previous ends, cursors
        self._state: dict[str, list] = {}
        self.pending: set[str] = set()  # markets with an interval still to close
        self.next_t: dict[str, datetime] = {}  # market -> the end of its next interval
        self.held = {"realized-pnl": 0, "trading-fees": 0, "funding": 0}
        self.unsettled: dict[str, Decimal] = {}
        self.unpaid: dict[str, Decimal] = {}

    @staticmethod
    def add_group(table: dict[str, list], s: Settlement) -> None:
        g = table[s.market]  # type: ignore[index]
        t = _ms_floor(s.time)
        if g and g[-1][0] == t:
            g[-1] = (t, g[-1][1] + s.quantity, g[-1][2] + [s.key], s.time)
        else:
            g.append((t, s.quantity, [s.key], s.time))

    def prepare(self) -> None:
        by_market: dict[str, set] = defaultdict(set)
        for m, t in set(self.fund_rows) | set(self.fund_settled):
            by_market[m].add(t)
        self.funding = {m: sorted(ts) for m, ts in by_market.items()}
        self.pending = set(self.realized) | set(self.fees) | set(self.funding)
        for m in self.pending:
            self._next(m, self.state(m))

    def _next(self, m: str, st: list) -> None:
        ends = []
        g = self.realized.get(m)
        if g is not None and st[6] < len(g):
            ends.append(g[st[6]][0])
        g = self.fees.get(m)
        if g is not None and st[7] < len(g):
            ends.append(g[st[7]][0])
        ft = self.funding.get(m)
        if ft is not None and st[8] < len(ft):
            ends.append(ft[st[8]])
        if ends:
            self.next_t[m] = min(ends)
        else:
            self.next_t.pop(m, None)
            self.pending.discard(m)

    def state(self, m: str) -> list:
        st = self._state.get(m)
        if st is None:
            # pnl, fees, fills(pnl), carry, prev end (pnl), prev end (fees), cursor pnl, cursor fees, cursor funding, fills(fees)
            st = self._state[m] = [ZERO, ZERO, 0, ZERO, None, None, 0, 0, 0, 0]
        return st

    def before(self, m: str, t: datetime, engine: PerpEngine) -> None:
        """Close every interval of market ``m`` that ends at or before ``t`` (fills at ``t`` come after)."""
        st = self.state(m)
        g = self.realized.get(m)
        while g is not None and st[6] < len(g) and g[st[6]][0] <= t:
            self._close_realized(m, st, g[st[6]])
            st[6] += 1
        g = self.fees.get(m)
        while g is not None and st[7] < len(g) and g[st[7]][0] <= t:
            self._close_fees(m, st, g[st[7]])
            st[7] += 1
        ft = self.funding.get(m)
        while ft is not None and st[8] < len(ft) and ft[st[8]] <= t:
            self._funding(m, ft[st[8]], engine)
            st[8] += 1
        self._next(m, st)

    def _close_realized(self, m: str, st: list, group: tuple) -> None:
        t, q, keys, _orig = group
        pending = st[3] + st[0]
        expected = pending.quantize(SETTLEMENT_UNIT, rounding=ROUND_HALF_EVEN)
        st[3] = pending - expected  # the residue only: a wrong settlement is named once, not carried on
        if expected != q:
            self.proof.differences.append(Difference("realized-pnl", self.account, m, st[4], t, expected, q, self._cause(st[2], expected, q, keys, "realized P&L")))
        else:
            self.held["realized-pnl"] += 1
        st[0] = ZERO
        st[2] = 0
        st[4] = t

    def _close_fees(self, m: str, st: list, group: tuple) -> None:
        t, q, keys, _orig = group
        expected = -st[1]
        if expected != q:
            self.proof.differences.append(Difference("trading-fees", self.account, m, st[5], t, expected, q, self._cause(st[9], expected, q, keys, "fee")))
        else:
            self.held["trading-fees"] += 1
        st[1] = ZERO
        st[9] = 0
        st[5] = t

    @staticmethod
    def _cause(n: int, expected: Decimal, q: Decimal, keys: list[str], what: str) -> str:
        return (f"{n} fill(s) in the interval give {plain(expected)}; the settlement{'s' if len(keys) > 1 else ''} "
                f"{', '.join(keys[:3])} {'say' if len(keys) > 1 else 'says'} {plain(q)}: "
                + ("a fill missing from history/fills, or a settlement the history does not explain" if expected != 0 or n else
                   f"a {what} settlement with no fill in its interval"))

    def _funding(self, m: str, t: datetime, engine: PerpEngine) -> None:
        key = (m, t)
        a, b = self.fund_rows.get(key, ZERO), self.fund_settled.get(key, ZERO)
        if a != b:
            cause = ("a FundingPayment settlement with no history/funding row" if key not in self.fund_rows else
                     "a history/funding row with no FundingPayment settlement" if key not in self.fund_settled else "the funding row and its settlement disagree")
            self.proof.differences.append(Difference("funding", self.account, m, t, t, a, b, cause))
            return
        book = engine.books.get((self.account, m))
        net = book.net if book is not None else ZERO
        rate = self.rates.get(key, ZERO)
        if a and net == 0:
            self.proof.differences.append(Difference("funding", self.account, m, t, t, ZERO, a,
                                                     "funding paid or received while the fills leave the position flat: a fill is missing"))
        elif a and rate and (a > 0) != (net * rate < 0):
            self.proof.differences.append(Difference("funding", self.account, m, t, t, ZERO, a,
                                                     f"funding of this sign does not fit a position of {plain(net)} at rate {plain(rate)}: a fill is missing"))
        else:
            self.held["funding"] += 1

    def finish(self, engine: PerpEngine) -> None:
        far = datetime.max.replace(tzinfo=_UTC)
        for m in sorted(set(self.pending)):
            self.before(m, far, engine)
        for m, st in self._state.items():
            self.unsettled[m] = st[0] + st[3]
            self.unpaid[m] = -st[1]
        self.proof.held.update(self.held)
        pend = [f"{m} P&L {plain(v)}" for m, v in sorted(self.unsettled.items()) if v] + [f"{m} fees {plain(-v)}" for m, v in sorted(self.unpaid.items()) if v]
        if pend:
            self.proof.notes.append("not yet settled at the snapshot: " + ", ".join(pend))


def perp_proof(conn: Connection, venue_account: str, *, at: datetime | None = None, inputs: PerpInputs | None = None,
               methods: Iterable[str] = PERP_METHODS) -> PerpProof:
    """Prove the account's perpetuals against the latest snapshot at or before ``at`` (docs/perps.md):

    1. per market and settlement interval: the ``average`` lots' P&L == ``RealizePnl`` (settled in
       ``SETTLEMENT_UNIT``, remainder carried), fill fees == ``TradingFees``, ``history/funding`` ==
       ``FundingPayment`` (and no funding while the position is flat);
    2. for every method, over each flat-to-flat cycle: net realized == signed notionals - fees;
    3. the USDC roll-forward to the exchange's balance, never negative without an auto-borrow;
    4. open positions (quantity, entry) == ``/api/v1/position``; unrealized at its mark == ``pnlUnrealized``.
    """
    q = "SELECT id, taken_at, payload FROM snapshots WHERE venue_account = :a"
    params: dict[str, Any] = {"a": venue_account}
    if at is not None:
        q += " AND taken_at <= :t"
        params["t"] = db_time(conn, at)
    snap = conn.execute(text(q + " ORDER BY taken_at DESC, id DESC LIMIT 1"), params).first()
    proof = PerpProof(venue_account, snap[0] if snap else None, utc_from_db(snap[1]) if snap else None)
    until = proof.as_of or at
    methods = tuple(dict.fromkeys(("average", *methods)))
    # The other methods' cycles are booked by a child process on the second core (a large ledger only),
    # started first so that it runs while this one reads the settlements.
    child = _start_cycle_child(conn, proof, until, [m for m in methods if m != "average"]) if inputs is None and len(methods) > 1 else None
    rolled: PerpProof | None = None
    inp = inputs if inputs is not None else read_perps(conn, venue_account=venue_account, until=until, fills=False)
    has_fills = bool(inp.fills) or conn.execute(text("SELECT 1 FROM journal_entries WHERE kind = 'perp-fill' AND venue_account = :a LIMIT 1"), {"a": venue_account}).first() is not None
    ex_open = False
    if snap is not None and snap[2]:
        ex_open = any(p.get("symbol") and Decimal(str(p.get("netQuantity") or "0")) != 0 for p in (json.loads(snap[2]) or {}).get("positions") or [])
    if not has_fills and not inp.settlements and not inp.funding and not ex_open:
        # The scope (docs/perps.md): the proof covers an account with perpetual records or a position the
        # exchange reports; an account with neither has nothing to prove (its USDC is the balance check's).
        proof.notes.append("no perpetual fills, settlements, funding or open positions: nothing to prove")
        if child is not None:
            _join_cycle_child(child)
        return proof
    # 1 and 2 in one pass over the fills (streamed; nothing per fill is kept): each market's settlement
    # intervals are closed as its fills pass their end, funding intervals see the position at their end,
    # and every method's cycles are checked as they close.
    settle = [s for s in inp.settlements if s.time <= until] if until is not None else inp.settlements
    for s in settle:
        if s.market is None:
            proof.differences.append(Difference("settlement-market", venue_account, "?", s.time, s.time, ZERO, s.quantity,
                                                f"settlement {s.key} ({s.source}) names position {s.position_id!r}, which no position row names: its market is unknown"))
    settle = [s for s in settle if s.market is not None]
    walk = _Walk(proof, venue_account)
    for s in settle:
        if s.source in REALIZED_SOURCES:
            walk.add_group(walk.realized, s)
        elif s.source in FEE_SOURCES:
            walk.add_group(walk.fees, s)
        elif s.source in FUNDING_SOURCES:
            walk.fund_settled[(s.market, _hour_floor(s.time))] += s.quantity  # type: ignore[index]
    for fr in inp.funding:
        if until is None or fr.time <= until:
            walk.fund_rows[(fr.market, fr.time)] += fr.quantity
            walk.rates[(fr.market, fr.time)] = fr.rate
    walk.prepare()
    engines = {m: PerpEngine(m, rows=False) for m in methods}
    average = engines["average"]
    others = [engines[m] for m in methods if m != "average"]
    cycle_ok = {m: 0 for m in methods}

    def check_cycles(m: str, cycles: list) -> None:
        for c in cycles:
            if c.difference != 0 or c.pnl != c.cash_flow:
                proof.differences.append(Difference(f"cycle-{m}", c.account, c.market, c.start, c.end, c.net, c.cash_flow - c.fees,
                                                    f"the {m} lots' net realized P&L over this flat-to-flat cycle differs from its fills' cash flow less fees"))
            else:
                cycle_ok[m] += 1
        cycles.clear()

    chunks = [inp.fills] if inp.fills else iter_perp_fills(conn, venue_account=venue_account, until=until)
    if child is not None:
        others = []
    with localcontext(EXACT):
        states = walk._state
        next_t = walk.next_t
        for chunk in chunks:
            before = walk.before
            feed = average.feed_exact
            for f in chunk:
                m = f.market
                nt = next_t.get(m)
                if nt is not None and f.time >= nt:
                    before(m, f.time, average)
                b = feed(f)
                st = states.get(m)
                if st is None:
                    st = walk.state(m)
                st[0] += b.ex_pnl
                st[1] += f.fee
                st[2] += 1
                st[9] += 1
            for e in others:
                fe = e.feed_exact
                for f in chunk:
                    fe(f)
                check_cycles(e.method, e.cycles)
            check_cycles("average", average.cycles)
        walk.finish(average)
    if child is not None:
        done = _join_cycle_child(child)
        if done is None:  # the child failed: book the other methods here after all
            for m in methods:
                if m != "average":
                    check_cycles(m, _cycles(m, [f for chunk in iter_perp_fills(conn, venue_account=venue_account, until=until) for f in chunk]))
        else:
            rolled = done["rolled"]
            for m, (ok, diffs) in done["cycles"].items():
                cycle_ok[m] = ok
                proof.differences.extend(diffs)
    for m in methods:
        proof.held[f"cycle-{m}"] = cycle_ok[m]
    positions = average.positions()
    if snap is None:
        proof.notes.append(f"no snapshot of {venue_account}: USDC and positions not compared; run `reconcile sync`")
        return proof
    payload = json.loads(snap[2]) if snap[2] else {}
    # 3. USDC roll-forward, against the snapshot's lines (the cycle child's, when there is one: it is done first)
    if rolled is not None:
        proof.rollforward = rolled.rollforward
        proof.differences.extend(rolled.differences)
        proof.held.update(rolled.held)
        proof.notes.extend(rolled.notes)
    else:
        _usdc_rollforward(conn, proof, snap[0])
    # 4. open positions
    if "positions" not in payload:
        proof.notes.append("the snapshot holds no /api/v1/position response: entry prices and unrealized P&L not compared")
        return proof
    mine = {p.market: p for p in positions}
    theirs = {p["symbol"]: p for p in payload.get("positions") or [] if p.get("symbol")}
    held = 0
    for market in sorted(set(mine) | set(theirs)):
        p, x = mine.get(market), theirs.get(market)
        if p is None or x is None:
            q_l = p.quantity if p else ZERO
            q_x = Decimal(str(x["netQuantity"])) if x else ZERO
            if q_l == q_x:
                continue
            proof.differences.append(Difference("position", venue_account, market, None, proof.as_of, q_l, q_x,
                                                "open in the ledger, not at the exchange" if x is None else "open at the exchange, not in the ledger: fills are missing"))
            continue
        xq, xe = Decimal(str(x["netQuantity"])), Decimal(str(x["entryPrice"]))
        good = True
        if p.quantity != xq:
            proof.differences.append(Difference("position", venue_account, market, None, proof.as_of, p.quantity, xq, "net quantity differs: a fill is missing or extra"))
            good = False
        elif p.exchange_entry != xe:
            proof.differences.append(Difference("position-entry", venue_account, market, None, proof.as_of, p.exchange_entry, xe, "average entry price differs"))
            good = False
        elif x.get("pnlUnrealized") is not None and x.get("markPrice") is not None:
            mine_u = exchange_unrealized(p.quantity, Decimal(str(x["markPrice"])), p.exchange_entry)
            xu = Decimal(str(x["pnlUnrealized"]))
            if mine_u != xu:
                proof.differences.append(Difference("position-unrealized", venue_account, market, None, proof.as_of, mine_u, xu,
                                                    f"unrealized P&L at the exchange's mark {x['markPrice']} differs"))
                good = False
        held += good
    proof.held["positions"] = held
    return proof


#: A ledger with at least this many perp fills books the other methods' cycles in a child process
#: (the machine's second core) while this one books ``average`` and the settlement intervals.
CHILD_MIN_FILLS = 200_000


class ProofHandle:
    """A ``perp_proof`` started by ``start_perp_proof``: running in a child process (a large ledger), or
    not yet run (``result`` then runs it here)."""

    def __init__(self, venue_account: str, at: datetime | None, proc=None, recv=None) -> None:
        self.venue_account, self.at, self.proc, self.recv = venue_account, at, proc, recv

    def result(self, conn: Connection) -> PerpProof:
        if self.proc is None:
            return perp_proof(conn, self.venue_account, at=self.at)
        try:
            got = self.recv.recv()
        except EOFError:
            got = None
        finally:
            self.recv.close()
            self.proc.join()
            self.proc = None
        if isinstance(got, PerpProof):
            return got
        return perp_proof(conn, self.venue_account, at=self.at)  # the child failed: prove here after all

    def discard(self) -> None:
        """Not needed after all (no snapshot): stop the child, if one runs."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.join()
            self.recv.close()
            self.proc = None


def _proof_child_main(url: str, venue_account: str, at: datetime | None, send) -> None:
    try:
        from .db import make_engine

        engine = make_engine(url)
        with engine.connect() as conn:
            proof = perp_proof(conn, venue_account, at=at)
        engine.dispose()
        send.send(proof)
    except BaseException as exc:  # noqa: BLE001 - the parent proves in process instead
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()


def start_perp_proof(conn: Connection, venue_account: str, *, at: datetime | None = None) -> ProofHandle:
    """Start ``perp_proof(conn, venue_account, at=at)`` so that it runs while the caller does other work
    (``ledger.reconcile.check``'s balance comparison): in a forked process for an account with at least
    ``CHILD_MIN_FILLS`` perp fills (it forks the cycle child in turn), else not yet (``result`` runs it in
    process). The proof is the same either way; ``ProofHandle.result`` returns it."""
    from . import forked

    if not forked.forkable(conn):
        return ProofHandle(venue_account, at)
    if not many_perp_fills(conn, venue_account):
        return ProofHandle(venue_account, at)
    child = forked.start(conn, _proof_child_main, venue_account, at, daemon=False)  # not a daemon: it starts the cycle child itself
    return ProofHandle(venue_account, at) if child is None else ProofHandle(venue_account, at, *child)


def _cycle_child_main(url: str, proof: PerpProof, until: datetime | None, methods: list[str], send) -> None:
    """Book ``methods`` over the account's fills and check their cycles, then the USDC roll-forward
    (into a copy of ``proof``'s heading): sent back as ``{"cycles": ..., "rolled": ...}``."""
    try:
        from .db import make_engine

        engine = make_engine(url)
        engines = {m: PerpEngine(m, rows=False) for m in methods}
        result: dict[str, tuple[int, list]] = {m: (0, []) for m in methods}
        rolled = PerpProof(proof.venue_account, proof.snapshot_id, proof.as_of)
        with engine.connect() as conn:
            with localcontext(EXACT):
                for chunk in iter_perp_fills(conn, venue_account=proof.venue_account, until=until):
                    for m, e in engines.items():
                        fe = e.feed_exact
                        for f in chunk:
                            fe(f)
                        ok, diffs = result[m]
                        for c in e.cycles:
                            if c.difference != 0 or c.pnl != c.cash_flow:
                                diffs.append(Difference(f"cycle-{m}", c.account, c.market, c.start, c.end, c.net, c.cash_flow - c.fees,
                                                        f"the {m} lots' net realized P&L over this flat-to-flat cycle differs from its fills' cash flow less fees"))
                            else:
                                ok += 1
                        result[m] = (ok, diffs)
                        e.cycles.clear()
            if proof.snapshot_id is not None:
                _usdc_rollforward(conn, rolled, proof.snapshot_id)
        engine.dispose()
        send.send({"cycles": result, "rolled": rolled if proof.snapshot_id is not None else None})
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which books in process instead
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()


def many_perp_fills(conn: Connection, venue_account: str | None, at_least: int | None = None) -> bool:
    """Whether the account (None: the ledger) has at least ``at_least`` (default ``CHILD_MIN_FILLS``)
    perp fills, counted no further."""
    if at_least is None:
        at_least = CHILD_MIN_FILLS
    where = "kind = 'perp-fill'" + (" AND venue_account = :a" if venue_account is not None else "")
    n = conn.execute(text(f"SELECT COUNT(*) FROM (SELECT 1 FROM journal_entries WHERE {where} LIMIT :n) x"),
                     {"a": venue_account, "n": at_least}).scalar_one()
    return n >= at_least


def _start_cycle_child(conn: Connection, proof: PerpProof, until: datetime | None, methods: list[str]):
    """Fork a process that books ``methods`` over the account's fills (read through its own connection)
    and returns their cycle checks and the USDC roll-forward; None when not worth it or not possible
    (``ledger.forked``)."""
    from . import forked

    if not forked.forkable(conn) or not many_perp_fills(conn, proof.venue_account):
        return None
    return forked.start(conn, _cycle_child_main, proof, until, methods)


def _join_cycle_child(child) -> dict | None:
    from . import forked

    return forked.join(child)


def _cycles(method: str, fills: list[PerpFill]) -> list[Cycle]:
    engine = PerpEngine(method)
    feed = engine.feed
    rows = engine.realized
    for f in fills:
        feed(f)
        if len(rows) > 100_000:
            rows.clear()
    return engine.cycles


def perp_markets(conn: Connection) -> tuple[list[str], list[datetime]]:
    """The perpetual markets the ledger holds fills of, and the instants their open positions are valued
    at: the end of each calendar year from the first fill's to the last one's, and the last fill."""
    rows = conn.execute(text("SELECT MIN(timestamp), MAX(timestamp) FROM journal_entries WHERE kind = 'perp-fill'")).first()
    if rows is None or rows[0] is None:
        return [], []
    first, last = utc_from_db(rows[0]), utc_from_db(rows[1])
    markets = sorted({name.split(":", 4)[4] for (name,) in conn.execute(text("SELECT name FROM accounts WHERE name LIKE :p"), {"p": "Assets:Backpack:%:Perp:%"})})
    instants = [datetime(y + 1, 1, 1, tzinfo=_UTC) for y in range(first.year, last.year + 1)] + [last]
    return markets, instants


def unknown_derivatives(conn: Connection) -> dict[str, int]:
    """Fill records kept raw as ``unknown`` by market type (dated futures, IPERP, prediction, ...): counted,
    never dropped (``reconcile status`` shows them)."""
    out: dict[str, int] = defaultdict(int)
    for (payload,) in conn.execute(text("SELECT payload FROM raw_records WHERE endpoint = 'fills' AND status = 'unknown'")):
        try:
            sym = orjson.loads(payload).get("symbol") or "?"
        except orjson.JSONDecodeError:
            sym = "?"
        out[str(sym)] += 1
    return dict(sorted(out.items()))
