"""worker heartbeat

Revision ID: 0010_inbox
Revises: 0009_inbox
Create Date: 2026-11-23 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import inbox.types

revision: str = "0010_inbox"
down_revision: str | None = "0009_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workerheartbeat",
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("started_at", inbox.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", inbox.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner"),
    )
    op.create_index("ix_workerheartbeat_seen_at", "workerheartbeat", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_workerheartbeat_seen_at", table_name="workerheartbeat")
    op.drop_table("workerheartbeat")
