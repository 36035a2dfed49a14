"""password change required

Revision ID: 0011_inbox
Revises: 0010_inbox
Create Date: 2026-11-23 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_inbox"
down_revision: str | None = "0010_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "user",
        sa.Column(
            "password_change_required", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.drop_column("password_change_required")
