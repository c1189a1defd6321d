"""The accountant's report for one period: every figure gathered once, for the workbook and the statement.

``build_report`` books the ledger once (``ledger.report_books.book_period``: one read of the ledger
feeding the configured method's engine, which keeps the period's gains and the lots at both ends, and
one engine per compared method, which keeps only totals), takes the perpetuals from
``ledger.perps.perp_books``, asks
``ledger.completeness`` what is incomplete, reconciles each venue account at the period end
(``ledger.reconcile.check(at=...)``) and reads the period's income, fees and prices used. It computes
no accounting of its own: the writers (``reports.workbook``, ``reports.statement``) only lay out what
it holds. The journal is not held: ``Report.journal()`` streams it again for each writer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from ledger.money import D, EXACT
from ledger.types import utc_from_db

__all__ = ["Report", "Holding", "FeeRow", "IncomeEntry", "PriceUsed", "MethodRow", "build_report", "COMPARED_METHODS", "period_of"]

#: The methods compared side by side (and uk where the jurisdiction is uk).
COMPARED_METHODS = ("fifo", "lifo", "hifo", "lofo", "average")
_US = timedelta(microseconds=1)
_ZERO = Decimal(0)


#: The rows of each detail table the statement shows (and a report keeps in memory; the rest on disk).
HTML_ROW_LIMIT = 2000


def period_of(settings, year: int | None, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime, str]:
    """[start, end) and a label: the tax year's bounds, narrowed by ``--from``/``--to`` if given."""
    if year is not None:
        ys, ye = settings.year_bounds(year)
        label = f"{year}/{(year + 1) % 100:02d}" if settings.booking.jurisdiction == "uk" else str(year)
    else:
        ys, ye, label = start, end, ""
    s = start if start is not None else ys
    e = end if end is not None else ye
    if s is None or e is None:
        raise ValueError("a period needs --year or both --from and --to")
    if not s < e:
        raise ValueError(f"the period is empty: {s.isoformat()} is not before {e.isoformat()}")
    if start is not None or end is not None or not label:
        label = f"{s.date().isoformat()} to {(e - _US).date().isoformat()}" + (f" (tax year {label})" if label else "")
    return s, e, label


class IncomeEntry(NamedTuple):
    time: datetime
    venue_account: str
    category: str
    asset: str
    quantity: Decimal
    unit_price: Decimal | None
    value: Decimal | None
    entry_key: str
    raw_record_id: int | None


class FeeRow(NamedTuple):  # a named tuple: pickled to a RowStore and back at C speed
    time: datetime
    venue_account: str
    kind: str  # Trading | Withdrawal | ...
    asset: str
    quantity: Decimal
    unit_price: Decimal | None
    value: Decimal | None
    entry_key: str
    raw_record_id: int | None


@dataclass(frozen=True, slots=True)
class Holding:
    account: str
    asset: str
    quantity: Decimal
    basis: Decimal
    unit_price: Decimal | None
    price_source: str

    @property
    def value(self) -> Decimal | None:
        return None if self.unit_price is None else EXACT.multiply(self.quantity, self.unit_price)

    @property
    def unrealized(self) -> Decimal | None:
        v = self.value
        return None if v is None else v - self.basis


@dataclass(frozen=True, slots=True)
class PriceUsed:
    asset: str
    source: str  # the source's kind (trade, kline, stablecoin, user, ...)
    currency: str
    postings: int
    low: Decimal
    high: Decimal
    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class MethodRow:
    method: str
    short: Decimal
    long: Decimal
    other: Decimal  # uk matching rules, if any
    proceeds: Decimal
    basis: Decimal
    rows: int
    note: str = ""

    @property
    def total(self) -> Decimal:
        return self.short + self.long + self.other


@dataclass
class GainFigures:
    """The gains' totals: [quantity, proceeds, basis, gain] by (asset, term), and from those overall and by
    term (terms in the order first seen); [proceeds, basis, gain] by account; gain by month (UTC) and
    term; the most decimal places of each asset's quantities (the workbook's number formats)."""

    by_asset: dict
    by_account: dict
    monthly: dict
    places: dict

    @classmethod
    def of(cls, gains, months: list[str]) -> GainFigures:
        f = cls.empty(months)
        f.add(gains)
        return f

    @classmethod
    def empty(cls, months: list[str]) -> GainFigures:
        return cls({}, {}, {m: {} for m in months}, {})

    @property
    def total(self) -> list:
        return [sum((line[i] for line in self.by_asset.values()), _ZERO) for i in range(4)]

    @property
    def by_term(self) -> dict:
        out: dict = {}
        for (_asset, term), line in self.by_asset.items():
            t = out.get(term)
            out[term] = list(line) if t is None else [a + b for a, b in zip(t, line)]
        return out

    def add(self, gains) -> None:
        """Add gains (any iterable, e.g. a booking's batch as it comes)."""
        by_asset, by_account, monthly, places = self.by_asset, self.by_account, self.monthly, self.places
        month_of: dict[datetime, str] = {}
        for g in gains:
            q, pr, ba, ga, term = g.quantity, g.proceeds, g.cost_basis, g.gain, g.term
            line = by_asset.get((g.asset, term)) or by_asset.setdefault((g.asset, term), [_ZERO] * 4)
            line[0] += q
            line[1] += pr
            line[2] += ba
            line[3] += ga
            a = by_account.get(g.account) or by_account.setdefault(g.account, [_ZERO] * 3)
            a[0] += pr
            a[1] += ba
            a[2] += ga
            m = month_of.get(g.disposed)
            if m is None:
                m = month_of[g.disposed] = g.disposed.astimezone(timezone.utc).strftime("%Y-%m")
            by = monthly.get(m)
            if by is not None:
                by[term] = by.get(term, _ZERO) + ga
            exp = q.as_tuple().exponent
            if isinstance(exp, int) and -exp > places.get(g.asset, 0):
                places[g.asset] = min(-exp, 12)
            if len(month_of) > 100_000:
                month_of.clear()


@dataclass
class Report:
    label: str
    start: datetime
    end: datetime  # exclusive
    account: str | None
    currency: str
    method: str
    scope: str
    jurisdiction: str
    generated_at: datetime
    completeness: Any  # ledger.completeness.Completeness
    allow_incomplete: bool = False
    gains: list = field(default_factory=list)
    engine_income: list = field(default_factory=list)  # IncomeRow of the period (income in kind: lots created)
    income: list[IncomeEntry] = field(default_factory=list)
    fees: list[FeeRow] = field(default_factory=list)
    holdings: list[Holding] = field(default_factory=list)
    open_lots: list = field(default_factory=list)
    checks: list = field(default_factory=list)  # ledger.reconcile.CheckOutcome at the period end
    rollforward: Any = None
    prices_used: list[PriceUsed] = field(default_factory=list)
    findings: list = field(default_factory=list)  # every finding feeding the period (findings_until(end))
    methods: list[MethodRow] = field(default_factory=list)
    allocations: list = field(default_factory=list)  # SafeHarborAllocation
    perps: Any = None  # ledger.perps.PerpBooks of the period (None: not gathered)
    value_series: list[tuple[date, Decimal, int]] = field(default_factory=list)  # month end, value, assets without price
    #: reports.jurisdictions.Column per jurisdiction of ``report --jurisdictions`` (the statement's comparison section).
    jurisdictions: list = field(default_factory=list)
    _journal: Any = None
    _figures: Any = None
    _fee_total: Any = None
    _fee_days: Any = None
    #: The open connection the report was read from: the statement's drill-down reads entries and raw records.
    conn: Any = None

    # -- figures ------------------------------------------------------------------------------------
    def gain_figures(self) -> GainFigures:
        """Every total the writers show of the gains, from one pass over them (they may be on disk:
        ``reports.rowstore.RowStore``); computed at the first use."""
        if self._figures is None:
            self._figures = GainFigures.of(self.gains, self._months())
        return self._figures

    def gain_total(self, what: str, term: str | None = None) -> Decimal:
        i = {"quantity": 0, "proceeds": 1, "basis": 2, "gain": 3}[what]
        f = self.gain_figures()
        if term is None:
            return f.total[i]
        line = f.by_term.get(term)
        return line[i] if line is not None else _ZERO

    @property
    def terms(self) -> list[str]:
        seen = list(self.gain_figures().by_term)
        ordered = [t for t in ("short", "long", "same-day", "bed-and-breakfast", "s104") if t in seen]
        return (ordered + [t for t in seen if t not in ordered]) or ["short", "long"]

    def income_by_category(self) -> list[tuple[str, Decimal, int, int]]:
        """(category, value, entries, unpriced entries), categories in a fixed order."""
        out: dict[str, list] = {}
        for r in self.income:
            line = out.setdefault(r.category, [_ZERO, 0, 0])
            line[1] += 1
            if r.value is None:
                line[2] += 1
            else:
                line[0] = EXACT.add(line[0], r.value)
        return [(c, v, n, u) for c, (v, n, u) in sorted(out.items())]

    def fee_total(self) -> Decimal:
        if self._fee_total is None:
            self._fee_total = sum((f.value for f in self.fees if f.value is not None), _ZERO)
        return self._fee_total

    @property
    def reconciled(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def _months(self) -> list[str]:
        return _months_of(self.start, self.end)

    def monthly_gains(self) -> list[tuple[str, dict[str, Decimal]]]:
        """(YYYY-MM, {term: gain}) for every month of the period, in order."""
        by = self.gain_figures().monthly
        return [(m, dict(by.get(m, {}))) for m in self._months()]

    def cumulative_flows(self) -> list[tuple[date, Decimal, Decimal, Decimal]]:
        """(day, cumulative income, cumulative funding, cumulative fees) at each day something changed."""
        events: list[tuple[datetime, str, Decimal]] = []
        for r in self.income:
            if r.value is not None:
                kind = "funding" if r.category == "perp funding" else ("fees" if "fees" in r.category else "income")
                events.append((r.time, kind, r.value))
        if self._fee_days is not None:  # the fees summed per day as they were read (they may be on disk)
            for day, v in self._fee_days.items():
                events.append((datetime(day.year, day.month, day.day, tzinfo=timezone.utc), "fees", -v))
        else:
            for f in self.fees:
                if f.value is not None:
                    events.append((f.time, "fees", -f.value))
        events.sort(key=lambda e: e[0])
        out: list[tuple[date, Decimal, Decimal, Decimal]] = []
        inc = fun = fee = _ZERO
        for t, kind, v in events:
            if kind == "income":
                inc += v
            elif kind == "funding":
                fun += v
            else:
                fee += v
            day = t.date()
            if out and out[-1][0] == day:
                out[-1] = (day, inc, fun, fee)
            else:
                out.append((day, inc, fun, fee))
        return out

    def journal_count(self) -> int:
        """The number of the period's postings (what ``journal()`` yields)."""
        params: dict = {"s": _p(self.conn, self.start), "e": _p(self.conn, self.end)}
        where = "e.timestamp >= :s AND e.timestamp < :e"
        if self.account is not None:
            where += " AND e.venue_account = :a"
            params["a"] = self.account
        return self.conn.execute(text(f"SELECT COUNT(*) FROM postings p JOIN journal_entries e ON e.id = p.entry_id WHERE {where}"), params).scalar_one()

    def journal(self) -> Iterator:
        """The period's postings (``reports.journal.JournalRow``), streamed from the database again."""
        return self._journal()


# -- reading ----------------------------------------------------------------------------------------
def _p(conn: Connection, t: datetime):
    from ledger.types import db_time

    return db_time(conn, t)


def _dec(v) -> Decimal | None:
    if v is None:
        return None
    if type(v) is str:  # SQLite's stored decimal text
        return Decimal(v)
    return v if isinstance(v, Decimal) else D(str(v))


def income_entries(conn: Connection, start: datetime, end: datetime, venue_account: str | None) -> list[IncomeEntry]:
    """The income and expense legs outside spot disposals (``reports.income.CATEGORIES``) of [start, end)."""
    from .income import CATEGORIES

    kinds = ", ".join(f"'{k}'" for k in CATEGORIES)
    params: dict = {"s": _p(conn, start), "e": _p(conn, end)}
    where = (f"e.kind IN ({kinds}) AND (ac.name LIKE 'Assets:Backpack:%' OR ac.name LIKE 'Liabilities:Backpack:%')"
             " AND e.timestamp >= :s AND e.timestamp < :e")
    if venue_account:
        where += " AND e.venue_account = :acct"
        params["acct"] = venue_account
    rows = conn.execute(text(
        "SELECT e.timestamp, e.venue_account, e.kind, a.symbol, p.quantity, p.unit_price, e.entry_key, e.raw_record_id FROM journal_entries e"
        " JOIN postings p ON p.entry_id = e.id JOIN accounts ac ON ac.id = p.account_id JOIN assets a ON a.id = p.asset_id"
        f" WHERE {where} ORDER BY e.timestamp, e.entry_key, p.id"), params)
    out = []
    for ts, acct, kind, asset, q, price, key, raw in rows:
        qd, pd = _dec(q), _dec(price)
        out.append(IncomeEntry(utc_from_db(ts), acct, CATEGORIES[kind], asset, qd, pd, None if pd is None else EXACT.multiply(qd, pd), key, raw))
    return out


def fee_rows(conn: Connection, start: datetime, end: datetime, venue_account: str | None, out=None) -> list[FeeRow]:
    """Postings to ``Expenses:Fees:*`` in [start, end), valued at the entry's own unit price of the asset."""
    from ledger.db import driver_rows
    from ledger.types import utc_from_db

    params: dict = {"s": _p(conn, start), "e": _p(conn, end)}
    where = "(ac.name LIKE 'Expenses:Fees:%') AND e.timestamp >= :s AND e.timestamp < :e"
    if venue_account:
        where += " AND e.venue_account = :acct"
        params["acct"] = venue_account
    rows = driver_rows(conn,
        "SELECT e.timestamp, e.venue_account, ac.name, a.symbol, p.quantity,"
        " (SELECT h.unit_price FROM postings h WHERE h.entry_id = p.entry_id AND h.asset_id = p.asset_id AND h.unit_price IS NOT NULL"
        "  ORDER BY h.id LIMIT 1), e.entry_key, e.raw_record_id"
        " FROM postings p JOIN journal_entries e ON e.id = p.entry_id JOIN accounts ac ON ac.id = p.account_id JOIN assets a ON a.id = p.asset_id"
        f" WHERE {where} ORDER BY e.timestamp, e.entry_key, p.id", params)
    out = [] if out is None else out  # a list, or any store with append (reports.rowstore.RowStore)
    append, mul, new, kinds = out.append, EXACT.multiply, tuple.__new__, {}
    for ts, acct, name, asset, q, price, key, raw in rows:
        qd, pd = _dec(q), _dec(price)
        kind = kinds.get(name) or kinds.setdefault(name, name.split(":")[-1])
        append(new(FeeRow, (utc_from_db(ts), acct, kind, asset, qd, pd, None if pd is None else mul(qd, pd), key, raw)))
    return out


def prices_used(conn: Connection, start: datetime, end: datetime, venue_account: str | None) -> list[PriceUsed]:
    """Per asset and kind of source: how many holding postings of the period it valued, the range."""
    first_word = ("substr(p.price_source, 1, instr(p.price_source || ' ', ' ') - 1)" if conn.dialect.name == "sqlite"
                  else "split_part(p.price_source, ' ', 1)")
    params: dict = {"s": _p(conn, start), "e": _p(conn, end)}
    where = ("p.unit_price IS NOT NULL AND e.timestamp >= :s AND e.timestamp < :e"
             " AND p.account_id IN (SELECT id FROM accounts WHERE name LIKE 'Assets:Backpack:%' OR name LIKE 'Liabilities:Backpack:%')")
    if venue_account:
        where += " AND e.venue_account = :acct"
        params["acct"] = venue_account
    # min/max of a decimal stored as text on SQLite would compare as text: the prices' range is taken in
    # Python, over the distinct prices (grouped in SQL with their count and first and last time; the
    # times compare as stored: ISO text in UTC on SQLite, timestamps on PostgreSQL).
    # The accounts and assets by id (no join per posting), the symbols looked up after.
    symbol = {i: sym for i, sym in conn.execute(text("SELECT id, symbol FROM assets"))}
    rows = conn.execute(text(
        f"SELECT p.asset_id, {first_word}, p.price_currency, p.unit_price, COUNT(*), MIN(e.timestamp), MAX(e.timestamp)"
        " FROM postings p JOIN journal_entries e ON e.id = p.entry_id"
        f" WHERE {where} GROUP BY 1, 2, 3, 4"), params)
    acc: dict[tuple[str, str, str], list] = {}
    for asset_id, src, cur, price, n, t0, t1 in rows:
        asset = symbol[asset_id]
        pd = _dec(price)
        k = (asset, src or "", cur or "")
        a = acc.get(k)
        if a is None:
            acc[k] = [n, pd, pd, t0, t1]
        else:
            a[0] += n
            if pd < a[1]:
                a[1] = pd
            if pd > a[2]:
                a[2] = pd
            if t0 < a[3]:
                a[3] = t0
            if t1 > a[4]:
                a[4] = t1
    return [PriceUsed(a, s, c, v[0], v[1], v[2], utc_from_db(v[3]), utc_from_db(v[4])) for (a, s, c), v in sorted(acc.items())]


def raw_records(conn: Connection, ids: list[int]) -> dict[int, tuple[str, str, str]]:
    """id -> (endpoint, natural key, payload) for the given raw records."""
    out: dict[int, tuple[str, str, str]] = {}
    for i in range(0, len(ids), 500):
        chunk = [int(x) for x in ids[i:i + 500]]
        if not chunk:
            continue
        for rid, ep, key, payload in conn.execute(text(f"SELECT id, endpoint, natural_key, payload FROM raw_records WHERE id IN ({', '.join(map(str, chunk))})")):
            out[rid] = (ep, key, payload)
    return out


def entries_by_key(conn: Connection, keys: list[str]) -> dict[str, dict]:
    """entry_key -> {time, kind, description, venue_account, raw_record_id, postings: [(account, asset, quantity, unit_price)]}."""
    out: dict[str, dict] = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        if not chunk:
            continue
        params = {f"k{j}": k for j, k in enumerate(chunk)}
        marks = ", ".join(f":k{j}" for j in range(len(chunk)))
        for key, ts, kind, desc, acct, raw, account, asset, q, price in conn.execute(text(
            "SELECT e.entry_key, e.timestamp, e.kind, e.description, e.venue_account, e.raw_record_id, ac.name, a.symbol, p.quantity, p.unit_price"
            " FROM journal_entries e JOIN postings p ON p.entry_id = e.id JOIN accounts ac ON ac.id = p.account_id JOIN assets a ON a.id = p.asset_id"
            f" WHERE e.entry_key IN ({marks}) ORDER BY e.entry_key, p.id"), params):
            e = out.setdefault(key, {"time": utc_from_db(ts), "kind": kind, "description": desc, "venue_account": acct, "raw_record_id": raw, "postings": []})
            e["postings"].append((account, asset, _dec(q), _dec(price)))
    return out


def _holdings(conn: Connection, reporting: Any, lots: list, at: datetime) -> list[Holding]:
    from ledger.prices import prices_at

    by: dict[tuple[str, str], list[Decimal]] = {}
    for lot in lots:
        a = by.setdefault((lot.account, lot.asset), [_ZERO, _ZERO])
        a[0] += lot.quantity
        a[1] += lot.cost
    prices = prices_at(conn, reporting, sorted({k[1] for k in by}), at)
    return [Holding(acct, asset, q, b, prices[asset].unit_price, prices[asset].source) for (acct, asset), (q, b) in sorted(by.items())]


class HoldingSums:
    """The lot-tracked holdings (spot, lent, borrowed; not perp positions) summed from the journal entries
    as they are read (``ledger.report_books.book_period``'s ``tap``): the quantity per asset before
    ``start`` and its change per (YYYY-MM UTC, asset) in [start, end)."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start, self.end = start, end
        self.before: dict[str, Decimal] = {}
        self.during: dict[tuple[str, str], Decimal] = {}

    def add(self, entries) -> None:
        from ledger.reader import FEE

        start, end, before, during = self.start, self.end, self.before, self.during
        ym = month = None
        for e in entries:
            t = e.time
            if t < start:
                into, key = before, None
            elif t < end:
                if (t.year, t.month) != ym:
                    ym = (t.year, t.month)
                    month = f"{t.year:04d}-{t.month:02d}"
                into, key = during, month
            else:
                continue
            for p in e.postings:
                if p.cls != FEE:
                    k = p.asset if key is None else (key, p.asset)
                    into[k] = into.get(k, _ZERO) + p.quantity


def _value_series(conn: Connection, reporting: Any, start: datetime, end: datetime, sums: HoldingSums, cash: frozenset[str]) -> list[tuple[date, Decimal, int]]:
    """The portfolio's value at each month end of the period (and the period end): the ledger's holding
    balances at that instant (``sums``, taken from the booking's read) times the unit price ``prices_at``
    gives (cash at its par value)."""
    from ledger.prices import prices_at

    points: list[datetime] = []
    d = date(start.year, start.month, 1)
    while True:
        nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        t = datetime(nxt.year, nxt.month, 1, tzinfo=timezone.utc)
        if t >= end:
            break
        points.append(t - _US)
        d = nxt
    points.append(end - _US)
    held = dict(sums.before)
    pending = sorted(sums.during.items())
    out = []
    for t in points:
        key = t.astimezone(timezone.utc).strftime("%Y-%m")
        while pending and pending[0][0][0] <= key:
            (_m, asset), q = pending.pop(0)
            held[asset] = held.get(asset, _ZERO) + q
        live = {a: q for a, q in held.items() if q != 0}
        prices = prices_at(conn, reporting, sorted(a for a in live if a not in cash), t)
        total, missing = _ZERO, 0
        for asset, q in live.items():
            if asset in cash:
                total += q
                continue
            p = prices[asset].unit_price
            if p is None:
                missing += 1
            else:
                total += EXACT.multiply(q, p)
        out.append((t.date(), total, missing))
    return out


def _months_of(start: datetime, end: datetime) -> list[str]:
    months: list[str] = []
    d = date(start.year, start.month, 1)
    last = (end - _US).date()
    while d <= last:
        months.append(f"{d.year:04d}-{d.month:02d}")
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return months


class _Tee:
    """A gains sink: each batch to the store and to the figures, so the totals need no pass over the store."""

    def __init__(self, store, add) -> None:
        self.store, self._add = store, add

    def extend(self, batch) -> None:
        self.store.extend(batch)
        self._add(batch)


class _FeeSink:
    """The fee rows to the store, their total and their sum per UTC day taken on the way."""

    def __init__(self, store) -> None:
        self.store = store
        self.days: dict[date, Decimal] = {}

    @property
    def total(self) -> Decimal:
        return sum(self.days.values(), _ZERO)

    def append(self, f: FeeRow) -> None:
        self.store.append(f)
        if f.value is not None:
            day = f.time.date()
            self.days[day] = self.days.get(day, _ZERO) + f.value


def build_report(conn: Connection, reporting: Any, settings, *, start: datetime, end: datetime, label: str, account: str | None = None,
                 accounts: list[str] | None = None, compare: bool = True, series: bool = True, allow_incomplete: bool = False,
                 now: datetime | None = None, gate=None, detail_rows: bool = True) -> Report:
    """Everything the workbook and the statement show for [start, end) (one venue account or all).

    ``reporting``: the config's ``[reporting]`` (valuation settings, files); ``settings``: the resolved
    ``BookSettings`` (method, scope, jurisdiction). ``accounts``: the venue accounts to reconcile
    (default: those with a snapshot). ``compare``: book the period once per method for the comparison.
    ``gate(completeness)``: called as soon as completeness is known, before the rest is gathered (the
    CLI's gate exits there when the period is incomplete and that is not allowed). ``detail_rows=False``:
    of the gains, fees and perpetual closes only the first ``HTML_ROW_LIMIT`` are kept (and all counted):
    what the statement shows; the workbook needs them all."""
    from ledger.books import resolve_settings
    from ledger.booking import SettingsError
    from ledger.completeness import assess
    from ledger import forked
    from ledger.db import balances
    from ledger.perps import many_perp_fills, start_perp_proof, stream_perps
    from ledger.reconcile import check, rollforward_of, venue_accounts
    from ledger.report_books import CHILD_MIN_ENTRIES, book_period, start_comparison

    from .journal import journal_rows

    last = end - _US
    # What needs no booking is asked first: an incomplete period that is not allowed stops before the booking.
    first = assess(conn, reporting, start=start, end=end, venue_account=account)
    if gate is not None and not first.complete and not allow_incomplete:
        gate(first)
    method = settings.booking.method
    compared: list[tuple[str, Any]] = []
    unavailable: dict[str, str] = {}
    methods = (list(COMPARED_METHODS) + (["uk"] if settings.booking.jurisdiction == "uk" else [])) if compare else []
    for m in methods:
        if m == method:
            continue
        try:
            compared.append((m, resolve_settings(reporting, method=m, jurisdiction=settings.booking.jurisdiction, scope=settings.booking.scope)))
        except SettingsError as exc:
            unavailable[m] = f"not available: {exc}"
    # One read of the ledger: the configured method's books (the period's gains, the lots at both ends) and
    # every compared method's totals (ledger.report_books; no gain list held for them).
    from ledger.booking import Gain
    from ledger.booking.perps import Realized

    from .rowstore import RowStore, TupleCodec

    # The work is shared between this process and forked ones (the machine's second core), each forked
    # while this one is small (a forked process's resident memory starts as its parent's); each result
    # is taken last, and whatever a forked process did not deliver is done here after all:
    # - the compared methods, in the comparison's process, then the period-end check's balance scan there;
    # - the perpetuals (their closes go to disk like the gains, into the store's shared file), in a process
    #   of their own on a ledger with many perp fills;
    # - the period-end check's perpetuals proof (``start_perp_proof``: forked on a large account).
    # This process books the configured method and the first compared one and gathers the rest.
    names = accounts if accounts is not None else venue_accounts(conn)
    if account is not None:
        names = [n for n in names if n == account] or [account]
    closes = RowStore(HTML_ROW_LIMIT, TupleCodec(Realized), spill=detail_rows).share()

    def book_perps(c: Connection):
        books = stream_perps(c, settings, start=start, end=end, venue_account=account, sink=closes.extend, cycles=False)
        return books, closes.hand_over()

    perps_child = forked.call(conn, book_perps) if many_perp_fills(conn, account, CHILD_MIN_ENTRIES) else None
    child = start_comparison(conn, settings, start=start, end=end, venue_account=account, compare=compared, then=balances if names else None, here=1)
    proofs = {n: start_perp_proof(conn, n, at=last) for n in names}
    try:
        figures = GainFigures.empty(_months_of(start, end))
        held = HoldingSums(start, end)
        pb = book_period(conn, settings, start=start, end=end, venue_account=account, compare=compared,
                         gains=_Tee(RowStore(HTML_ROW_LIMIT, TupleCodec(Gain), spill=detail_rows), figures.add), child=child, tap=held.add,
                         join=False)  # the forked process's results are taken last: this one gathers the rest meanwhile
        books = pb.books
        feeding = books.findings_until(end)
        rep = Report(label=label, start=start, end=end, account=account, currency=settings.currency, method=method,
                     scope=settings.booking.scope, jurisdiction=settings.booking.jurisdiction, generated_at=now or datetime.now(timezone.utc),
                     completeness=first.with_findings(feeding), allow_incomplete=allow_incomplete)
        rep.findings = feeding
        if gate is not None and not rep.completeness.complete and not allow_incomplete:
            gate(rep.completeness)  # stops here: an incomplete period is not gathered further
        rep.gains = books.gains.store
        rep._figures = figures
        rep.engine_income = [i for i in books.income if start <= i.time < end]
        rep.open_lots = sorted(books.open_lots, key=lambda l: (l.account, l.asset, l.acquired, l.id))
        rep.allocations = list(books.allocations)
        rep.income = income_entries(conn, start, end, account)
        fees = _FeeSink(RowStore(HTML_ROW_LIMIT, TupleCodec(FeeRow), spill=detail_rows))
        fee_rows(conn, start, end, account, out=fees)
        rep.fees, rep._fee_total, rep._fee_days = fees.store, fees.total, fees.days
        rep.prices_used = prices_used(conn, start, end, account)
        rep.holdings = _holdings(conn, reporting, books.open_lots, last)
        if series:
            rep.value_series = _value_series(conn, reporting, start, end, held, settings.cash)
        rep.rollforward = rollforward_of(start - _US, last, pb.lots_at_start, books.open_lots, pb.methods[method or ""].basis, pb.new_lot_relief)
        pb.join()
        whole = pb.then if pb.then is not None or not names else balances(conn)  # one scan for every account checked
        rep.checks = [check(conn, n, at=last, keep=False, proving=proofs[n], whole=whole) for n in names]
        # Not reconciled at the period end is incomplete too: the one verdict, asked once it is whole.
        rep.completeness = rep.completeness.with_reconciliation(rep.checks)
        if gate is not None:
            gate(rep.completeness)
        got = forked.join(perps_child) if perps_child is not None else None
        if got is not None:  # booked by the perpetuals' process
            perps, state = got["result"]
            closes.take_over(state)
        else:  # not forked (few perp fills), or that process failed: a fresh store (its file may hold part of the rows)
            closes = RowStore(HTML_ROW_LIMIT, TupleCodec(Realized), spill=detail_rows)
            perps, _state = book_perps(conn)
        perps.realized = closes
        rep.perps = perps
        if compare:
            for m in methods:
                if m in unavailable:
                    rep.methods.append(MethodRow(m, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, 0, unavailable[m]))
                else:
                    t = pb.methods[m]
                    rep.methods.append(MethodRow(m, t.short, t.long, t.other, t.proceeds, t.basis, t.rows, "configured" if m == method else ""))
            if not any(r.method == method for r in rep.methods):
                t = pb.methods[method]
                rep.methods.insert(0, MethodRow(method, t.short, t.long, t.other, t.proceeds, t.basis, t.rows, "configured"))
        rep.conn = conn
        rep._journal = lambda: (r for r in journal_rows(conn, start=start, end=end) if account is None or r.venue_account == account)
        return rep
    except BaseException:  # the gate's exit or an error: stop the proofs not taken (a forked one would wait for a reader)
        for handle in proofs.values():
            handle.discard()
        if perps_child is not None:
            forked.stop(perps_child)
        raise


def raw_payload_text(payload: str) -> str:
    """A raw record's JSON, pretty-printed for the statement (as received if it does not parse)."""
    try:
        return json.dumps(json.loads(payload), indent=1, sort_keys=True)
    except ValueError:
        return payload
