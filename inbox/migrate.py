"""Run each database's Alembic migrations from code: the CLI, the demo and the tests use this."""

from __future__ import annotations

from typing import Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

Target = Literal["inbox", "research"]
TARGETS: tuple[Target, ...] = ("inbox", "research")


def alembic_config(target: Target) -> Config:
    """The Alembic configuration of one database, with its scripts inside the package."""
    config = Config()
    config.set_main_option("script_location", f"inbox:migrations/{target}")
    return config


class MigrationError(RuntimeError):
    """A migration left the database inconsistent; its transaction was rolled back."""


def upgrade(engine: Engine, target: Target, revision: str = "head") -> None:
    """Migrate one database to a revision (head by default), in one transaction.

    SQLite alters a table by rebuilding it (Alembic's batch mode: copy, drop, rename), and with
    foreign keys on, dropping the old table fails while rows point at it. So on SQLite foreign
    keys are off while migrating (the switch works only outside a transaction) and checked as a
    whole before the transaction commits.
    """
    config = alembic_config(target)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        tables = sorted({str(row[0]) for row in broken})
                        raise MigrationError(f"rows point at nothing in: {', '.join(tables)}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def revision(engine: Engine, target: Target, message: str) -> None:
    """Autogenerate a new migration by comparing the models with a database at head."""
    config = alembic_config(target)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


def pending(engine: Engine, target: Target) -> list[str]:
    """Revisions not yet applied to a database, oldest first; empty when it is at head (or at
    a newer release's revision, which this release cannot migrate)."""
    from inbox.revisions import pending_revisions  # it builds on this module

    return pending_revisions(engine, target) or []
