"""``reconcile status``: what the database holds, per venue account and endpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from ledger.db import trial_balance
from ledger.money import plain

__all__ = ["EndpointStatus", "Status", "status", "status_json"]


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


def _t(v) -> datetime | None:
    if v is None or isinstance(v, datetime):
        return v
    return datetime.fromisoformat(str(v))


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
        st.endpoints.append(EndpointStatus(key[0], key[1], sum(by.values()), dict(sorted(by.items())), _t(hw), _t(last)))
        st.unknown += by.get("unknown", 0)
        st.pending += by.get("pending", 0)
    st.entries = conn.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar_one()
    st.postings = conn.execute(text("SELECT COUNT(*) FROM postings")).scalar_one()
    st.trial_balance = trial_balance(conn)
    return st


def status_json(st: Status) -> dict[str, Any]:
    def conv(v):
        if isinstance(v, Decimal):
            return plain(v)
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

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


def status_rows(st: Status) -> list[tuple[str, ...]]:
    """The raw-records table as terminal-safe text (``reports.safety.terminal``): an account or
    endpoint name never reaches the terminal as a control sequence."""
    from .safety import terminal

    return [
        (terminal(e.venue_account), terminal(e.endpoint), str(e.raw_records), terminal(", ".join(f"{k} {v}" for k, v in e.by_status.items())),
         e.high_water.isoformat() if e.high_water else "-", e.last_synced_at.isoformat(timespec="seconds") if e.last_synced_at else "-")
        for e in st.endpoints
    ]


def trial_balance_line(st: Status) -> str:
    """One line: zero for every asset, or the assets that are not (asset names terminal-safe)."""
    from .safety import terminal

    off = {a: q for a, q in st.trial_balance.items() if q != 0}
    if not off:
        return "trial balance: zero for every asset"
    return "trial balance NOT zero: " + ", ".join(f"{plain(q)} {terminal(a)}" for a, q in off.items())
