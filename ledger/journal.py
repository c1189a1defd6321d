"""Entries and the one function that writes them.

``Entry`` and ``Leg`` are pure records. :class:`Journal` is the only writer of journal entries and
postings: it refuses, before writing anything, any entry whose legs do not sum to zero per asset
(:class:`UnbalancedEntry`). Writes are bulk (executemany on SQLite, COPY on PostgreSQL), never
per-row ORM work: posting a million fills is a benchmark target (benchmarks/posting_bench.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import Connection, select

from .bulk import allocate_ids, bulk_insert, db_time
from .money import plain
from .schema import Account, Asset

__all__ = ["Leg", "Entry", "LedgerError", "UnbalancedEntry", "Journal", "ACCOUNT_TYPES", "check_entry"]

ACCOUNT_TYPES = ("Assets", "Liabilities", "Equity", "Income", "Expenses")
_TYPE_PREFIXES = tuple(t + ":" for t in ACCOUNT_TYPES)
_ZERO = Decimal(0)


class LedgerError(Exception):
    """Base of the ledger's typed errors."""


class UnbalancedEntry(LedgerError):
    """An entry whose postings do not sum to zero per asset; nothing was written."""

    def __init__(self, key: str, residue: dict[str, Decimal]):
        self.key = key
        self.residue = residue
        parts = ", ".join(f"{plain(q)} {a}" for a, q in sorted(residue.items()))
        super().__init__(f"entry {key} does not balance: residue {parts}")


class Leg(NamedTuple):
    """One posting of an entry: a signed quantity of ``asset`` in ``account`` (immutable; a
    NamedTuple because a million fills make millions of legs)."""

    account: str
    asset: str
    quantity: Decimal
    unit_price: Decimal | None = None
    price_currency: str | None = None


class Entry(NamedTuple):
    """A journal entry before it is written (immutable). ``key`` is unique and derived from the source."""

    key: str
    time: datetime
    kind: str
    description: str
    legs: tuple[Leg, ...]
    venue_account: str
    endpoint: str
    source_key: str
    raw_record_id: int | None = None


def check_entry(entry: Entry) -> None:
    """Raise a LedgerError unless the entry is well formed and balances per asset."""
    if not entry.legs:
        raise LedgerError(f"entry {entry.key} has no postings")
    if entry.time.tzinfo is None:
        raise LedgerError(f"entry {entry.key} has a naive timestamp")
    sums: dict[str, Decimal] = {}
    for leg in entry.legs:
        q = leg.quantity
        if type(q) is not Decimal:
            raise LedgerError(f"entry {entry.key}: quantity of {leg.account} is {type(q).__name__}, not Decimal")
        if not q.is_finite():
            raise LedgerError(f"entry {entry.key}: quantity of {leg.account} is not finite")
        if not leg.account.startswith(_TYPE_PREFIXES):
            raise LedgerError(f"entry {entry.key}: account {leg.account!r} is not under {', '.join(ACCOUNT_TYPES)}")
        sums[leg.asset] = sums.get(leg.asset, _ZERO) + q
    residue = {a: q for a, q in sums.items() if q != 0}
    if residue:
        raise UnbalancedEntry(entry.key, residue)


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
        ids = allocate_ids(self.conn, "journal_entries", len(entries))
        acc, ast = self._accounts, self._assets
        pg = self.dialect == "postgresql"
        dec = (lambda d: d) if pg else (lambda d: None if d is None else format(d, "f"))
        bulk_insert(
            self.conn,
            "journal_entries",
            ("id", "entry_key", "timestamp", "kind", "description", "venue_account", "endpoint", "source_key", "raw_record_id"),
            [
                (i, e.key, db_time(self.conn, e.time), e.kind, e.description, e.venue_account, e.endpoint, e.source_key, e.raw_record_id)
                for i, e in zip(ids, entries)
            ],
        )
        bulk_insert(
            self.conn,
            "postings",
            ("entry_id", "account_id", "asset_id", "quantity", "unit_price", "price_currency"),
            [
                (i, acc[l.account], ast[l.asset], dec(l.quantity), dec(l.unit_price), l.price_currency)
                for i, e in zip(ids, entries)
                for l in e.legs
            ],
        )
        return ids


def entry_count(conn: Connection) -> int:
    return conn.exec_driver_sql("SELECT COUNT(*) FROM journal_entries").scalar_one()


def posting_count(conn: Connection) -> int:
    return conn.exec_driver_sql("SELECT COUNT(*) FROM postings").scalar_one()
