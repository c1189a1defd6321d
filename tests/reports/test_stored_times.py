"""Stored times read back by raw queries come out aware UTC on both databases, whatever the
PostgreSQL session's zone: one parser, ``ledger.types.utc_from_db`` (SQLite returns the stored
text, PostgreSQL a datetime in the session's zone)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import insert, text

from ledger.schema import SyncState
from reports.status import status, status_json, status_rows

HIGH_WATER = datetime(2025, 3, 30, 23, 59, 58, 123456, tzinfo=timezone.utc)
SYNCED = datetime(2025, 3, 31, 1, 2, 3, tzinfo=timezone.utc)


def test_status__sync_times_are_aware_utc_on_both_databases(engine):
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL TIME ZONE 'Europe/Berlin'"))  # a server whose session zone is not UTC
        conn.execute(insert(SyncState), [{"venue_account": "main", "endpoint": "fills", "high_water": HIGH_WATER, "records": 3, "last_synced_at": SYNCED}])
        st = status(conn)
    (ep,) = st.endpoints
    assert ep.high_water == HIGH_WATER and ep.high_water.tzinfo is timezone.utc
    assert ep.last_synced_at == SYNCED and ep.last_synced_at.tzinfo is timezone.utc
    # What the terminal and the JSON show: the same text on both databases.
    (row,) = status_rows(st)
    assert "2025-03-30T23:59:58.123456+00:00" in row and "2025-03-31T01:02:03+00:00" in row
    (js,) = status_json(st)["endpoints"]
    assert js["high_water"] == "2025-03-30T23:59:58.123456+00:00"
