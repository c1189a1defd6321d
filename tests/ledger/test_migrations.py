"""The models and the migrations agree; downgrade to base and upgrade again works."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from ledger.db import current_revision, downgrade, head_revision, make_engine, upgrade
from ledger.schema import metadata


def _diff(engine):
    with engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(mc, metadata)


def test_migrations__autogenerate_finds_no_difference(engine):
    assert _diff(engine) == []
    assert current_revision(engine) == head_revision()


def test_migrations__downgrade_to_base_and_upgrade_again(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert _diff(engine) == []
    upgrade(engine)  # twice is harmless
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_migrations__a_migration_that_fails_half_way_leaves_nothing(db_url):
    """A first migration stopped after some of its tables (here by an error; a killed process is the
    same to the database): nothing of it stays, and the next upgrade runs from an empty database.
    On SQLite this needs an explicit BEGIN: the driver opens a transaction only before DML, so each
    CREATE TABLE would otherwise commit on its own."""
    import pytest
    from sqlalchemy import event

    engine = make_engine(db_url)
    created = []

    def fail_on_third_table(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("CREATE TABLE"):
            created.append(statement)
            if len(created) == 3:
                raise RuntimeError("stopped half-way")

    event.listen(engine, "before_cursor_execute", fail_on_third_table)
    with pytest.raises(RuntimeError, match="half-way"):
        upgrade(engine)
    event.remove(engine, "before_cursor_execute", fail_on_third_table)
    engine.dispose()
    engine = make_engine(db_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == head_revision() and _diff(engine) == []
    engine.dispose()


def test_head_revision_constant_is_alembics_head():
    """``ledger.db.HEAD_REVISION`` (read-only commands check the schema against it without importing
    alembic) names the newest migration."""
    from ledger.db import HEAD_REVISION, head_revision

    assert HEAD_REVISION == head_revision()
