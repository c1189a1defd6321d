"""Engines, migrations and the ledger's read queries (balances, trial balance).

``alembic`` is wrapped here: ``upgrade(url)`` is what ``reconcile init`` runs. The migration
scripts ship inside the installed package (the top-level ``migrations`` package), so a
non-editable install can create and upgrade databases.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .money import EXACT, D
from .types import db_time

_add = EXACT.add

__all__ = [
    "DatabaseError",
    "make_engine",
    "upgrade",
    "ensure_schema",
    "database_is_new",
    "require_ledger",
    "require_imported",
    "downgrade",
    "current_revision",
    "head_revision",
    "alembic_config",
    "trial_balance",
    "balances",
    "dsum",
    "driver_rows",
]


class DatabaseError(Exception):
    """A database URL that cannot be used, or a database that cannot be reached."""


class _DecimalSum:
    """SQLite aggregate: exact sum of decimal text (SQLite's own SUM goes through float)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: object) -> None:
        # Added in ``EXACT`` (60 digits): the thread's default context (28) could round a long sum.
        if type(value) is str:  # the stored form: decimal text, checked when it was posted
            self.total = _add(self.total, Decimal(value))
        elif value is not None:
            self.total = _add(self.total, D(value if isinstance(value, int) else str(value)))

    def finalize(self) -> str:
        return format(self.total, "f")


def _on_sqlite_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    dbapi_conn.create_aggregate("dsum", 1, _DecimalSum)  # type: ignore[arg-type]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA cache_size=-65536")  # 64 MiB: index maintenance of bulk writes stays in memory
    cur.close()


def make_engine(url: str, **kwargs: object) -> Engine:
    """An engine for a SQLite or PostgreSQL URL, with exact decimal sums on SQLite."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"database URL {url!r} is not a valid SQLAlchemy URL") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise DatabaseError(f"database URL {parsed.render_as_string(hide_password=True)!r}: only sqlite and postgresql are supported")
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        file = Path(parsed.database).expanduser().resolve()
        parent = file.parent
        if not parent.is_dir():
            raise DatabaseError(f"database URL {url!r}: directory {parent} does not exist")
        _check_sqlite_file(file)
    if backend == "postgresql":
        # No server-side prepared statements: psycopg prepares a query after 5 runs and PostgreSQL may
        # then switch to a generic plan, which for `natural_key IN (...)` scans all raw records (3 s a
        # page at a million records, instead of milliseconds). Planning each query is cheap here.
        connect_args = dict(kwargs.pop("connect_args", {}) or {})  # type: ignore[arg-type]
        connect_args.setdefault("prepare_threshold", None)
        kwargs["connect_args"] = connect_args
    engine = create_engine(parsed, **kwargs)  # type: ignore[arg-type]
    if backend == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
    return engine


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_sqlite_file(file: Path) -> None:
    """A file the URL names must be a SQLite database (or empty, or absent: then it is created)."""
    if file.is_dir():
        raise DatabaseError(f"database file {file} is a directory, not a SQLite database")
    try:
        with file.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DatabaseError(f"database file {file} cannot be read: {exc.strerror}") from None
    if head and head != _SQLITE_MAGIC:
        raise DatabaseError(f"database file {file} is not a SQLite database")


def dsum(conn: Connection, expr: str) -> str:
    """The SQL for an exact sum of a decimal column on this connection's dialect."""
    return f"dsum({expr})" if conn.dialect.name == "sqlite" else f"SUM({expr})"


# -- migrations ------------------------------------------------------------------------------------
def alembic_config(url: str | None = None):
    from alembic.config import Config

    import migrations

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[tuple[object, Connection]]:
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # One transaction for the whole migration: the driver opens one only before DML, so each
            # CREATE TABLE would commit on its own, and a process killed half-way through the first
            # migration would leave tables without a revision (the next run then fails on them).
            conn.exec_driver_sql("BEGIN")
        cfg.attributes["connection"] = conn
        yield cfg, conn


def upgrade(engine: Engine, revision: str = "head", *, locked: bool = False) -> None:
    """Migrate to ``revision`` holding the database's writer lock (``ledger.lock``): two processes
    starting on a fresh database never race in the migration; the one that does not get the lock
    stops with "another sync is running". ``locked=True``: the caller already holds it.
    A database whose revision this version does not know (a newer version wrote it) is refused."""
    from alembic import command

    if not locked:
        from .lock import database_lock

        with database_lock(engine):
            upgrade(engine, revision, locked=True)
        return
    _check_known_revision(engine)
    with _migration_connection(engine) as (cfg, _):
        command.upgrade(cfg, revision)  # type: ignore[arg-type]


def database_is_new(engine: Engine) -> bool:
    """True when the database holds no ledger yet (asked without creating anything: a SQLite file
    that does not exist, or is empty, stays so)."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            return True
        file = Path(database).expanduser()
        if not file.exists() or file.stat().st_size == 0:
            return True
    return _stored_revision(engine) is None


def require_ledger(engine: Engine) -> None:
    """Refuse (``DatabaseError``, one line) a database that holds no ledger: never initialized nor
    synced, a mistyped URL say; asked without creating anything."""
    if database_is_new(engine):
        raise DatabaseError(f"no ledger at {engine.url.render_as_string(hide_password=True)}: run `reconcile sync` first (or check the [database] url)")


def require_imported(engine: Engine) -> None:
    """Refuse (``DatabaseError``, one line) a journal that is empty because nothing was ever imported
    (no sync state) or because a first sync that defers posting stopped before it posted (raw records
    waiting): a command's figures from it would be zeros that look complete. The schema is at head."""
    shown = engine.url.render_as_string(hide_password=True)
    with engine.connect() as conn:
        if conn.exec_driver_sql("SELECT 1 FROM journal_entries LIMIT 1").first() is not None:
            return
        if conn.exec_driver_sql("SELECT 1 FROM raw_records WHERE status = 'posted' LIMIT 1").first() is not None:
            # A first sync that defers posting (PostgreSQL, importers.sync.defer_first_sync) and did not finish.
            raise DatabaseError(f"the ledger at {shown} holds records not posted yet (a first sync did not finish): run `reconcile sync`")
        if conn.exec_driver_sql("SELECT 1 FROM sync_state LIMIT 1").first() is None:
            raise DatabaseError(f"the ledger at {shown} is empty (nothing was ever imported into it): run `reconcile sync` first")


#: The newest migration's revision (``tests/ledger/test_migrations.py`` checks it is alembic's head):
#: known without importing alembic, which costs a read-only command a third of its start-up.
HEAD_REVISION = "0008"


def _stored_revision(engine: Engine) -> str | None:
    """The database's schema revision by one query (alembic's own check imports alembic: 0.1 s)."""
    with engine.connect() as conn:
        try:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except Exception:  # noqa: BLE001 - no version table: an empty or foreign database
            return None


def ensure_schema(engine: Engine, *, locked: bool = False) -> None:
    """Migrate to head unless the database is there already (then nothing is locked or written)."""
    if _stored_revision(engine) != HEAD_REVISION:
        upgrade(engine, locked=locked)


def _check_known_revision(engine: Engine) -> None:
    from alembic.script import ScriptDirectory

    rev = current_revision(engine)
    if rev is None:
        return
    script = ScriptDirectory.from_config(alembic_config())
    known = {s.revision for s in script.walk_revisions()}
    if rev not in known:
        raise DatabaseError(
            f"database {engine.url.render_as_string(hide_password=True)} is at schema revision {rev!r}, which this version "
            f"of reconcile does not know (a newer version wrote it): upgrade reconcile"
        )


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    with _migration_connection(engine) as (cfg, _):
        command.downgrade(cfg, revision)  # type: ignore[arg-type]


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


# -- read queries ----------------------------------------------------------------------------------
def trial_balance(conn: Connection) -> dict[str, Decimal]:
    """Sum of every posting per asset. Zero for every asset in a correct ledger."""
    rows = conn.execute(
        text(f"SELECT a.symbol, {dsum(conn, 'p.quantity')} FROM postings p JOIN assets a ON a.id = p.asset_id GROUP BY a.symbol ORDER BY a.symbol")
    )
    return {sym: D(str(total)) for sym, total in rows}


def balances(conn: Connection, *, prefix: str | None = None, until=None, starts: tuple[str, ...] = ()) -> dict[tuple[str, str], Decimal]:
    """Balance per (account, asset), in (account, asset) order, optionally for accounts under ``prefix``
    and whose names start with one of ``starts`` (matched exactly: no LIKE wildcards, case-sensitive on
    both databases) and entries up to ``until``: one scan of the postings, grouped by the integer ids (the
    names are mapped after: grouping by the joined names sorted every posting's text)."""
    accounts = {i: name for i, name in conn.exec_driver_sql("SELECT id, name FROM accounts")}
    prefix = prefix or None  # an empty prefix filters nothing
    where = []
    params: dict[str, object] = {}
    if prefix or starts:
        under = prefix + ":" if prefix else None
        ids = sorted(i for i, name in accounts.items()
                     if (prefix is None or name == prefix or name.startswith(under)) and (not starts or any(name.startswith(s) for s in starts)))
        if not ids:
            return {}
        where.append("p.account_id IN (" + ", ".join(str(int(i)) for i in ids) + ")")
    join = ""
    if until is not None:
        join = " JOIN journal_entries e ON e.id = p.entry_id"
        where.append("e.timestamp <= :until")
        params["until"] = db_time(conn, until)
    sql = (f"SELECT p.account_id, p.asset_id, {dsum(conn, 'p.quantity')} FROM postings p" + join
           + (" WHERE " + " AND ".join(where) if where else "") + " GROUP BY p.account_id, p.asset_id")
    rows = conn.execute(text(sql), params).all()
    symbols = {i: sym for i, sym in conn.exec_driver_sql("SELECT id, symbol FROM assets")}
    return dict(sorted(((accounts[a], symbols[s]), D(str(total))) for a, s, total in rows))


def driver_rows(conn: Connection, sql: str, params: dict[str, object], chunk: int = 20_000) -> Iterator[tuple]:
    """The rows of ``sql`` (``:name`` parameters, on either database) from the driver's own cursor, a
    chunk at a time: for the large reads, where SQLAlchemy's per-row objects cost more than the work on
    them. Runs in the caller's transaction."""
    if conn.dialect.name != "sqlite":
        import re

        # ``:name`` outside quoted literals (``'Expenses:Fees:%'`` stays as it is) becomes ``%(name)s``.
        sql = re.sub(r"('[^']*')|(?<!:):([A-Za-z_]\w*)", lambda m: m.group(1) or f"%({m.group(2)})s", sql.replace("%", "%%"))
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql, params)
        while True:
            rows = cur.fetchmany(chunk)
            if not rows:
                return
            yield from rows
    finally:
        cur.close()
