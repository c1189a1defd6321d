"""The one reader of the journal for booking: entries in (time, key) order, streamed in chunks.

``read_entries(conn)`` runs one query, on SQLite and PostgreSQL alike, and yields lists of
``Entry`` records (up to ``CHUNK`` at a time, fetched from the driver's cursor as they are
needed): each journal entry with the postings the bridge reads, already classified
(``SPOT``, ``LENT``, ``BORROWED``, ``FEE``; ``classify`` is the one place that reads account
names) and with exact quantities and unit prices. Perpetual fills are not read (their lots are
positions, ``docs/posting-rules.md``); an entry with no posting of a class read is left out. The
order is the timestamp, then the entry key by code point (PostgreSQL's ``COLLATE "C"``), the
order ``ledger.bridge`` needs to pair transfers and the engine books in.

The postings of an entry come aggregated into one text by a correlated subquery (four fields a
posting: account id, asset id, quantity, unit price or ``-``), which costs a fraction of a row per
posting through the driver; the query streams (the timestamp index gives the order), so the first
chunk arrives at once and memory stays flat however large the ledger. Times are parsed by the column type's own parser
(``ledger.types.utc_from_db``). All reads run in the caller's transaction: one state of the
ledger even while a sync writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Connection

from .types import db_time, utc_from_db

__all__ = ["SPOT", "LENT", "BORROWED", "FEE", "Posting", "Entry", "classify", "read_entries", "CHUNK"]

#: Classes of the postings read; no other posting is fetched (the exchange and counter legs are not).
SPOT, LENT, BORROWED, FEE = 0, 1, 2, 3
CHUNK = 10_000


class Posting(NamedTuple):
    cls: int
    asset: str
    quantity: Decimal
    #: Unit price in the reporting currency (``ledger.valuation``), or None if unpriced.
    price: Decimal | None


class Entry(NamedTuple):
    time: datetime
    key: str
    kind: str
    account: str
    postings: list[Posting]


def classify(name: str) -> int | None:
    """The class of a ledger account by its name, or None for an account the bridge does not read."""
    if name.startswith("Expenses:Fees"):
        return FEE
    if name.startswith(("Assets:", "Liabilities:")):
        for cls, marker in ((SPOT, ":Spot:"), (LENT, ":Lent:"), (BORROWED, ":Borrowed:")):
            if marker in name:
                return cls
    return None


def _sql(dialect: str, ids: str, venue: bool, until: bool) -> str:
    """Entries in (timestamp, key) order, each with its read postings aggregated by a correlated
    subquery on the ``entry_id`` index: SQLite walks the timestamp index and sorts only the entries
    of one timestamp at a time, so rows stream from the first fetch and memory stays flat."""
    if dialect == "postgresql":
        agg = ("string_agg(account_id::text || ' ' || asset_id::text || ' ' || quantity::text || ' ' || coalesce(unit_price::text, '-'), ' ' ORDER BY id)")
        order, param = 'e.timestamp, e.entry_key COLLATE "C"', "%s"
    else:
        agg = "group_concat(printf('%d %d %s %s', account_id, asset_id, quantity, ifnull(unit_price, '-')), ' ')"
        order, param = "e.timestamp, e.entry_key", "?"
    sql = (
        f"SELECT e.timestamp, e.entry_key, e.kind, e.venue_account, (SELECT {agg} FROM postings WHERE entry_id = e.id AND account_id IN ({ids})) g"
        " FROM journal_entries e WHERE e.kind <> 'perp-fill'"
    )
    if venue:
        sql += f" AND e.venue_account = {param}"
    if until:
        sql += f" AND e.timestamp <= {param}"
    return sql + f" ORDER BY {order}"


def read_entries(conn: Connection, *, venue_account: str | None = None, until: datetime | None = None, chunk: int = CHUNK) -> Iterator[list[Entry]]:
    """The entries (of one venue account, up to and including ``until``) in (time, key) order."""
    classes: dict[str, int] = {}
    for aid, name in conn.exec_driver_sql("SELECT id, name FROM accounts"):
        c = classify(name)
        if c is not None:
            classes[str(aid)] = c
    if not classes:
        return
    symbols = {str(i): sym for i, sym in conn.exec_driver_sql("SELECT id, symbol FROM assets")}
    dialect = conn.dialect.name
    params: list = []
    if venue_account:
        params.append(venue_account)
    if until is not None:  # bound as the column stores it (SQLite: SQLAlchemy's text, microseconds always)
        params.append(db_time(conn, until))
    sql = _sql(dialect, ", ".join(sorted(classes, key=int)), bool(venue_account), until is not None)
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    dec, new = Decimal, tuple.__new__
    try:
        cur.execute(sql, tuple(params))
        while True:
            rows = cur.fetchmany(chunk)
            if not rows:
                return
            out = []
            for ts, key, kind, acct, text in rows:
                if text is None:  # no posting of a class read (a perp settlement in USDC only, say)
                    continue
                it = iter(text.split(" "))
                postings = [new(Posting, (classes[a], symbols[s], dec(q), None if p == "-" else dec(p))) for a, s, q, p in zip(it, it, it, it)]
                out.append(new(Entry, (utc_from_db(ts), key, kind, acct, postings)))
            yield out
    finally:
        cur.close()
