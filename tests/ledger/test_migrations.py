"""The models and the migrations agree; downgrade to base and upgrade again works."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from ledger.db import current_revision, downgrade, head_revision, make_engine, upgrade
from ledger.schema import Base


def _diff(engine):
    with engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(mc, Base.metadata)


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
