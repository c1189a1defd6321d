"""Bulk writes and id allocation shared by the journal writer and the store (no ORM per row)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, ForeignKeyConstraint, UniqueConstraint
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

__all__ = ["allocate_ids", "bulk_insert", "journal_rebuild", "IntegrityViolation"]


class IntegrityViolation(Exception):
    """A bulk load left a reference dangling (checked before commit; the transaction rolls back)."""


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


def bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]] | bytes) -> None:
    """Insert many rows with the driver's fastest path (COPY on PostgreSQL, executemany on SQLite).
    On PostgreSQL ``rows`` may also be the data already in COPY text format (bytes)."""
    if not rows:
        return
    cols = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
                if isinstance(rows, bytes):
                    cp.write(rows)
                else:
                    for row in rows:
                        cp.write_row(row)
        finally:
            cur.close()
    else:
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(rows))


def _journal_constraints():
    """What a rebuild relaxes, exactly as the tables declare it (so what is re-created is what the
    migrations made): the postings' foreign keys, the entries' unique keys, and the secondary
    (non-unique) indexes of both tables."""
    from .schema import JournalEntry, Posting

    fks = sorted((c for c in Posting.constraints if isinstance(c, ForeignKeyConstraint)), key=lambda c: c.name)
    uniques = sorted((c for c in JournalEntry.constraints if isinstance(c, UniqueConstraint)), key=lambda c: c.name)
    indexes = sorted((i for t in (JournalEntry, Posting) for i in t.indexes if not i.unique), key=lambda i: i.name)
    return fks, uniques, indexes


@contextmanager
def journal_rebuild(engine: Engine) -> Iterator[Connection]:
    """One transaction for rewriting most of the journal in bulk (``importers.sync.repost``), by the
    one writer that holds the database lock.

    Checking references row by row is what a bulk load pays most for (PostgreSQL's foreign-key
    triggers on postings were 80 % of a COPY; SQLite's per-row lookups 25 % of an insert), and
    so is maintaining secondary indexes row by row. So for the load the postings' foreign keys are
    relaxed and the non-unique indexes of ``journal_entries`` and ``postings`` dropped; before the
    commit the indexes are rebuilt (one sort each) and every reference is checked over the whole
    tables at once: on PostgreSQL by re-adding the constraints (``ADD CONSTRAINT ... FOREIGN KEY``
    validates every row), on SQLite by ``PRAGMA foreign_key_check``, whose findings refuse the
    commit (:class:`IntegrityViolation`). The entries' unique key (``entry_key``) is the same on
    PostgreSQL: dropped for the load and re-added before the commit (one sort, which fails on a
    duplicate; a B-tree insert of a text key per entry was 5-10 % of the rebuild); SQLite
    cannot drop a column's own unique index, so there it stays enforced row by row. The schema after
    the commit is the schema before; nothing half-checked is ever committed. Primary keys and the
    entries' link to raw records stay enforced row by row throughout (dropping that foreign key
    would lock ``raw_records`` against the workers that read it).

    While it runs, readers of ``postings`` and ``journal_entries`` wait on PostgreSQL (the DDL
    takes their exclusive locks until the commit) rather than seeing the old journal; raw records
    stay readable (other connections may read them, as ``repost`` does).
    """
    fks, uniques, indexes = _journal_constraints()
    with engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        sqlite = conn.dialect.name == "sqlite"
        # SQLite's foreign_keys pragma is a no-op inside a transaction: set it before the first write.
        fk_off = sqlite and not dbapi.in_transaction and dbapi.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # type: ignore[union-attr]
        if fk_off:
            dbapi.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with conn.begin():
                if sqlite:
                    # pysqlite opens a transaction only before DML; DDL before it would autocommit, and a
                    # kill mid-rebuild would leave the indexes dropped. Open it explicitly: everything
                    # below, DDL included, then commits or rolls back as one.
                    dbapi.execute("BEGIN")  # type: ignore[union-attr]
                else:
                    for c in (*fks, *uniques):
                        conn.execute(DropConstraint(c))
                for ix in indexes:
                    conn.execute(DropIndex(ix, if_exists=True))
                yield conn
                for ix in indexes:
                    conn.execute(CreateIndex(ix, if_not_exists=True))
                if sqlite:
                    if fk_off:
                        bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                        if bad:
                            table, rowid, parent, _ = bad[0]
                            raise IntegrityViolation(f"{len(bad)} dangling reference(s), e.g. {table} row {rowid} -> {parent}")
                else:
                    for c in (*uniques, *fks):  # a duplicate entry key or a dangling reference fails here: all rolls back
                        conn.execute(AddConstraint(c))
        finally:
            if fk_off:
                dbapi.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
