"""ids never reused on SQLite

Revision ID: 0015_inbox
Revises: 0014_inbox
Create Date: 2026-11-23 11:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_inbox"
down_revision: str | None = "0014_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Without AUTOINCREMENT, SQLite hands the highest deleted id to the next row. After an erasure
# the next new contact would become "contact 17" too, and the audit trail's earlier entries
# about contact 17 (who viewed, exported, erased it) would seem to be about them; links in old
# notes and bookmarks would open their conversations. PostgreSQL's sequences never go back, so
# this touches SQLite only. The tables are rebuilt (Alembic's batch copy), which drops their
# full-text triggers; they are recreated afterwards.
TABLES = ("account", "contact", "conversation", "message")

_MESSAGE_TRIGGERS = [
    "CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN "
    "INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER message_fts_update AFTER UPDATE OF text ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
]
_CONTACT_TRIGGERS = [
    "CREATE TRIGGER contact_fts_insert AFTER INSERT ON contact BEGIN "
    "INSERT INTO contact_fts(rowid, handle, display_name) "
    "VALUES (new.id, coalesce(new.handle, ''), coalesce(new.display_name, '')); END",
    "CREATE TRIGGER contact_fts_delete AFTER DELETE ON contact BEGIN "
    "INSERT INTO contact_fts(contact_fts, rowid, handle, display_name) "
    "VALUES ('delete', old.id, coalesce(old.handle, ''), coalesce(old.display_name, '')); END",
    "CREATE TRIGGER contact_fts_update AFTER UPDATE OF handle, display_name ON contact BEGIN "
    "INSERT INTO contact_fts(contact_fts, rowid, handle, display_name) "
    "VALUES ('delete', old.id, coalesce(old.handle, ''), coalesce(old.display_name, '')); "
    "INSERT INTO contact_fts(rowid, handle, display_name) "
    "VALUES (new.id, coalesce(new.handle, ''), coalesce(new.display_name, '')); END",
]


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
    for statement in _MESSAGE_TRIGGERS + _CONTACT_TRIGGERS:
        op.execute(statement)


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
