"""What both Alembic environments do; each env.py only names its metadata."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection, MetaData
from sqlmodel.sql.sqltypes import AutoString


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    # SQLModel's AutoString is a plain VARCHAR: render it as such so scripts need no sqlmodel.
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length!r})"
    return False


# Database objects made by hand in migrations, not by the models: full-text and trigram search.
_UNMODELLED_PREFIXES = (
    "message_fts",
    "ix_message_text_search",
    "contact_fts",
    "ix_contact_handle_trgm",
    "ix_contact_name_trgm",
)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Tell Alembic's comparison to skip the objects that have no model on purpose."""
    return not (name or "").startswith(_UNMODELLED_PREFIXES)


def run_migrations(target_metadata: MetaData) -> None:
    """Migrate the connection inbox.migrate handed over; refuse to run any other way."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("Run migrations with 'socialcare db upgrade'.")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
