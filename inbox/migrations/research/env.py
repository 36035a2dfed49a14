"""Alembic environment of the research database; run through inbox.migrate, never on import."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from anonymizer.store import metadata as target_metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if _connection is None:
    raise RuntimeError("Run migrations with 'socialcare db upgrade'.")
_run(_connection)
