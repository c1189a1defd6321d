"""The journal export: one row per posting, in a stable order, as CSV or XLSX.

Identical ledgers give byte-identical CSV files: rows are ordered by entry time, entry key (derived
from the source record, never a database-generated id), then account, asset and quantity; decimals
are written as plain strings (never exponent notation) and times as ISO-8601 UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, text

from ledger.money import D, EXACT, plain
from ledger.types import db_time, utc_from_db

from .safety import text_cell

__all__ = ["JournalRow", "journal_rows", "write_journal", "COLUMNS"]

COLUMNS = ("entry_id", "time", "kind", "account", "asset", "quantity", "unit_price", "value", "currency", "venue_account", "endpoint", "source_key", "description")


@dataclass(frozen=True, slots=True)
class JournalRow:
    entry_id: str
    time: datetime
    kind: str
    account: str
    asset: str
    quantity: Decimal
    unit_price: Decimal | None
    currency: str | None
    venue_account: str
    endpoint: str
    source_key: str
    description: str

    @property
    def value(self) -> Decimal | None:
        return None if self.unit_price is None else EXACT.multiply(self.quantity, self.unit_price)


def journal_rows(conn: Connection, *, start: datetime | None = None, end: datetime | None = None, batch: int = 20000) -> Iterator[JournalRow]:
    """Postings in the stable order, streamed (the ledger is never held in memory)."""
    where, params = [], {}

    if start is not None:
        where.append("e.timestamp >= :start")
        params["start"] = db_time(conn, start)
    if end is not None:
        where.append("e.timestamp < :end")
        params["end"] = db_time(conn, end)
    sql = (
        "SELECT e.entry_key, e.timestamp, e.kind, ac.name, a.symbol, p.quantity, p.unit_price, p.price_currency,"
        " e.venue_account, e.endpoint, e.source_key, e.description"
        " FROM postings p JOIN journal_entries e ON e.id = p.entry_id"
        " JOIN accounts ac ON ac.id = p.account_id JOIN assets a ON a.id = p.asset_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY e.timestamp, e.entry_key, ac.name, a.symbol, p.id"
    )
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(text(sql), params)
    for row in result:
        yield JournalRow(
            entry_id=row[0],
            time=utc_from_db(row[1]),
            kind=row[2],
            account=row[3],
            asset=row[4],
            quantity=D(row[5] if not isinstance(row[5], float) else str(row[5])),
            unit_price=None if row[6] is None else D(row[6]),
            currency=row[7],
            venue_account=row[8],
            endpoint=row[9],
            source_key=row[10],
            description=row[11],
        )


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(v: str, _cell=text_cell) -> str:
    """``text_cell`` (EXPORT-FORMATS.md §9) with a fast path for a printable cell without a formula prefix."""
    return v if not v or (v.isprintable() and v[0] not in "=+-@") else _cell(v)


def _cells(r: JournalRow) -> list[str]:
    """A posting's cells: every text from the exchange (ids, symbols, descriptions) through
    ``text_cell``; quantities and values as plain decimals (numbers, never quoted)."""
    v, t = r.value, _text
    return [
        t(r.entry_id),
        _iso(r.time),
        t(r.kind),
        t(r.account),
        t(r.asset),
        plain(r.quantity),
        "" if r.unit_price is None else plain(r.unit_price),
        "" if v is None else plain(v),
        t(r.currency or ""),
        t(r.venue_account),
        t(r.endpoint),
        t(r.source_key),
        t(r.description),
    ]


def write_journal(rows: Iterator[JournalRow], out: Path, fmt: str) -> int:
    """Write the rows as ``csv`` or ``xlsx`` (via a temporary file, renamed at the end)."""
    from .gains import write_table

    return write_table(out, fmt, COLUMNS, (_cells(r) for r in rows), sheet="Journal")
