"""``reconcile status``: what the database holds, per venue account and endpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from ledger.db import trial_balance
from ledger.money import plain
from ledger.types import utc_from_db

__all__ = ["EndpointStatus", "Status", "status", "status_json"]
_SECOND = timedelta(seconds=1)  # ages in whole seconds: durations, never a float


@dataclass(frozen=True)
class EndpointStatus:
    venue_account: str
    endpoint: str
    raw_records: int
    by_status: dict[str, int]
    high_water: datetime | None
    last_synced_at: datetime | None


@dataclass
class Status:
    endpoints: list[EndpointStatus] = field(default_factory=list)
    entries: int = 0
    postings: int = 0
    trial_balance: dict[str, Decimal] = field(default_factory=dict)
    unknown: int = 0
    pending: int = 0
    unpriced: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return all(v == 0 for v in self.trial_balance.values())


def status(conn: Connection) -> Status:
    st = Status()
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for acct, ep, s, n in conn.execute(
        text("SELECT venue_account, endpoint, status, COUNT(*) FROM raw_records GROUP BY venue_account, endpoint, status")
    ):
        counts.setdefault((acct, ep), {})[s] = n
    states = {
        (a, e): (hw, last)
        for a, e, hw, last in conn.execute(text("SELECT venue_account, endpoint, high_water, last_synced_at FROM sync_state"))
    }
    for key in sorted(set(counts) | set(states)):
        by = counts.get(key, {})
        hw, last = states.get(key, (None, None))
        st.endpoints.append(EndpointStatus(key[0], key[1], sum(by.values()), dict(sorted(by.items())), utc_from_db(hw), utc_from_db(last)))
        st.unknown += by.get("unknown", 0)
        st.pending += by.get("pending", 0)
    st.entries = conn.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar_one()
    st.postings = conn.execute(text("SELECT COUNT(*) FROM postings")).scalar_one()
    st.trial_balance = trial_balance(conn)
    return st


def _json(v):
    """A value for ``--json``: decimals as plain text, times as ISO-8601, containers converted inside."""
    if isinstance(v, Decimal):
        return plain(v)
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json(x) for x in v]
    return v


def status_json(st: Status) -> dict[str, Any]:
    conv = _json
    return {
        "endpoints": [conv(asdict(e)) for e in st.endpoints],
        "entries": st.entries,
        "postings": st.postings,
        "trial_balance": conv(st.trial_balance),
        "balanced": st.balanced,
        "unknown_records": st.unknown,
        "pending_records": st.pending,
        "unpriced_events": st.unpriced,
        **conv(st.extra),
    }


# -- the live view (``reconcile watch``; docs/watch.md) ---------------------------------------------
@dataclass(frozen=True)
class LivePositionRow:
    symbol: str
    quantity: Decimal
    entry_price: Decimal | None
    mark_price: Decimal | None
    #: ``stream`` (markPrice.<symbol>) or ``position`` (the position event's M)
    mark_source: str
    mark_age_s: int | None
    #: quantity x (mark - entry); None when the entry or the mark is unknown (never shown as zero)
    unrealized_pnl: Decimal | None
    position_age_s: int


@dataclass(frozen=True)
class LiveFillRow:
    symbol: str
    side: str
    quantity: Decimal | None  # None: an RFQ fill whose event has no base quantity
    price: Decimal
    fee: Decimal | None
    fee_symbol: str | None
    trade_id: str | None
    order_id: str
    engine_time: datetime
    status: str
    note: str | None


@dataclass(frozen=True)
class LiveGapRow:
    start: datetime
    end: datetime
    reason: str
    detail: str | None

    def message(self) -> str:
        spec = "seconds" if self.start.replace(microsecond=0) != self.end.replace(microsecond=0) else "milliseconds"
        return (f"live view incomplete between {self.start.isoformat(timespec=spec)} and "
                f"{self.end.isoformat(timespec=spec)}: the next sync fills it ({self.reason})")


@dataclass
class LiveAccount:
    venue_account: str
    state: str | None = None
    since: datetime | None = None
    last_message_at: datetime | None = None
    last_sync: datetime | None = None
    positions: list[LivePositionRow] = field(default_factory=list)
    provisional: list[LiveFillRow] = field(default_factory=list)
    provisional_count: int = 0
    #: Fills no sync confirmed although two syncs covered their time, and fills whose REST values differ.
    unconfirmed: list[LiveFillRow] = field(default_factory=list)
    gaps: list[LiveGapRow] = field(default_factory=list)

    def warnings(self) -> list[str]:
        out = [g.message() for g in self.gaps]
        for f in self.unconfirmed:
            what = "differs from its REST fill" if f.status == "mismatch" else "was not confirmed by the syncs that covered its time"
            out.append(f"live fill {f.symbol} trade {f.trade_id} order {f.order_id} at {f.engine_time.isoformat()} {what}"
                       + (f": {f.note}" if f.note else ""))
        if self.state in ("disconnected",) and self.since is not None:
            out.append(f"the stream is disconnected since {self.since.isoformat(timespec='seconds')} (watch is reconnecting)")
        return out


def _d(v) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def live_view(conn: Connection, now: datetime, *, limit: int = 20) -> list[LiveAccount]:
    """Per venue account the stream has seen: positions at the live mark, provisional fills since the last
    sync, unconfirmed fills and the gaps no sync has filled yet."""
    from sqlalchemy import inspect

    if not inspect(conn).has_table("live_streams"):
        return []
    names = sorted({n for (n,) in conn.execute(text(
        "SELECT venue_account FROM live_streams UNION SELECT venue_account FROM live_fills "
        "UNION SELECT venue_account FROM live_positions"))})
    marks = {s: (_d(p), utc_from_db(r)) for s, p, r in conn.execute(text("SELECT symbol, mark_price, received_at FROM live_marks"))}
    out = []
    for name in names:
        la = LiveAccount(name)
        row = conn.execute(text("SELECT state, since, last_message_at FROM live_streams WHERE venue_account = :a"), {"a": name}).first()
        if row is not None:
            la.state, la.since, la.last_message_at = row[0], utc_from_db(row[1]), utc_from_db(row[2])
        la.last_sync = utc_from_db(conn.execute(text("SELECT MAX(last_synced_at) FROM sync_state WHERE venue_account = :a"),
                                           {"a": name}).scalar())
        held = {sym: (_d(qty), _d(entry), _d(pmark), utc_from_db(received), "stream") for sym, qty, entry, pmark, received in conn.execute(text(
            "SELECT symbol, quantity, entry_price, mark_price, received_at FROM live_positions WHERE venue_account = :a"), {"a": name})}
        # a sync newer than the stream's last word on a market is the better figure (REST is the source of truth)
        snap = conn.execute(text("SELECT id, taken_at FROM snapshots WHERE venue_account = :a ORDER BY taken_at DESC, id DESC LIMIT 1"),
                            {"a": name}).first()
        if snap is not None:
            taken = utc_from_db(snap[1])
            rest = {sym: (_d(q), detail) for sym, q, detail in conn.execute(text(
                "SELECT asset, quantity, detail FROM snapshot_lines WHERE snapshot_id = :s AND wallet = 'Perp'"), {"s": snap[0]})}
            for sym in set(held) | set(rest):
                if sym in held and held[sym][3] is not None and held[sym][3] >= taken:
                    continue
                q, detail = rest.get(sym, (Decimal(0), None))
                entry = None
                if detail:
                    import json as _json

                    entry = _d(_json.loads(detail).get("entryPrice"))
                held[sym] = (q, entry, None, taken, "sync")
        for sym in sorted(held):
            qty, entry, pmark, received, _origin = held[sym]
            if qty == 0:
                continue
            if sym in marks and marks[sym][0] is not None:
                mark, source, age_at = marks[sym][0], "stream", marks[sym][1]
            else:
                mark, source, age_at = pmark, "position", received
            upnl = qty * (mark - entry) if mark is not None and entry is not None else None
            la.positions.append(LivePositionRow(sym, qty, entry, mark, source,
                                                (now - age_at) // _SECOND if age_at else None, upnl,
                                                (now - received) // _SECOND))
        cols = "symbol, side, quantity, price, fee, fee_symbol, trade_id, order_id, engine_time, status, note"

        def rows(where: str, n: int) -> list[LiveFillRow]:
            got = conn.execute(text(f"SELECT {cols} FROM live_fills WHERE venue_account = :a AND {where} "
                                    f"ORDER BY engine_time DESC, id DESC LIMIT {int(n)}"), {"a": name}).all()
            return [LiveFillRow(r[0], r[1], _d(r[2]), _d(r[3]), _d(r[4]), r[5], r[6], r[7], utc_from_db(r[8]), r[9], r[10])
                    for r in got]

        la.provisional_count = conn.execute(text(
            "SELECT COUNT(*) FROM live_fills WHERE venue_account = :a AND status = 'provisional'"), {"a": name}).scalar_one()
        la.provisional = rows("status = 'provisional'", limit)
        la.unconfirmed = rows("status IN ('unconfirmed', 'mismatch')", 1000)
        la.gaps = [LiveGapRow(utc_from_db(s), utc_from_db(e), r, d) for s, e, r, d in conn.execute(text(
            "SELECT start, \"end\", reason, detail FROM live_gaps WHERE venue_account = :a AND filled_at IS NULL "
            "ORDER BY start"), {"a": name})]
        out.append(la)
    return out


def live_view_json(view: list[LiveAccount]) -> list[dict[str, Any]]:
    return [{**_json(asdict(a)), "warnings": a.warnings()} for a in view]


__all__ += ["LiveAccount", "LivePositionRow", "LiveFillRow", "LiveGapRow", "live_view", "live_view_json"]
def status_rows(st: Status) -> list[tuple[str, ...]]:
    """The raw-records table as terminal-safe text (``reports.safety.terminal``): an account or
    endpoint name never reaches the terminal as a control sequence."""
    from .safety import terminal_line as terminal

    return [
        (terminal(e.venue_account), terminal(e.endpoint), str(e.raw_records), terminal(", ".join(f"{k} {v}" for k, v in e.by_status.items())),
         e.high_water.isoformat() if e.high_water else "-", e.last_synced_at.isoformat(timespec="seconds") if e.last_synced_at else "-")
        for e in st.endpoints
    ]


def trial_balance_line(st: Status) -> str:
    """One line: zero for every asset, or the assets that are not (asset names terminal-safe)."""
    from .safety import terminal_line as terminal

    off = {a: q for a, q in st.trial_balance.items() if q != 0}
    if not off:
        return "trial balance: zero for every asset"
    return "trial balance NOT zero: " + ", ".join(f"{plain(q)} {terminal(a)}" for a, q in off.items())
