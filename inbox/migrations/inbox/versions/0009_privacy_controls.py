"""privacy controls: dpo role, second factor, sessions, audit chain, consent, tombstones,
retention policy, settings, login throttling

Revision ID: 0009_inbox
Revises: 0008_inbox
Create Date: 2026-11-23 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import inbox.types

revision: str = "0009_inbox"
down_revision: str | None = "0008_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
AT = inbox.types.UTCDateTime(timezone=True)

# The audit trail refuses changes and deletions in the database itself; the hash chain shows
# it when someone with the rights to drop these triggers changed it anyway.
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER auditevent_append_only_{what} BEFORE {what.upper()} ON auditevent
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"""
    for what in ("update", "delete")
]
POSTGRES_FUNCTION = """CREATE FUNCTION auditevent_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'audit events are append-only'; END; $$ LANGUAGE plpgsql"""
POSTGRES_TRIGGER = """CREATE TRIGGER auditevent_append_only BEFORE UPDATE OR DELETE ON auditevent
FOR EACH ROW EXECUTE FUNCTION auditevent_append_only()"""


# Plain ADD COLUMN and CREATE INDEX, not batch operations: under SQLite a batch copy of
# "message" or "contact" would drop their full-text triggers.
def upgrade() -> None:
    op.add_column("user", sa.Column("totp_secret_encrypted", sa.LargeBinary(), nullable=True))
    op.add_column("user", sa.Column("totp_enabled_at", AT, nullable=True))
    op.add_column("user", sa.Column("totp_last_step", sa.Integer(), nullable=True))
    op.add_column(
        "user", sa.Column("recovery_codes", JSON, nullable=False, server_default=sa.text("'[]'"))
    )
    op.add_column(
        "user", sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "account",
        sa.Column("raw_retention_days", sa.Integer(), nullable=False, server_default="7"),
    )
    op.add_column(
        "account",
        sa.Column("pseudonym_key_days", sa.Integer(), nullable=False, server_default="30"),
    )
    op.add_column("account", sa.Column("raw_purged_before", AT, nullable=True))
    op.add_column(
        "conversation",
        sa.Column("initiated_by_agent", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("auditevent", sa.Column("contact_id", sa.Integer(), nullable=True))
    op.add_column("auditevent", sa.Column("hash", sa.String(length=64), nullable=True))
    op.create_index("ix_auditevent_contact_id", "auditevent", ["contact_id"], unique=False)
    op.create_index(
        "ix_message_account_received", "message", ["account_id", "received_at"], unique=False
    )
    op.create_index("ix_message_author_contact", "message", ["author_contact_id"], unique=False)
    op.create_table(
        "consenttext",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("purpose", "language", "version"),
    )
    op.create_table(
        "consentrecord",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("given_at", AT, nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("text_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by_user_id", sa.Integer(), nullable=True),
        sa.Column("withdrawn_at", AT, nullable=True),
        sa.Column("withdrawn_by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["text_id"], ["consenttext.id"]),
        sa.ForeignKeyConstraint(["recorded_by_user_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["withdrawn_by_user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_consentrecord_contact",
        "consentrecord",
        ["contact_id", "channel", "purpose"],
        unique=False,
    )
    op.create_table(
        "tombstone",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("hash"),
    )
    op.create_table(
        "storedkey",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "setting",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("updated_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "loginthrottle",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", AT, nullable=False),
        sa.Column("locked_until", AT, nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER auditevent_append_only ON auditevent")
        op.execute("DROP FUNCTION auditevent_append_only()")
    else:
        for what in ("update", "delete"):
            op.execute(f"DROP TRIGGER auditevent_append_only_{what}")
    op.drop_table("loginthrottle")
    op.drop_table("setting")
    op.drop_table("storedkey")
    op.drop_table("tombstone")
    op.drop_index("ix_consentrecord_contact", table_name="consentrecord")
    op.drop_table("consentrecord")
    op.drop_table("consenttext")
    op.drop_index("ix_message_author_contact", table_name="message")
    op.drop_index("ix_message_account_received", table_name="message")
    op.drop_index("ix_auditevent_contact_id", table_name="auditevent")
    for table, column in (
        ("auditevent", "hash"),
        ("auditevent", "contact_id"),
        ("conversation", "initiated_by_agent"),
        ("account", "raw_purged_before"),
        ("account", "pseudonym_key_days"),
        ("account", "raw_retention_days"),
        ("user", "session_version"),
        ("user", "recovery_codes"),
        ("user", "totp_last_step"),
        ("user", "totp_enabled_at"),
        ("user", "totp_secret_encrypted"),
    ):
        op.drop_column(table, column)
