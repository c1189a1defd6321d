"""The live view's tables (``reconcile watch``): provisional fills, gaps, positions, marks (docs/watch.md).

Nothing here posts a journal entry: the REST history stays the ledger's only source. A provisional fill
is keyed by the natural key its REST fill will carry, so :func:`confirm_live_fills` (run by every sync
after it stores fills) confirms and retires it, or reports it once two syncs covered its time without it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import Connection, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .types import decimal_to_db_text
from .schema import LiveFill, LiveGap, LiveMark, LivePosition, LiveStream, RawRecord

__all__ = ["rfq_fill_key", "KEY_ENDPOINTS", "FillIn", "GapIn", "PositionIn", "MarkIn", "LiveBatch", "ConfirmReport", "store_live", "confirm_live_fills",
           "set_stream_state", "fill_key", "MISSES_BEFORE_REPORT", "TIME_MARGIN", "FALLBACK_TOLERANCE"]

#: Syncs covering a provisional fill's time without its REST fill before it is reported ``unconfirmed``
#: (WEBSOCKET.md §15: "after two syncs past its T, flag it").
MISSES_BEFORE_REPORT = 2
#: A sync covers a fill when its snapshot time is at least this much after the fill's engine time.
TIME_MARGIN = timedelta(seconds=60)
#: The fallback match (no trade id) accepts a REST fill this close to the event's ``T``.
FALLBACK_TOLERANCE = timedelta(seconds=2)


def fill_key(symbol: str, trade_id, order_id: str, side: str, quantity: str, price: str, t_us: int) -> str:
    """``fills:<tradeId>:<orderId>:<side>:<symbol>`` (the REST natural key) or, without a trade id, ``ws:...``."""
    if trade_id not in (None, 0, "0", ""):
        return f"fills:{trade_id}:{order_id}:{side}:{symbol}"
    return f"ws:{symbol}:{order_id}:{side}:{quantity}:{price}:{t_us}"


def rfq_fill_key(rfq_id, quote_id, requester: bool) -> str:
    """The REST natural key of an RFQ fill: ``rfqFill:<rfqId>:<quoteId>`` (the requester's) or
    ``quoteFill:<quoteId>:<rfqId>`` (the quoter's)."""
    return f"rfqFill:{rfq_id}:{quote_id}" if requester else f"quoteFill:{quote_id}:{rfq_id}"


#: Key prefix -> the REST endpoint whose natural keys it carries.
KEY_ENDPOINTS = {"fills": "fills", "rfqFill": "rfqFill", "quoteFill": "quoteFill"}


@dataclass(frozen=True)
class FillIn:
    key: str
    symbol: str
    trade_id: str | None
    order_id: str
    side: str
    quantity: Decimal | None
    price: Decimal
    fee: Decimal | None
    fee_symbol: str | None
    engine_time: datetime
    payload: str


@dataclass(frozen=True)
class GapIn:
    start: datetime
    end: datetime
    reason: str
    detail: str | None = None


@dataclass(frozen=True)
class PositionIn:
    symbol: str
    quantity: Decimal
    entry_price: Decimal | None
    mark_price: Decimal | None
    engine_time: datetime
    payload: str


@dataclass(frozen=True)
class MarkIn:
    symbol: str
    mark_price: Decimal
    engine_time: datetime


@dataclass
class LiveBatch:
    venue_account: str
    fills: list[FillIn] = field(default_factory=list)
    gaps: list[GapIn] = field(default_factory=list)
    positions: dict[str, PositionIn] = field(default_factory=dict)  # latest per symbol
    marks: dict[str, MarkIn] = field(default_factory=dict)
    events: int = 0
    last_message_at: datetime | None = None

    def __len__(self) -> int:
        return len(self.fills) + len(self.gaps) + len(self.positions) + len(self.marks)


def _insert(conn: Connection, model):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(model)


def store_live(conn: Connection, batch: LiveBatch, received_at: datetime) -> int:
    """Write one batch (fills once per key, latest positions and marks, gaps); the number of new fills.

    Fills whose REST fill is already in the ledger (a sync ran first) are confirmed on the spot.
    """
    new = 0
    if batch.fills:
        new = _insert_fills(conn, batch.venue_account, batch.fills, received_at)
        _confirm_by_key(conn, batch.venue_account, [f.key for f in batch.fills if not f.key.startswith("ws:")], received_at)
    for p in batch.positions.values():
        stmt = _insert(conn, LivePosition).values(
            venue_account=batch.venue_account, symbol=p.symbol, quantity=p.quantity, entry_price=p.entry_price,
            mark_price=p.mark_price, engine_time=p.engine_time, received_at=received_at, payload=p.payload)
        conn.execute(stmt.on_conflict_do_update(index_elements=["venue_account", "symbol"], set_={
            "quantity": stmt.excluded.quantity, "entry_price": stmt.excluded.entry_price,
            "mark_price": stmt.excluded.mark_price, "engine_time": stmt.excluded.engine_time,
            "received_at": stmt.excluded.received_at, "payload": stmt.excluded.payload}))
    for m in batch.marks.values():
        stmt = _insert(conn, LiveMark).values(symbol=m.symbol, mark_price=m.mark_price, engine_time=m.engine_time,
                                              received_at=received_at)
        conn.execute(stmt.on_conflict_do_update(index_elements=["symbol"], set_={
            "mark_price": stmt.excluded.mark_price, "engine_time": stmt.excluded.engine_time,
            "received_at": stmt.excluded.received_at}))
    if batch.gaps:
        conn.execute(LiveGap.insert(), [
            {"venue_account": batch.venue_account, "start": g.start, "end": g.end, "reason": g.reason, "detail": g.detail,
             "recorded_at": received_at} for g in batch.gaps])
    if batch.events or batch.last_message_at:
        conn.execute(update(LiveStream).where(LiveStream.c.venue_account == batch.venue_account).values(
            events=LiveStream.c.events + batch.events, last_message_at=batch.last_message_at or received_at))
    return new


_FILL_COLUMNS = ("venue_account", "fill_key", "symbol", "trade_id", "order_id", "side", "quantity", "price", "fee",
                 "fee_symbol", "engine_time", "received_at", "status", "missed_syncs", "payload")


def _insert_fills(conn: Connection, venue_account: str, fills: Sequence[FillIn], received_at: datetime) -> int:
    """One driver-level executemany (``ON CONFLICT DO NOTHING``: a key is stored once).

    The column types' bind processing cost more than the insert itself at 10,000 events/s, so the
    values are rendered here exactly as ``ExactDecimal``/``UTCDateTime`` store them (decimal text and
    naive-UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` on SQLite; Decimal and aware datetimes on PostgreSQL).
    """
    if conn.dialect.name == "sqlite":
        ph = "?"

        def dec(d):
            return None if d is None else decimal_to_db_text(d)

        def ts(t):
            return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    else:
        ph = "%s"

        def dec(d):
            return d

        def ts(t):
            return t
    got = ts(received_at)
    rows = [(venue_account, f.key, f.symbol, f.trade_id, f.order_id, f.side, dec(f.quantity), dec(f.price), dec(f.fee),
             f.fee_symbol, ts(f.engine_time), got, "provisional", 0, f.payload) for f in fills]
    sql = (f"INSERT INTO live_fills ({', '.join(_FILL_COLUMNS)}) VALUES ({', '.join([ph] * len(_FILL_COLUMNS))}) "
           "ON CONFLICT (venue_account, fill_key) DO NOTHING")
    res = conn.exec_driver_sql(sql, rows)
    return max(res.rowcount or 0, 0)


def set_stream_state(conn: Connection, venue_account: str, state: str, at: datetime) -> None:
    stmt = _insert(conn, LiveStream).values(venue_account=venue_account, state=state, since=at, events=0)
    conn.execute(stmt.on_conflict_do_update(index_elements=["venue_account"], set_={"state": state, "since": at}))


@dataclass
class ConfirmReport:
    confirmed: int = 0
    mismatched: int = 0
    missed: int = 0  # provisional fills this sync covered without their REST fill
    reported: int = 0  # of which now ``unconfirmed`` (reported by status and check)
    gaps_filled: int = 0
    notes: list[str] = field(default_factory=list)


def _dec(v) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def _compare(row: LiveFill | tuple, rest: dict) -> str | None:
    """None when the REST fill carries the event's values; else what differs (REST wins)."""
    qty, price, fee, fee_symbol = row
    diffs = []
    if qty is not None and _dec(rest.get("quantity")) != qty:
        diffs.append(f"quantity {qty} vs REST {rest.get('quantity')}")
    rest_price = rest.get("price", rest.get("fillPrice"))  # RFQ fills carry fillPrice
    if _dec(rest_price) != price:
        diffs.append(f"price {price} vs REST {rest_price}")
    if fee is not None and _dec(rest.get("fee")) != fee:
        diffs.append(f"fee {fee} vs REST {rest.get('fee')}")
    if fee_symbol is not None and rest.get("feeSymbol") != fee_symbol:
        diffs.append(f"fee asset {fee_symbol} vs REST {rest.get('feeSymbol')}")
    return "; ".join(diffs) or None


def _confirm_by_key(conn: Connection, venue_account: str, keys: Sequence[str], now: datetime,
                    report: ConfirmReport | None = None) -> None:
    by_endpoint: dict[str, list[str]] = {}
    for k in keys:
        endpoint = KEY_ENDPOINTS.get(k.split(":", 1)[0])
        if endpoint is not None:
            by_endpoint.setdefault(endpoint, []).append(k)
    for endpoint, some in by_endpoint.items():
        _confirm_endpoint(conn, venue_account, endpoint, some, now, report)


def _confirm_endpoint(conn: Connection, venue_account: str, endpoint: str, keys: Sequence[str], now: datetime,
                      report: ConfirmReport | None) -> None:
    for i in range(0, len(keys), 500):
        chunk = list(keys[i:i + 500])
        held = dict(conn.execute(select(RawRecord.c.natural_key, RawRecord.c.payload).where(
            RawRecord.c.venue_account == venue_account, RawRecord.c.endpoint == endpoint, RawRecord.c.natural_key.in_(chunk))).all())
        if not held:
            continue
        rows = conn.execute(select(LiveFill.c.id, LiveFill.c.fill_key, LiveFill.c.quantity, LiveFill.c.price, LiveFill.c.fee,
                                   LiveFill.c.fee_symbol).where(
            LiveFill.c.venue_account == venue_account, LiveFill.c.fill_key.in_(list(held)),
            LiveFill.c.status.in_(("provisional", "unconfirmed")))).all()
        _settle(conn, [(r[0], r[2:], json.loads(held[r[1]])) for r in rows], now, report)


def _settle(conn: Connection, matches: Iterable[tuple[int, tuple, dict]], now: datetime, report: ConfirmReport | None) -> None:
    ok, bad = [], []
    for row_id, values, rest in matches:
        diff = _compare(values, rest)
        (ok if diff is None else bad).append((row_id, diff))
    if ok:
        conn.execute(update(LiveFill).where(LiveFill.c.id == _bind_id()).values(status="confirmed", confirmed_at=now, note=None)
                     .execution_options(synchronize_session=False), [{"row_id": i} for i, _ in ok])
    if bad:
        conn.execute(update(LiveFill).where(LiveFill.c.id == _bind_id()).values(status="mismatch", confirmed_at=now, note=_bind_note())
                     .execution_options(synchronize_session=False), [{"row_id": i, "row_note": f"REST differs: {d}"} for i, d in bad])
    if report is not None:
        report.confirmed += len(ok)
        report.mismatched += len(bad)
        report.notes += [f"live fill {i}: REST differs: {d}" for i, d in bad]


def _bind_id():
    from sqlalchemy import bindparam

    return bindparam("row_id")


def _bind_note():
    from sqlalchemy import bindparam

    return bindparam("row_note")


def confirm_live_fills(conn: Connection, venue_account: str, covered_until: datetime, now: datetime | None = None) -> ConfirmReport:
    """After a sync stored fills: confirm and retire every provisional fill its REST fill now matches;
    count a miss for those older than ``covered_until`` (the sync's snapshot time) - ``TIME_MARGIN``; mark
    the gaps ending before ``covered_until`` filled."""
    now = now or covered_until
    rep = ConfirmReport()
    keys = [k for (k,) in conn.execute(select(LiveFill.c.fill_key).where(
        LiveFill.c.venue_account == venue_account, LiveFill.c.status.in_(("provisional", "unconfirmed")),
        LiveFill.c.fill_key.not_like("ws:%")))]
    _confirm_by_key(conn, venue_account, keys, now, rep)
    # the fallback rule (no trade id): same order, quantity and price, REST time within the tolerance of T
    for row_id, order_id, qty, price, fee, fee_symbol, t in conn.execute(select(
            LiveFill.c.id, LiveFill.c.order_id, LiveFill.c.quantity, LiveFill.c.price, LiveFill.c.fee, LiveFill.c.fee_symbol,
            LiveFill.c.engine_time).where(LiveFill.c.venue_account == venue_account,
                                        LiveFill.c.status.in_(("provisional", "unconfirmed")),
                                        LiveFill.c.fill_key.like("ws:%"))).all():
        for (payload,) in conn.execute(select(RawRecord.c.payload).where(
                RawRecord.c.venue_account == venue_account, RawRecord.c.endpoint == "fills",
                RawRecord.c.record_time >= t - FALLBACK_TOLERANCE, RawRecord.c.record_time <= t + FALLBACK_TOLERANCE)):
            rest = json.loads(payload)
            if str(rest.get("orderId")) == order_id and _dec(rest.get("quantity")) == qty and _dec(rest.get("price")) == price:
                _settle(conn, [(row_id, (qty, price, fee, fee_symbol), rest)], now, rep)
                break
    cutoff = covered_until - TIME_MARGIN
    stale = and_(LiveFill.c.venue_account == venue_account, LiveFill.c.status.in_(("provisional", "unconfirmed")),
                 LiveFill.c.engine_time <= cutoff)
    rep.missed = conn.execute(update(LiveFill).where(stale).values(missed_syncs=LiveFill.c.missed_syncs + 1)).rowcount or 0
    rep.reported = conn.execute(update(LiveFill).where(stale, LiveFill.c.status == "provisional",
                                                       LiveFill.c.missed_syncs >= MISSES_BEFORE_REPORT)
                                .values(status="unconfirmed")).rowcount or 0
    rep.gaps_filled = conn.execute(update(LiveGap).where(
        LiveGap.c.venue_account == venue_account, LiveGap.c.filled_at.is_(None), LiveGap.c.end <= covered_until)
        .values(filled_at=covered_until)).rowcount or 0
    return rep
