"""Alembic environment of the research store; run through inbox.migrate, never on import."""

from anonymizer.store import metadata
from inbox.migrations.runner import run_migrations

run_migrations(metadata)
