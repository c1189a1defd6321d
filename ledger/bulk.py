"""Bulk writes and id allocation shared by the journal writer and the store (no ORM per row)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection

__all__ = ["allocate_ids", "bulk_insert", "db_time"]


def allocate_ids(conn: Connection, table: str, n: int) -> list[int]:
    """``n`` fresh primary keys for ``table``. On SQLite the caller holds the database lock."""
    if n <= 0:
        return []
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %(n)s)", {"n": n}
        ).fetchall()
        return [r[0] for r in rows]
    start = conn.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) FROM {table}").scalar_one() + 1
    return list(range(start, start + n))


def db_time(conn: Connection, t: datetime | None):
    """A datetime as the driver stores it: as is on PostgreSQL; on SQLite the UTC text SQLAlchemy's
    DateTime writes (``YYYY-MM-DD HH:MM:SS.ffffff``), so ORM reads agree with bulk writes."""
    if t is None or conn.dialect.name == "postgresql":
        return t
    if t.tzinfo is not timezone.utc:
        t = t.astimezone(timezone.utc)
    return t.replace(tzinfo=None).isoformat(" ", "microseconds")


def bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert many rows with the driver's fastest path (COPY on PostgreSQL, executemany on SQLite)."""
    if not rows:
        return
    cols = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        finally:
            cur.close()
    else:
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(rows))
