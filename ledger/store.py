"""Store functions: raw records, sync state and exchange snapshots, written in bulk.

The sync calls :func:`store_page` once per page, inside one transaction: the raw rows, their
entries and the advanced cursor commit together or not at all (a kill leaves all or nothing of a
page). Natural keys make a replayed page a no-op.
"""

from __future__ import annotations

import json

import orjson
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select, update

from .bulk import allocate_ids, bulk_insert
from .journal import Entry, Journal
from .schema import RawRecord, Snapshot, SnapshotLine, SyncState
from .types import db_time as _db_time

__all__ = ["RawIn", "Outcome", "PageResult", "store_page", "load_cursor", "save_snapshot", "SnapshotLineIn"]


@dataclass(frozen=True, slots=True)
class RawIn:
    """One record of a page: its natural key, time and the JSON as received."""

    key: str
    record: Mapping[str, Any]
    time: datetime | None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    entries: tuple[Entry, ...] = ()
    note: str | None = None


@dataclass
class PageResult:
    received: int = 0
    new: int = 0
    updated: int = 0
    entries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


def _payload(record: Mapping[str, Any]) -> str:
    """The record as compact JSON text (the same text ``json.dumps(..., separators=(",", ":"),
    ensure_ascii=False)`` gives, faster)."""
    return orjson.dumps(record).decode("utf-8")


def _held(conn: Connection, venue_account: str, endpoint: str, keys: list[str]) -> dict[str, tuple[int, str, str]]:
    """The page's records already held: natural key -> (id, status, payload)."""
    held: dict[str, tuple[int, str, str]] = {}
    if not keys:
        return held
    if conn.dialect.name == "postgresql":
        # One array parameter: a thousand-placeholder IN list costs the driver and the planner more
        # than the lookup itself.
        rows = conn.exec_driver_sql(
            "SELECT natural_key, id, status, payload FROM raw_records"
            " WHERE venue_account = %(a)s AND endpoint = %(e)s AND natural_key = ANY(%(k)s)",
            {"a": venue_account, "e": endpoint, "k": keys},
        )
        for k, rid, status, payload in rows:
            held[k] = (rid, status, payload)
        return held
    for i in range(0, len(keys), 900):  # SQLite: at most 999 variables a statement
        chunk = keys[i : i + 900]
        rows = conn.execute(
            select(RawRecord.c.natural_key, RawRecord.c.id, RawRecord.c.status, RawRecord.c.payload).where(
                RawRecord.c.venue_account == venue_account, RawRecord.c.endpoint == endpoint, RawRecord.c.natural_key.in_(chunk)
            )
        )
        for k, rid, status, payload in rows:
            held[k] = (rid, status, payload)
    return held


def store_page(
    conn: Connection,
    journal: Journal,
    *,
    venue_account: str,
    endpoint: str,
    records: Iterable[RawIn],
    decide: Callable[[RawIn, int], Outcome],
    cursor: Mapping[str, Any] | None,
    fetched_at: datetime,
) -> PageResult:
    """Keep the page's new records, post their entries, and advance the cursor: one transaction.

    ``decide(raw, raw_id)`` returns the outcome of a record (its entries or why none). A record
    already held is skipped, unless it was held as ``pending`` and has changed (a deposit that has
    since been confirmed): then its payload is replaced and it is decided again.
    """
    result = PageResult()
    unique: dict[str, RawIn] = {}
    for raw in records:
        result.received += 1
        unique.setdefault(raw.key, raw)
    held = _held(conn, venue_account, endpoint, list(unique))

    new = [r for k, r in unique.items() if k not in held]
    changed = [
        (held[k][0], r) for k, r in unique.items() if k in held and held[k][1] == "pending" and held[k][2] != _payload(r.record)
    ]
    ids = allocate_ids(conn, "raw_records", len(new))
    entries: list[Entry] = []
    raw_rows = []
    fetched = _db_time(conn, fetched_at)
    for rid, raw in zip(ids, new):
        out = decide(raw, rid)
        entries.extend(out.entries)
        result.by_status[out.status] = result.by_status.get(out.status, 0) + 1
        raw_rows.append((rid, venue_account, endpoint, raw.key, _payload(raw.record), _db_time(conn, raw.time), fetched, out.status, out.note))
    bulk_insert(
        conn,
        "raw_records",
        ("id", "venue_account", "endpoint", "natural_key", "payload", "record_time", "fetched_at", "status", "note"),
        raw_rows,
    )
    for rid, raw in changed:
        out = decide(raw, rid)
        entries.extend(out.entries)
        result.by_status[out.status] = result.by_status.get(out.status, 0) + 1
        conn.execute(
            update(RawRecord)
            .where(RawRecord.c.id == rid)
            .values(payload=_payload(raw.record), record_time=raw.time, fetched_at=fetched_at, status=out.status, note=out.note)
        )
    journal.post(entries)
    result.new, result.updated, result.entries = len(new), len(changed), len(entries)

    times = [r.time for r in unique.values() if r.time is not None]
    _save_cursor(conn, venue_account, endpoint, cursor, max(times) if times else None, len(new), fetched_at)
    return result


def _save_cursor(conn: Connection, venue_account: str, endpoint: str, cursor, high: datetime | None, added: int, now: datetime) -> None:
    current = conn.execute(
        select(SyncState.c.high_water, SyncState.c.records).where(SyncState.c.venue_account == venue_account, SyncState.c.endpoint == endpoint)
    ).first()
    cursor_text = json.dumps(cursor, sort_keys=True) if cursor is not None else None
    if current is None:
        conn.execute(
            SyncState.insert().values(
                venue_account=venue_account, endpoint=endpoint, cursor=cursor_text, high_water=high, records=added, last_synced_at=now
            )
        )
        return
    old_high, old_records = current
    new_high = max(h for h in (old_high, high) if h is not None) if (old_high or high) else None
    conn.execute(
        update(SyncState)
        .where(SyncState.c.venue_account == venue_account, SyncState.c.endpoint == endpoint)
        .values(cursor=cursor_text, high_water=new_high, records=(old_records or 0) + added, last_synced_at=now)
    )


def load_cursor(conn: Connection, venue_account: str, endpoint: str) -> dict | None:
    text = conn.execute(
        select(SyncState.c.cursor).where(SyncState.c.venue_account == venue_account, SyncState.c.endpoint == endpoint)
    ).scalar_one_or_none()
    return json.loads(text) if text else None


@dataclass(frozen=True, slots=True)
class SnapshotLineIn:
    wallet: str
    asset: str
    quantity: Decimal
    detail: Mapping[str, Any] | None = None


def save_snapshot(conn: Connection, *, venue_account: str, taken_at: datetime, payload: Mapping[str, Any], lines: Iterable[SnapshotLineIn]) -> int:
    snap = conn.execute(
        Snapshot.insert().values(venue_account=venue_account, taken_at=taken_at, payload=_payload(payload)).returning(Snapshot.c.id)
    ).scalar_one()
    rows = [
        {"snapshot_id": snap, "wallet": l.wallet, "asset": l.asset, "quantity": l.quantity, "detail": _payload(l.detail) if l.detail else None}
        for l in lines
    ]
    if rows:
        conn.execute(SnapshotLine.insert(), rows)
    return snap

