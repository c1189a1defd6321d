"""Entries and the one function that writes them.

``Entry`` and ``Leg`` are pure records. :class:`Journal` is the only writer of journal entries and
postings: it refuses, before writing anything, any entry whose legs do not sum to zero per asset
(:class:`UnbalancedEntry`). Writes are bulk (executemany on SQLite, COPY on PostgreSQL), never
per-row ORM work: posting a million fills is a benchmark target (benchmarks/posting_bench.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import Connection, select

from .money import plain
from .schema import Account, Asset

__all__ = ["Leg", "Entry", "LedgerError", "UnbalancedEntry", "Journal", "ACCOUNT_TYPES", "check_entry"]

ACCOUNT_TYPES = ("Assets", "Liabilities", "Equity", "Income", "Expenses")


class LedgerError(Exception):
    """Base of the ledger's typed errors."""


class UnbalancedEntry(LedgerError):
    """An entry whose postings do not sum to zero per asset; nothing was written."""

    def __init__(self, key: str, residue: dict[str, Decimal]):
        self.key = key
        self.residue = residue
        parts = ", ".join(f"{plain(q)} {a}" for a, q in sorted(residue.items()))
        super().__init__(f"entry {key} does not balance: residue {parts}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    """One posting of an entry: a signed quantity of ``asset`` in ``account``."""

    account: str
    asset: str
    quantity: Decimal
    unit_price: Decimal | None = None
    price_currency: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """A journal entry before it is written. ``key`` is unique and derived from the source."""

    key: str
    time: datetime
    kind: str
    description: str
    legs: tuple[Leg, ...]
    venue_account: str
    endpoint: str
    source_key: str
    raw_record_id: int | None = field(default=None)


def check_entry(entry: Entry) -> None:
    """Raise a LedgerError unless the entry is well formed and balances per asset."""
    if not entry.legs:
        raise LedgerError(f"entry {entry.key} has no postings")
    if entry.time.tzinfo is None:
        raise LedgerError(f"entry {entry.key} has a naive timestamp")
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for leg in entry.legs:
        if not isinstance(leg.quantity, Decimal):
            raise LedgerError(f"entry {entry.key}: quantity of {leg.account} is {type(leg.quantity).__name__}, not Decimal")
        if not leg.quantity.is_finite():
            raise LedgerError(f"entry {entry.key}: quantity of {leg.account} is not finite")
        if leg.account.split(":", 1)[0] not in ACCOUNT_TYPES:
            raise LedgerError(f"entry {entry.key}: account {leg.account!r} is not under {', '.join(ACCOUNT_TYPES)}")
        sums[leg.asset] += leg.quantity
    residue = {a: q for a, q in sums.items() if q != 0}
    if residue:
        raise UnbalancedEntry(entry.key, residue)


def _sqlite_ts(t: datetime) -> str:
    # The storage format SQLAlchemy's SQLite DateTime uses, so ORM reads agree with bulk writes.
    return t.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _sqlite_dec(d: Decimal | None) -> str | None:
    return None if d is None else format(d, "f")


class Journal:
    """The writer of entries for one connection; caches account and asset ids."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect.name
        self._accounts: dict[str, int] = {}
        self._assets: dict[str, int] = {}

    # -- reference data -------------------------------------------------------------------------
    def _ensure(self, table, cache: dict[str, int], key_col: str, names: Iterable[str], extra=None) -> None:
        missing = {n for n in names if n not in cache}
        if not missing:
            return
        col = getattr(table, key_col)
        for row in self.conn.execute(select(table.id, col).where(col.in_(sorted(missing)))):
            cache[row[1]] = row[0]
        still = sorted(n for n in missing if n not in cache)
        if still:
            rows = [{key_col: n, **(extra(n) if extra else {})} for n in still]
            self.conn.execute(table.__table__.insert(), rows)
            for row in self.conn.execute(select(table.id, col).where(col.in_(still))):
                cache[row[1]] = row[0]

    def account_id(self, name: str) -> int:
        self._ensure(Account, self._accounts, "name", [name], lambda n: {"type": n.split(":", 1)[0]})
        return self._accounts[name]

    def asset_id(self, symbol: str) -> int:
        self._ensure(Asset, self._assets, "symbol", [symbol])
        return self._assets[symbol]

    # -- ids ---------------------------------------------------------------------------------------
    def _allocate_entry_ids(self, n: int) -> list[int]:
        if self.dialect == "postgresql":
            rows = self.conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('journal_entries', 'id')) FROM generate_series(1, %(n)s)",
                {"n": n},
            ).fetchall()
            return [r[0] for r in rows]
        # SQLite has one writer at a time and the sync holds the database lock (ledger.lock).
        start = self.conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM journal_entries").scalar_one() + 1
        return list(range(start, start + n))

    # -- the writer --------------------------------------------------------------------------------
    def post(self, entries: Sequence[Entry]) -> list[int]:
        """Write balanced entries and their postings; return the new entry ids.

        Every entry is checked before anything is written: one unbalanced entry refuses the batch.
        """
        if not entries:
            return []
        for e in entries:
            check_entry(e)
        self._ensure(
            Account,
            self._accounts,
            "name",
            {leg.account for e in entries for leg in e.legs},
            lambda n: {"type": n.split(":", 1)[0]},
        )
        self._ensure(Asset, self._assets, "symbol", {leg.asset for e in entries for leg in e.legs})
        ids = self._allocate_entry_ids(len(entries))
        acc, ast = self._accounts, self._assets
        if self.dialect == "postgresql":
            self._copy_pg(entries, ids)
        else:
            entry_rows = [
                (i, e.key, _sqlite_ts(e.time), e.kind, e.description, e.venue_account, e.endpoint, e.source_key, e.raw_record_id)
                for i, e in zip(ids, entries)
            ]
            posting_rows = [
                (i, acc[l.account], ast[l.asset], format(l.quantity, "f"), _sqlite_dec(l.unit_price), l.price_currency)
                for i, e in zip(ids, entries)
                for l in e.legs
            ]
            self.conn.exec_driver_sql(
                "INSERT INTO journal_entries (id, entry_key, timestamp, kind, description, venue_account, endpoint, source_key, raw_record_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                entry_rows,
            )
            self.conn.exec_driver_sql(
                "INSERT INTO postings (entry_id, account_id, asset_id, quantity, unit_price, price_currency) VALUES (?, ?, ?, ?, ?, ?)",
                posting_rows,
            )
        return ids

    def _copy_pg(self, entries: Sequence[Entry], ids: list[int]) -> None:
        acc, ast = self._accounts, self._assets
        cur = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cur.copy(
                "COPY journal_entries (id, entry_key, timestamp, kind, description, venue_account, endpoint, source_key, raw_record_id) FROM STDIN"
            ) as cp:
                for i, e in zip(ids, entries):
                    cp.write_row((i, e.key, e.time, e.kind, e.description, e.venue_account, e.endpoint, e.source_key, e.raw_record_id))
            with cur.copy("COPY postings (entry_id, account_id, asset_id, quantity, unit_price, price_currency) FROM STDIN") as cp:
                for i, e in zip(ids, entries):
                    for l in e.legs:
                        cp.write_row((i, acc[l.account], ast[l.asset], l.quantity, l.unit_price, l.price_currency))
        finally:
            cur.close()


def entry_count(conn: Connection) -> int:
    return conn.exec_driver_sql("SELECT COUNT(*) FROM journal_entries").scalar_one()


def posting_count(conn: Connection) -> int:
    return conn.exec_driver_sql("SELECT COUNT(*) FROM postings").scalar_one()
