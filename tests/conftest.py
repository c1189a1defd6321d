"""Shared fixtures: exact-decimal discipline, and databases on SQLite and PostgreSQL.

Every test that takes ``db_url`` or ``engine`` runs once on SQLite and once on PostgreSQL. The
PostgreSQL database is fresh for each test run (and each xdist worker) and dropped at the end. If
PostgreSQL on 127.0.0.1:5432 is down, the suite starts it with the machine's command; if it still
cannot be reached the PostgreSQL cases are skipped, except under CI=true where they fail.
"""

from __future__ import annotations

import decimal
import glob
import os
import subprocess
import time
import uuid

import pytest

PG_ADMIN_URL = os.environ.get("RECONCILE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _float_operation_trap():
    """Mixing float and Decimal anywhere in a test raises (the global context is restored after)."""
    ctx = decimal.getcontext()
    old = ctx.traps[decimal.FloatOperation]
    ctx.traps[decimal.FloatOperation] = True
    try:
        yield
    finally:
        ctx.traps[decimal.FloatOperation] = old


def _pg_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"):
            return True
    except psycopg.Error:
        return False


def _start_postgres() -> None:
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if not versions:
        return
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    for _ in range(30):
        if _pg_reachable():
            return
        time.sleep(0.5)


@pytest.fixture(scope="session")
def pg_server_url():
    """A fresh PostgreSQL database for this run; dropped at the end."""
    if not _pg_reachable():
        _start_postgres()
    if not _pg_reachable():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is not reachable and could not be started (CI=true)")
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    import psycopg

    name = f"reconcile_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _reset_pg(url: str) -> None:
    from sqlalchemy import create_engine, text

    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """An empty database URL, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("pg_server_url")
        _reset_pg(url)
        yield url


@pytest.fixture
def engine(db_url):
    """An engine on a database migrated to head."""
    from ledger.db import make_engine, upgrade

    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()
