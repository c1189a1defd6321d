"""Alembic environment: run against the connection the CLI hands over, or a URL."""

from __future__ import annotations

from alembic import context

from ledger.db import make_engine
from ledger.schema import metadata

config = context.config
target_metadata = metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
