"""reply submission key

Revision ID: 0013_inbox
Revises: 0012_inbox
Create Date: 2026-11-23 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_inbox"
down_revision: str | None = "0012_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ADD COLUMN and CREATE INDEX, not batch operations: under SQLite a batch copy of
# "message" would drop the full-text triggers of migration 0005.
def upgrade() -> None:
    op.add_column("message", sa.Column("submission_key", sa.String(length=64), nullable=True))
    op.create_index(
        "ux_message_submission", "message", ["conversation_id", "submission_key"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ux_message_submission", table_name="message")
    op.drop_column("message", "submission_key")
