"""Price cache and valuation store functions (docs/pricing.md).

* The kline cache: :func:`store_bars` keeps bars and the span asked for (``price_fetches``), so a span
  is never asked for twice, whether or not the exchange had bars in it; :class:`CachedBars` is the
  read side the pure :class:`ledger.valuation.Valuer` uses.
* :func:`value_ledger` streams the entries that need a value, values them with the pure engine and
  writes ``postings.unit_price``/``price_currency``/``price_source`` in bulk (a temporary table and one
  ``UPDATE ... FROM``); :func:`unpriced_count` and :func:`unpriced_events` report what has no value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, select, text

from .bulk import bulk_insert
from .inputs import InputError
from .schema import Account, Asset, JournalEntry, Posting, PriceBar, PriceFetch, ValuationState
from .types import db_time, decimal_to_db_text, utc_from_db
from .valuation import (
    INTERVAL_SECONDS,
    UNPRICED,
    EntryIn,
    FxRates,
    PostingIn,
    UserPrices,
    ValuationSettings,
    Valued,
    Valuer,
    parse_fx_csv,
    parse_price_csv,
)

__all__ = [
    "Bar",
    "Span",
    "CachedBars",
    "store_bars",
    "fetched_spans",
    "load_price_file",
    "load_fx_file",
    "settings_from",
    "iter_entries",
    "ValuationReport",
    "value_ledger",
    "check_valuation_current",
    "UnpricedEvent",
    "unpriced_count",
    "unpriced_events",
    "valuation_fingerprint",
    "first_unvalued",
    "PriceAt",
    "prices_at",
]

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_BATCH = 20_000
_WRITE_BATCH = 100_000


def _ts(s: int) -> datetime:
    return datetime.fromtimestamp(s, _UTC)


def _secs(t: datetime) -> int:
    return int((t - _EPOCH).total_seconds())


# -- the kline cache ---------------------------------------------------------------------------------
class Bar(NamedTuple):
    start_s: int
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None


class Span(NamedTuple):
    start_s: int
    end_s: int  # exclusive
    status: str


def store_bars(conn: Connection, *, symbol: str, interval: str, span: tuple[int, int], bars: Sequence[Bar],
               status: str = "ok", fetched_at: datetime) -> int:
    """Keep ``bars`` (held bars are left as they are) and record ``span`` as asked for. Returns bars added."""
    held = {
        _secs(t)
        for t in conn.execute(
            select(PriceBar.c.start).where(PriceBar.c.symbol == symbol, PriceBar.c.interval == interval,
                                         PriceBar.c.start >= _ts(span[0]), PriceBar.c.start < _ts(span[1]))
        ).scalars()
    }
    new = {b.start_s: b for b in bars if b.start_s not in held}
    rows = [
        (symbol, interval, db_time(conn, _ts(b.start_s)), *(_dec(conn, v) for v in (b.open, b.high, b.low, b.close)),
         db_time(conn, fetched_at))
        for b in sorted(new.values())
    ]
    bulk_insert(conn, "price_bars", ("symbol", "interval", "start", "open", "high", "low", "close", "fetched_at"), rows)
    conn.execute(PriceFetch.insert(), [{
        "symbol": symbol, "interval": interval, "start": _ts(span[0]), "end": _ts(span[1]), "status": status,
        "bars": len(bars), "fetched_at": fetched_at,
    }])
    return len(rows)


def _dec(conn: Connection, v: Decimal | None):
    if v is None or conn.dialect.name == "postgresql":
        return v
    return decimal_to_db_text(v)


def fetched_spans(conn: Connection, symbol: str, interval: str) -> list[Span]:
    """The spans of ``symbol``/``interval`` already asked for, sorted by start."""
    rows = conn.execute(
        select(PriceFetch.c.start, PriceFetch.c.end, PriceFetch.c.status)
        .where(PriceFetch.c.symbol == symbol, PriceFetch.c.interval == interval).order_by(PriceFetch.c.start)
    )
    return [Span(_secs(s), _secs(e), st) for s, e, st in rows]


def _covering(spans: Sequence[Span], s: int) -> Span | None:
    for sp in spans:  # few spans per symbol; a linear scan is enough
        if sp.start_s <= s < sp.end_s:
            return sp
    return None


class CachedBars:
    """The :class:`ledger.valuation.Bars` of the database: loads one symbol's bars on first use."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._closes: dict[str, dict[tuple[str, int], Decimal]] = {}
        self._spans: dict[tuple[str, str], list[Span]] = {}

    def _load(self, symbol: str) -> dict[tuple[str, int], Decimal]:
        got = self._closes.get(symbol)
        if got is None:
            got = {
                (iv, _secs(start)): close
                for iv, start, close in self.conn.execute(
                    select(PriceBar.c.interval, PriceBar.c.start, PriceBar.c.close)
                    .where(PriceBar.c.symbol == symbol, PriceBar.c.close.is_not(None))
                )
            }
            self._closes[symbol] = got
        return got

    def spans(self, symbol: str, interval: str) -> list[Span]:
        key = (symbol, interval)
        if key not in self._spans:
            self._spans[key] = fetched_spans(self.conn, symbol, interval)
        return self._spans[key]

    def close(self, symbol: str, interval: str, start_s: int) -> Decimal | None:
        return self._load(symbol).get((interval, start_s))

    def why_missing(self, symbol: str, t: datetime, intervals: Sequence[str]) -> str:
        when = t.astimezone(_UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        asked = []
        for iv in intervals:
            s = _secs(t) - _secs(t) % INTERVAL_SECONDS[iv]
            sp = _covering(self.spans(symbol, iv), s)
            if sp is not None and sp.status == "no-market":
                return f"the exchange lists no {symbol} market (asked at {when})"
            if sp is not None:
                asked.append(iv)
        if asked:
            return f"the exchange has no {symbol} bar containing {when} ({'/'.join(intervals)})"
        return f"no cached {symbol} bar containing {when}: run `reconcile prices`"


# -- user files -------------------------------------------------------------------------------------
def _read(path: str | Path) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: file does not exist") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def load_price_file(path: str | Path) -> UserPrices:
    """The user's price overrides (``time,asset,price,currency,source``). Raises InputError."""
    return parse_price_csv(_read(path), str(path))


def load_fx_file(path: str | Path) -> FxRates:
    """The user's FX rates (``date,currency,rate``: units of currency per 1 USD). Raises InputError."""
    return parse_fx_csv(_read(path), str(path))


def settings_from(reporting: Any) -> ValuationSettings:
    """A :class:`ValuationSettings` from anything with ``currency`` and ``stablecoin_policy`` (e.g. the config)."""
    if isinstance(reporting, ValuationSettings):
        return reporting
    return ValuationSettings(
        currency=getattr(reporting, "currency", "USD"),
        stablecoin_policy=getattr(reporting, "stablecoin_policy", "par"),
        finest=getattr(reporting, "price_resolution", None) or "1m",
    )


# -- streaming entries --------------------------------------------------------------------------------
def _holding_account_ids(conn: Connection) -> list[int]:
    from .valuation import is_holding_account

    return [i for i, name in conn.execute(select(Account.c.id, Account.c.name)) if is_holding_account(name)]


def iter_entries(conn: Connection, *, only_unvalued_for: str | None = None, start: datetime | None = None,
                 end: datetime | None = None) -> Iterator[EntryIn]:
    """Entries with at least one holding posting, in id order, with all their postings.

    ``only_unvalued_for``: only entries with a holding posting not yet valued in that currency
    (no price, an unpriced mark, or another currency). ``start``/``end``: entry time in [start, end).
    Reads in chunks of entries, each fully fetched: the caller may write between two entries.
    """
    holding = _holding_account_ids(conn)
    if not holding:
        return
    accounts = dict(conn.execute(select(Account.c.id, Account.c.name)).all())
    assets = dict(conn.execute(select(Asset.c.id, Asset.c.symbol)).all())
    wanted = select(Posting.c.entry_id).where(Posting.c.account_id.in_(holding)).distinct()
    if only_unvalued_for is not None:
        wanted = wanted.where(
            (Posting.c.price_source.is_(None)) | (Posting.c.unit_price.is_(None))
            | (Posting.c.price_currency != only_unvalued_for)
        )
    if start is not None or end is not None:
        wanted = wanted.join(JournalEntry, JournalEntry.c.id == Posting.c.entry_id)
        if start is not None:
            wanted = wanted.where(JournalEntry.c.timestamp >= start)
        if end is not None:
            wanted = wanted.where(JournalEntry.c.timestamp < end)
    ids = sorted(conn.execute(wanted).scalars())
    for i in range(0, len(ids), _BATCH):
        chunk = ids[i:i + _BATCH]
        keep = set(chunk)
        lo, hi = chunk[0], chunk[-1]
        heads = {
            eid: (key, ts, kind)
            for eid, key, ts, kind in conn.execute(
                select(JournalEntry.c.id, JournalEntry.c.entry_key, JournalEntry.c.timestamp, JournalEntry.c.kind)
                .where(JournalEntry.c.id.between(lo, hi))
            )
            if eid in keep
        }
        legs: dict[int, list[PostingIn]] = {}
        for eid, pid, acc, ast, qty in conn.execute(
            select(Posting.c.entry_id, Posting.c.id, Posting.c.account_id, Posting.c.asset_id, Posting.c.quantity)
            .where(Posting.c.entry_id.between(lo, hi)).order_by(Posting.c.entry_id, Posting.c.id)
        ):
            if eid in keep:
                legs.setdefault(eid, []).append(PostingIn(pid, accounts[acc], assets[ast], qty))
        for eid in chunk:
            key, ts, kind = heads[eid]
            yield EntryIn(eid, key, ts, kind, tuple(legs[eid]))


# -- valuation ----------------------------------------------------------------------------------------
@dataclass
class ValuationReport:
    """What one :func:`value_ledger` run did."""

    currency: str
    full: bool
    entries: int = 0
    priced: int = 0  # (entry, asset) values written
    unpriced: int = 0  # (entry, asset) pairs left without a value
    by_source: dict[str, int] = field(default_factory=dict)  # first word of the source -> count


def valuation_fingerprint(settings: Any, price_file: str | None = None, fx_file: str | None = None) -> str:
    """The digest a valuation with these settings and user files keeps in ``valuation_state``."""
    return _fingerprint(settings_from(settings), price_file or getattr(settings, "price_file", None),
                        fx_file or getattr(settings, "fx_file", None))


def _fingerprint(settings: ValuationSettings, price_file: str | None, fx_file: str | None) -> str:
    h = hashlib.sha256(f"{settings.currency}|{settings.stablecoin_policy}|{settings.finest}".encode())
    for path in (price_file, fx_file):
        h.update(b"|")
        if path:
            h.update(Path(path).read_bytes() if Path(path).exists() else b"?")
    return h.hexdigest()


def _write(conn: Connection, values: list[Valued], asset_ids: dict[str, int]) -> None:
    """One bulk write: a temporary table of (entry, asset) values and one UPDATE ... FROM."""
    if not values:
        return
    pg = conn.dialect.name == "postgresql"
    num = "NUMERIC" if pg else "TEXT"
    conn.exec_driver_sql("DROP TABLE IF EXISTS tmp_valuation")
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE tmp_valuation (entry_id BIGINT NOT NULL, asset_id INTEGER NOT NULL, "
        f"unit_price {num}, price_currency VARCHAR(16), price_source VARCHAR(255))"
    )
    rows = [
        (v.entry_id, asset_ids[v.asset],
         None if v.unit_price is None else (v.unit_price if pg else decimal_to_db_text(v.unit_price)),
         v.currency if v.unit_price is not None else None, v.source)
        for v in values
    ]
    bulk_insert(conn, "tmp_valuation", ("entry_id", "asset_id", "unit_price", "price_currency", "price_source"), rows)
    conn.exec_driver_sql("CREATE INDEX ix_tmp_valuation ON tmp_valuation (entry_id, asset_id)")
    conn.exec_driver_sql(
        "UPDATE postings SET unit_price = t.unit_price, price_currency = t.price_currency, price_source = t.price_source "
        "FROM tmp_valuation t WHERE postings.entry_id = t.entry_id AND postings.asset_id = t.asset_id"
    )
    conn.exec_driver_sql("DROP TABLE tmp_valuation")


def value_ledger(engine: Engine, settings: Any, *, full: bool = False, price_file: str | None = None,
                 fx_file: str | None = None) -> ValuationReport:
    """Give every holding posting a reporting-currency unit price and its source (or an unpriced reason).

    ``settings``: a :class:`ValuationSettings` or the config's ``[reporting]`` (``currency``,
    ``stablecoin_policy``, ``price_file``, ``fx_file``); ``price_file``/``fx_file`` arguments win over
    the settings' attributes. Idempotent; re-runnable after new syncs: only entries not yet valued in
    the currency (or unpriced before) are valued again, unless ``full`` or the settings or the user
    files changed since the last run, which revalues everything. One transaction. Raises InputError for
    a bad user file and :class:`ledger.valuation.FxGap` (nothing written) when an FX rate is missing.
    """
    vs = settings_from(settings)
    price_file = price_file or getattr(settings, "price_file", None)
    fx_file = fx_file or getattr(settings, "fx_file", None)
    user = load_price_file(price_file) if price_file else None
    fx = load_fx_file(fx_file) if fx_file else None
    fingerprint = _fingerprint(vs, price_file, fx_file)
    now = datetime.now(_UTC)
    with engine.begin() as conn:
        state = conn.execute(select(ValuationState.c.fingerprint).where(ValuationState.c.id == 1)).scalar_one_or_none()
        full = full or state != fingerprint
        report = ValuationReport(currency=vs.currency, full=full)
        valuer = Valuer(vs, CachedBars(conn), user_prices=user, fx=fx)
        asset_ids = {s: i for i, s in conn.execute(select(Asset.c.id, Asset.c.symbol))}
        if user is not None:
            _check_user_assets(user, asset_ids)
        pending: list[Valued] = []
        # iter_entries holds no open cursor between chunks, so values are written as they come.
        for e in iter_entries(conn, only_unvalued_for=None if full else vs.currency):
            report.entries += 1
            for v in valuer.value_entry(e):
                pending.append(v)
                if v.unit_price is None:
                    report.unpriced += 1
                else:
                    report.priced += 1
                    word = v.source.split(" ", 1)[0]
                    report.by_source[word] = report.by_source.get(word, 0) + 1
            if len(pending) >= _WRITE_BATCH:
                _write(conn, pending, asset_ids)
                pending = []
        gap = valuer.fx_gap_error()
        if gap is not None:
            raise gap  # the transaction rolls back: nothing is written
        _write(conn, pending, asset_ids)
        used = {"fingerprint": fingerprint, "valued_at": now, "currency": vs.currency, "stablecoin_policy": vs.stablecoin_policy}
        if state is None:
            conn.execute(ValuationState.insert(), [{"id": 1, **used}])
        else:
            conn.execute(ValuationState.update().where(ValuationState.c.id == 1).values(**used))
    return report


def _check_user_assets(user: UserPrices, known: Any) -> None:
    """A price row for an asset the ledger has never seen is a typo or a wrong file: refused, naming
    the file, line and asset (its rows would never be used, silently)."""
    unknown = sorted((rows[0].line, asset) for asset, rows in user.rows.items() if asset not in known)
    if unknown:
        line, asset = unknown[0]
        more = f" (and {len(unknown) - 1} other asset(s))" if len(unknown) > 1 else ""
        raise InputError(f"{user.name}:{line}: asset {asset!r} is not in the ledger{more}; check the symbol, or sync first")


def check_valuation_current(conn: Connection, settings: Any) -> None:
    """Refuse a valuation input that cannot be used (InputError, exit 2): the configured price and FX
    files are read and checked (a corrupt file is named with its line, whatever the command), and a
    price row for an asset the ledger has never seen is refused. Commands that read the ledger's
    values call this first, with or without ``--allow-incomplete``: there is nothing sound to write.

    Whether the values are *current* (the files, currency or stablecoin policy changed since
    ``reconcile prices``, or a file was never applied) is not asked here: that is a stale valuation,
    ``ledger.completeness.stale_valuation``, refused by the completeness gate with exit 4 unless
    ``--allow-incomplete`` (one cause, one code; docs/reports.md)."""
    price_file = getattr(settings, "price_file", None)
    fx_file = getattr(settings, "fx_file", None)
    user = load_price_file(price_file) if price_file else None
    if fx_file:
        load_fx_file(fx_file)
    if user is not None:
        _check_user_assets(user, {s for (s,) in conn.execute(select(Asset.c.symbol))})


def first_unvalued(conn: Connection, currency: str) -> datetime | None:
    """The time of the oldest entry with a holding posting not yet valued in ``currency`` (None: every
    holding posting has a value or an unpriced mark in it): where a sync's valuation starts fetching."""
    holding = _holding_account_ids(conn)
    if not holding:
        return None
    q = (select(JournalEntry.c.timestamp).join(Posting, Posting.c.entry_id == JournalEntry.c.id)
         .where(Posting.c.account_id.in_(holding),
                (Posting.c.price_source.is_(None)) | (Posting.c.unit_price.is_(None)) | (Posting.c.price_currency != currency))
         .order_by(JournalEntry.c.timestamp).limit(1))
    return conn.execute(q).scalar()


class PriceAt(NamedTuple):
    asset: str
    unit_price: Decimal | None
    source: str  # where it came from, or why there is none


def prices_at(conn: Connection, reporting: Any, assets: Sequence[str], t: datetime) -> dict[str, PriceAt]:
    """A reporting-currency unit price of each asset at instant ``t`` (holdings at a period end).

    The valuation's own rules first (a cached kline containing ``t``, the stablecoin policy, the user's
    price file, FX), as for an event at ``t``; failing that, the last value the ledger gave the asset at
    or before ``t`` (stated with its time); failing that, none, with the reason."""
    vs = settings_from(reporting)
    price_file = getattr(reporting, "price_file", None)
    fx_file = getattr(reporting, "fx_file", None)
    valuer = Valuer(vs, CachedBars(conn), user_prices=load_price_file(price_file) if price_file else None,
                    fx=load_fx_file(fx_file) if fx_file else None)
    out: dict[str, PriceAt] = {}
    for asset in assets:
        e = EntryIn(0, "period-end", t, "valuation", (PostingIn(0, f"Assets:Backpack:x:Spot:{asset}", asset, Decimal(1)),))
        got = valuer.value_entry(e)
        v = got[0] if got else None
        if v is not None and v.unit_price is not None:
            out[asset] = PriceAt(asset, v.unit_price, v.source)
            continue
        q = (select(Posting.c.unit_price, JournalEntry.c.timestamp).join(JournalEntry, JournalEntry.c.id == Posting.c.entry_id)
             .join(Asset, Asset.c.id == Posting.c.asset_id)
             .where(Asset.c.symbol == asset, Posting.c.unit_price.is_not(None), Posting.c.price_currency == vs.currency, JournalEntry.c.timestamp <= t)
             .order_by(JournalEntry.c.timestamp.desc()).limit(1))
        row = conn.execute(q).first()
        if row is not None:
            when = utc_from_db(row[1])
            out[asset] = PriceAt(asset, row[0], f"last ledger value at {when.isoformat(timespec='seconds')}")
        else:
            out[asset] = PriceAt(asset, None, v.source[len(UNPRICED):] if v is not None and v.source.startswith(UNPRICED) else "no price")
    return out


# -- what has no value --------------------------------------------------------------------------------
class UnpricedEvent(NamedTuple):
    entry_key: str
    time: datetime
    kind: str
    asset: str
    quantity: Decimal
    reason: str


def _unpriced_query(conn: Connection):
    holding = _holding_account_ids(conn)
    return (
        select(JournalEntry.c.entry_key, JournalEntry.c.timestamp, JournalEntry.c.kind, Asset.c.symbol, Posting.c.quantity,
               Posting.c.price_source, Posting.c.entry_id)
        .join(JournalEntry, JournalEntry.c.id == Posting.c.entry_id)
        .join(Asset, Asset.c.id == Posting.c.asset_id)
        .where(Posting.c.account_id.in_(holding), Posting.c.unit_price.is_(None))
    )


def unpriced_count(conn: Connection, *, start: datetime | None = None, end: datetime | None = None,
                   venue_account: str | None = None) -> int:
    """Entries with a holding posting that has no value (unpriced by valuation, or not valued yet),
    optionally only those dated in [start, end) and of one venue account.

    The one unpriced figure: ``reconcile status``, the exports and the statement all show this count
    (``ledger.completeness`` calls it for a period)."""
    holding = _holding_account_ids(conn)
    if not holding:
        return 0
    q = select(Posting.c.entry_id).where(Posting.c.account_id.in_(holding), Posting.c.unit_price.is_(None))
    if start is not None or end is not None or venue_account is not None:
        q = q.join(JournalEntry, JournalEntry.c.id == Posting.c.entry_id)
        if start is not None:
            q = q.where(JournalEntry.c.timestamp >= start)
        if end is not None:
            q = q.where(JournalEntry.c.timestamp < end)
        if venue_account is not None:
            q = q.where(JournalEntry.c.venue_account == venue_account)
    q = q.distinct()
    return conn.execute(select(text("count(*)")).select_from(q.subquery())).scalar_one()


def unpriced_events(conn: Connection, *, limit: int | None = None, start: datetime | None = None, end: datetime | None = None,
                    venue_account: str | None = None) -> list[UnpricedEvent]:
    """The holding postings without a value, with the reason, oldest first (one per entry and asset),
    optionally only those dated in [start, end) and of one venue account."""
    if not _holding_account_ids(conn):
        return []
    q = _unpriced_query(conn)
    if start is not None:
        q = q.where(JournalEntry.c.timestamp >= start)
    if end is not None:
        q = q.where(JournalEntry.c.timestamp < end)
    if venue_account is not None:
        q = q.where(JournalEntry.c.venue_account == venue_account)
    q = q.order_by(JournalEntry.c.timestamp, Posting.c.entry_id, Posting.c.id)
    out: list[UnpricedEvent] = []
    seen: set[tuple[int, str]] = set()
    for key, ts, kind, asset, qty, source, eid in conn.execute(q):
        if (eid, asset) in seen:
            continue
        seen.add((eid, asset))
        reason = source[len(UNPRICED):] if source and source.startswith(UNPRICED) else "not valued yet: run valuation (`reconcile prices`)"
        out.append(UnpricedEvent(key, ts, kind, asset, qty, reason))
        if limit is not None and len(out) >= limit:
            break
    return out
