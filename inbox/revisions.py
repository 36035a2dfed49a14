"""Which migrations a database is at, read without Alembic's log lines; for probes and checks."""

from __future__ import annotations

from functools import cache

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from inbox import migrate


@cache
def heads(target: migrate.Target) -> frozenset[str]:
    """The head revisions shipped with this release."""
    return frozenset(ScriptDirectory.from_config(migrate.alembic_config(target)).get_heads())


@cache
def known_revisions(target: migrate.Target) -> frozenset[str]:
    """Every revision this release ships, heads and all before them."""
    script = ScriptDirectory.from_config(migrate.alembic_config(target))
    return frozenset(rev.revision for rev in script.walk_revisions())


def current_revisions(engine: Engine) -> frozenset[str]:
    """The revisions a database is at (read directly: Alembic's context logs on every use)."""
    if not inspect(engine).has_table("alembic_version"):
        return frozenset()
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        return frozenset(rows)


def pending_revisions(engine: Engine, target: migrate.Target) -> list[str] | None:
    """Revisions still to apply, oldest first; None when the database is at one we don't know."""
    script = ScriptDirectory.from_config(migrate.alembic_config(target))
    current = current_revisions(engine)
    if current - known_revisions(target):
        return None
    missing = []
    for rev in script.walk_revisions():
        if rev.revision in current:
            break
        missing.append(rev.revision)
    return list(reversed(missing))
