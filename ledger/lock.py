"""One writer at a time per database: a lock that dies with its holder.

PostgreSQL: a session-level advisory lock, released by the server when the holder's connection
ends (a crash included). SQLite: an exclusive ``flock`` on ``<database>.lock``, released by the
kernel when the holding process exits, however it exits. Neither leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

__all__ = ["DatabaseLocked", "database_lock"]

_PG_LOCK_KEY = 0x6270_7872  # "bpxr"


class DatabaseLocked(Exception):
    """Another sync holds the database."""


@contextmanager
def database_lock(engine: Engine, what: str = "sync", *, shared: bool = False) -> Iterator[None]:
    """The writer lock (a sync, a migration), or with ``shared=True`` a reader's lock that many
    readers hold at once (``check``) and that keeps a writer out. Never waits: held by another,
    it raises :class:`DatabaseLocked` ("another sync is running ...")."""
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        suffix = "_shared" if shared else ""
        try:
            got = conn.execute(text(f"SELECT pg_try_advisory_lock{suffix}(:k)"), {"k": _PG_LOCK_KEY}).scalar_one()
            conn.commit()
            if not got:
                raise DatabaseLocked(f"another {what} is running on this database; try again when it has finished")
            try:
                yield
            finally:
                conn.execute(text(f"SELECT pg_advisory_unlock{suffix}(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
        finally:
            conn.close()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    path = Path(database).expanduser().resolve().with_name(Path(database).name + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseLocked(f"another {what} is running on this database; try again when it has finished") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
