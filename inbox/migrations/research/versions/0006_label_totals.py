"""hashtag and keyword totals across all channels

Revision ID: 0006_research
Revises: 0005_research
Create Date: 2026-11-23 09:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_research"
down_revision: str | None = "0005_research"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LABELS = ("hashtag", "keyword")


def upgrade() -> None:
    for label in LABELS:
        for suffix in ("total", "total_month"):
            table = f"rollup_{label}_{suffix}"
            op.create_table(
                table,
                sa.Column("day", sa.Date(), nullable=False),
                sa.Column("count", sa.Integer(), nullable=False),
                sa.Column("authors", sa.Integer(), nullable=False),
                sa.Column(label, sa.String(length=200), nullable=False),
                sa.PrimaryKeyConstraint("day", label),
            )
            op.create_index(f"ix_{table}_covering", table, ["day", label, "count", "authors"])
        # Existing rollups summed over the channel dimensions, as the drain does from now on:
        # counts added up, authors the largest row's.
        op.execute(
            f"INSERT INTO rollup_{label}_total (day, {label}, count, authors) "  # noqa: S608
            f"SELECT day, {label}, SUM(count), MAX(authors) FROM rollup_{label} "
            f"GROUP BY day, {label}"
        )
        op.execute(
            f"INSERT INTO rollup_{label}_total_month (day, {label}, count, authors) "  # noqa: S608
            f"SELECT day, {label}, SUM(count), MAX(authors) FROM rollup_{label}_month "
            f"GROUP BY day, {label}"
        )


def downgrade() -> None:
    for label in LABELS:
        for suffix in ("total", "total_month"):
            table = f"rollup_{label}_{suffix}"
            op.drop_index(f"ix_{table}_covering", table_name=table)
            op.drop_table(table)
