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

from .bulk import allocate_ids, bulk_insert
from .money import plain
from .schema import Account, Asset
from .types import db_time

__all__ = ["Leg", "Entry", "LedgerError", "UnbalancedEntry", "Journal", "ACCOUNT_TYPES", "check_entry", "RowEncoder", "Encoded"]

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

    def __reduce__(self):  # crosses process boundaries (importers.sync.repost's workers)
        return (UnbalancedEntry, (self.key, self.residue))


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


_ZERO_D = Decimal(0)
_NULL = "\\N"  # COPY text's NULL
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_line(row: Sequence) -> str:
    """One row in PostgreSQL's COPY text format, every field escaped (the slow, general path)."""
    return "\t".join("\\N" if v is None else (v.translate(_COPY_ESCAPES) if type(v) is str else str(v)) for v in row) + "\n"


class Encoded(NamedTuple):
    """Checked entries as the writer inserts them: lists of row tuples (SQLite) or COPY text (PostgreSQL)."""

    count: int
    entries: list[tuple] | bytes
    postings: list[tuple] | bytes


class RowEncoder:
    """Checks entries and turns them into the rows the writer inserts, with no connection (so it can
    run in another process, as ``importers.sync.repost``'s workers do).

    Every entry is checked as :func:`check_entry` does (legs present, aware time, Decimal finite
    quantities, accounts under the five types, zero sum per asset), and :func:`check_entry` itself
    raises the error for any entry that fails. Times become the text the driver stores
    (``ledger.types.db_time`` on SQLite; ISO-8601 with its offset for PostgreSQL's COPY) and
    quantities their exact fixed-point text. ``accounts`` and ``assets`` map names to ids; a name
    not in them makes :meth:`encode` return the names to resolve first (:meth:`Journal.resolve`).
    """

    def __init__(self, dialect: str, accounts: dict[str, int] | None = None, assets: dict[str, int] | None = None):
        self.sqlite = dialect == "sqlite"
        self.accounts: dict[str, int] = {} if accounts is None else accounts
        self.assets: dict[str, int] = {} if assets is None else assets

    def encode(self, entries: Sequence[Entry], ids: Sequence[int]) -> tuple[Encoded | None, set[str], set[str]]:
        """``(rows, set(), set())``, or ``(None, accounts, assets)`` naming what has no id yet.
        Raises (a :class:`LedgerError`) before returning anything if one entry is refused."""
        sqlite, utc, zero = self.sqlite, timezone.utc, _ZERO_D
        acc_get, ast_get = self.accounts.get, self.assets.get
        miss_acc: set[str] = set()
        miss_ast: set[str] = set()
        entry_rows: list = []
        posting_rows: list = []
        add_entry, add_posting = entry_rows.append, posting_rows.append
        for i, e in zip(ids, entries):
            key, t, kind, description, legs, venue, endpoint, source_key, raw_id = e
            if not legs or t.tzinfo is None:
                check_entry(e)
            sums: dict[str, Decimal] = {}
            for account, asset, q, price, currency in legs:
                if type(q) is not Decimal or not q.is_finite():
                    check_entry(e)
                sums[asset] = sums.get(asset, zero) + q
                aid = acc_get(account)
                if aid is None:
                    if not account.startswith(_TYPE_PREFIXES):
                        check_entry(e)
                    miss_acc.add(account)
                sid = ast_get(asset)
                if sid is None:
                    miss_ast.add(asset)
                if miss_acc or miss_ast:
                    continue
                if sqlite:
                    add_posting((i, aid, sid, format(q, "f"), None if price is None else format(price, "f"), currency))
                elif price is None and currency is None:
                    add_posting(f"{i}\t{aid}\t{sid}\t{q:f}\t\\N\t\\N\n")
                else:
                    add_posting(_copy_line((i, aid, sid, format(q, "f"), None if price is None else format(price, "f"), currency)))
            for total in sums.values():
                if total:
                    check_entry(e)
            if sqlite:
                if t.tzinfo is not utc:
                    t = t.astimezone(utc)
                add_entry((i, key, t.replace(tzinfo=None).isoformat(" ", "microseconds"), kind, description, venue, endpoint, source_key, raw_id))
            else:
                add_entry(f"{i}\t{key}\t{t.isoformat()}\t{kind}\t{description}\t{venue}\t{endpoint}\t{source_key}\t{_NULL if raw_id is None else raw_id}\n")
        if miss_acc or miss_ast:
            return None, miss_acc, miss_ast
        n = len(entry_rows)
        if sqlite:
            return Encoded(n, entry_rows, posting_rows), miss_acc, miss_ast
        text_e, text_p = "".join(entry_rows), "".join(posting_rows)
        # One scan per batch instead of escaping every field: any backslash, CR, or tab/newline
        # beyond the separators means some field needs escaping, and then every line is rebuilt.
        if "\\" in text_e or "\r" in text_e or text_e.count("\t") != 8 * n or text_e.count("\n") != n:
            text_e = "".join(
                _copy_line((i, e.key, e.time.isoformat(), e.kind, e.description, e.venue_account, e.endpoint, e.source_key, e.raw_record_id))
                for i, e in zip(ids, entries)
            )
        if "\r" in text_p or text_p.count("\n") != len(posting_rows) or text_p.count("\t") != 5 * len(posting_rows):
            raise LedgerError("posting rows do not fit COPY text")  # ids and decimals only; currency is escaped
        return Encoded(n, text_e.encode(), text_p.encode()), miss_acc, miss_ast


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
        col = table.c[key_col]
        for row in self.conn.execute(select(table.c.id, col).where(col.in_(sorted(missing)))):
            cache[row[1]] = row[0]
        still = sorted(n for n in missing if n not in cache)
        if still:
            rows = [{key_col: n, **(extra(n) if extra else {})} for n in still]
            self.conn.execute(table.insert(), rows)
            for row in self.conn.execute(select(table.c.id, col).where(col.in_(still))):
                cache[row[1]] = row[0]

    def account_id(self, name: str) -> int:
        self._ensure(Account, self._accounts, "name", [name], lambda n: {"type": n.split(":", 1)[0]})
        return self._accounts[name]

    def asset_id(self, symbol: str) -> int:
        self._ensure(Asset, self._assets, "symbol", [symbol])
        return self._assets[symbol]

    def resolve(self, accounts: Iterable[str], assets: Iterable[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Ids of the named accounts and assets, creating those the database lacks."""
        accounts, assets = set(accounts), set(assets)
        self._ensure(Account, self._accounts, "name", accounts, lambda n: {"type": n.split(":", 1)[0]})
        self._ensure(Asset, self._assets, "symbol", assets)
        return {n: self._accounts[n] for n in accounts}, {n: self._assets[n] for n in assets}

    # -- the writer --------------------------------------------------------------------------------
    _ENTRY_COLUMNS = ("id", "entry_key", "timestamp", "kind", "description", "venue_account", "endpoint", "source_key", "raw_record_id")
    _POSTING_COLUMNS = ("entry_id", "account_id", "asset_id", "quantity", "unit_price", "price_currency")

    def _ensure_all(self, entries: Sequence[Entry]) -> None:
        self._ensure(Account, self._accounts, "name", {l.account for e in entries for l in e.legs}, lambda n: {"type": n.split(":", 1)[0]})
        self._ensure(Asset, self._assets, "symbol", {l.asset for e in entries for l in e.legs})

    def _rows(self, entries: Sequence[Entry], ids: Sequence[int]) -> tuple[list[tuple], list[tuple]]:
        """The rows to insert (pure Python; ids of accounts and assets must be resolved)."""
        acc, ast = self._accounts, self._assets
        conn = self.conn
        if self.dialect == "postgresql":
            entry_rows = [(i, e.key, e.time, e.kind, e.description, e.venue_account, e.endpoint, e.source_key, e.raw_record_id) for i, e in zip(ids, entries)]
            posting_rows = [(i, acc[l.account], ast[l.asset], l.quantity, l.unit_price, l.price_currency) for i, e in zip(ids, entries) for l in e.legs]
        else:
            entry_rows = [
                (i, e.key, db_time(conn, e.time), e.kind, e.description, e.venue_account, e.endpoint, e.source_key, e.raw_record_id)
                for i, e in zip(ids, entries)
            ]
            posting_rows = [
                (i, acc[l.account], ast[l.asset], format(l.quantity, "f"), None if l.unit_price is None else format(l.unit_price, "f"), l.price_currency)
                for i, e in zip(ids, entries)
                for l in e.legs
            ]
        return entry_rows, posting_rows

    def _write(self, entry_rows: list[tuple], posting_rows: list[tuple]) -> None:
        bulk_insert(self.conn, "journal_entries", self._ENTRY_COLUMNS, entry_rows)
        bulk_insert(self.conn, "postings", self._POSTING_COLUMNS, posting_rows)

    def post(self, entries: Sequence[Entry]) -> list[int]:
        """Write balanced entries and their postings; return the new entry ids.

        Every entry is checked before anything is written: one unbalanced entry refuses the batch.
        """
        if not entries:
            return []
        for e in entries:
            check_entry(e)
        self._ensure_all(entries)
        ids = allocate_ids(self.conn, "journal_entries", len(entries))
        self._write(*self._rows(entries, ids))
        return ids

    def pipeline(self) -> "Pipeline":
        """A writer that overlaps database writes with the caller's next batch (see :class:`Pipeline`)."""
        return Pipeline(self)


class Pipeline:
    """Posting in bulk with the database work on a second thread.

    The caller prepares batch k+1 (rules, checks, rows: Python work, here or in other processes)
    while the writer thread inserts batch k (the drivers release the GIL inside SQLite's step and
    while PostgreSQL processes a COPY). Everything runs on the one connection and transaction of the
    journal; the caller must not touch that connection until :meth:`close` (``submit`` runs other
    statements on the writer thread, in order). The caller chooses entry ids (unused ones), so this
    is for a writer that holds the database lock (``ledger.lock``), such as ``importers.sync.repost``.
    """

    def __init__(self, journal: Journal):
        import queue
        import threading

        self.journal = journal
        self._q: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._abort = False
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._q.get()
            try:
                if job is None:
                    return
                if self._error is None and not self._abort:
                    job()
            except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
                self._error = exc
            finally:
                self._q.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def drain(self) -> None:
        """Wait until every submitted write is done (then the connection is free)."""
        self._q.join()
        self._raise()

    def submit(self, fn) -> None:
        self._raise()
        self._q.put(fn)

    def encoder(self) -> RowEncoder:
        """A :class:`RowEncoder` sharing this journal's account and asset ids (for this process)."""
        return RowEncoder(self.journal.dialect, self.journal._accounts, self.journal._assets)

    def resolve(self, accounts: Iterable[str], assets: Iterable[str]) -> tuple[dict[str, int], dict[str, int]]:
        """:meth:`Journal.resolve` once the writes queued so far are done (they share the connection)."""
        self.drain()
        return self.journal.resolve(accounts, assets)

    def post_encoded(self, rows: Encoded) -> None:
        """Queue rows made by :meth:`RowEncoder.encode` (which checked every entry); the caller chose
        the entry ids (unused ones)."""
        if rows.count:
            j = self.journal
            self.submit(lambda: (bulk_insert(j.conn, "journal_entries", j._ENTRY_COLUMNS, rows.entries), bulk_insert(j.conn, "postings", j._POSTING_COLUMNS, rows.postings)))

    def close(self) -> None:
        """Finish every write; on PostgreSQL move the id sequence past the ids used (it never goes back)."""
        self.drain()
        self._q.put(None)
        self._thread.join()
        j = self.journal
        if j.dialect == "postgresql":
            j.conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('journal_entries', 'id'),"
                " GREATEST(nextval(pg_get_serial_sequence('journal_entries', 'id')), (SELECT COALESCE(MAX(id), 1) FROM journal_entries)))"
            )

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # stop the thread without running what is queued; the caller's transaction rolls back
            self._abort = True
            try:
                self._q.put(None)
                self._thread.join(timeout=30)
            except Exception:  # noqa: BLE001
                pass


def entry_count(conn: Connection) -> int:
    return conn.exec_driver_sql("SELECT COUNT(*) FROM journal_entries").scalar_one()


def posting_count(conn: Connection) -> int:
    return conn.exec_driver_sql("SELECT COUNT(*) FROM postings").scalar_one()
