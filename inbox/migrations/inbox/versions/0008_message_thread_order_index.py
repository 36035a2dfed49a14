"""message thread order index

Revision ID: 0008_inbox
Revises: 0007_inbox
Create Date: 2026-11-23 04:55:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_inbox"
down_revision: str | None = "0007_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain CREATE INDEX, not a batch operation: under SQLite a batch copy of "message" would drop
# the full-text triggers of migration 0005.
def upgrade() -> None:
    op.create_index(
        "ix_message_conversation_created",
        "message",
        ["conversation_id", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_message_conversation_created", table_name="message")
