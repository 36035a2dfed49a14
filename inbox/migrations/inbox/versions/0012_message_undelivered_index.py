"""message undelivered index

Revision ID: 0012_inbox
Revises: 0011_inbox
Create Date: 2026-11-23 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_inbox"
down_revision: str | None = "0011_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNDELIVERED = sa.text("delivery IN ('pending', 'failed')")


# Plain CREATE INDEX, not a batch operation: under SQLite a batch copy of "message" would drop
# the full-text triggers of migration 0005.
def upgrade() -> None:
    op.create_index(
        "ix_message_undelivered",
        "message",
        ["account_id", "delivery"],
        unique=False,
        postgresql_where=UNDELIVERED,
        sqlite_where=UNDELIVERED,
    )


def downgrade() -> None:
    op.drop_index("ix_message_undelivered", table_name="message")
