"""Alembic environment of the inbox database; run through inbox.migrate, never on import."""

from sqlmodel import SQLModel

import inbox.models  # noqa: F401  (registers the tables)
from inbox.migrations.runner import run_migrations

run_migrations(SQLModel.metadata)
