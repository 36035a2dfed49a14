"""Run each database's Alembic migrations from code: the CLI, the demo and the tests use this."""

from __future__ import annotations

from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

Target = Literal["inbox", "research"]
TARGETS: tuple[Target, ...] = ("inbox", "research")


def alembic_config(target: Target) -> Config:
    """The Alembic configuration of one database, with its scripts inside the package."""
    config = Config()
    config.set_main_option("script_location", f"inbox:migrations/{target}")
    return config


def upgrade(engine: Engine, target: Target, revision: str = "head") -> None:
    """Migrate one database to a revision (head by default)."""
    config = alembic_config(target)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def revision(engine: Engine, target: Target, message: str) -> None:
    """Autogenerate a new migration by comparing the models with a database at head."""
    config = alembic_config(target)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


def pending(engine: Engine, target: Target) -> list[str]:
    """Revisions not yet applied to a database, oldest first; empty when it is at head."""
    script = ScriptDirectory.from_config(alembic_config(target))
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    missing = []
    for rev in script.walk_revisions():
        if rev.revision in current:
            break
        missing.append(rev.revision)
    return list(reversed(missing))
