"""conversation kpi indexes

Revision ID: 0014_inbox
Revises: 0013_inbox
Create Date: 2026-11-23 09:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_inbox"
down_revision: str | None = "0013_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPENED = [
    "opened_at",
    "is_spam",
    "first_response_seconds",
    "first_response_at",
    "sla_due_at",
    "account_id",
    "kind",
]


# Plain CREATE INDEX: no table needs rebuilding.
def upgrade() -> None:
    op.create_index("ix_conversation_opened_kpis", "conversation", OPENED, unique=False)
    op.create_index(
        "ix_conversation_closed_kpis",
        "conversation",
        ["closed_at", "is_spam", "account_id", "kind"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_conversation_closed_kpis", table_name="conversation")
    op.drop_index("ix_conversation_opened_kpis", table_name="conversation")
