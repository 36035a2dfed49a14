"""keyword rollups

Revision ID: 0004_research
Revises: 0003_research
Create Date: 2026-11-23 07:10:00.000000
"""

from collections.abc import Sequence
from datetime import datetime, time, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0004_research"
down_revision: str | None = "0003_research"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIMS = ("account_label", "platform", "channel_kind", "language")


def upgrade() -> None:
    for name in ("rollup_keyword", "rollup_keyword_month"):
        op.create_table(
            name,
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("account_label", sa.String(length=200), nullable=False),
            sa.Column("platform", sa.String(length=32), nullable=False),
            sa.Column("channel_kind", sa.String(length=16), nullable=False),
            sa.Column("language", sa.String(length=8), nullable=False),
            sa.Column("keyword", sa.String(length=200), nullable=False),
            sa.Column("count", sa.Integer(), nullable=False),
            sa.Column("authors", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("day", *DIMS, "keyword"),
        )
    _backfill()


def _backfill() -> None:
    # Records stored before this revision get their keyword rollups now, a day at a time.
    # Plain SQL reads so later columns on research_record cannot break this revision.
    from sqlmodel import Session

    from anonymizer.rollups import keyword_rows, month_of, refresh_months

    bind = op.get_bind()
    target = sa.Table("rollup_keyword", sa.MetaData(), autoload_with=bind)
    record = sa.table(
        "research_record",
        *(sa.column(name) for name in DIMS),
        sa.column("author_pseudonym"),
        sa.column("redacted_text"),
        sa.column("time_bucket", sa.DateTime()),
    )
    buckets = bind.execute(sa.select(record.c.time_bucket).distinct()).scalars().all()
    days = sorted({bucket.date() for bucket in buckets})
    for day in days:
        start = datetime.combine(day, time())
        rows = bind.execute(
            sa.select(
                *(record.c[name] for name in DIMS),
                record.c.author_pseudonym,
                record.c.redacted_text,
            ).where(record.c.time_bucket >= start, record.c.time_bucket < start + timedelta(days=1))
        ).all()
        values = keyword_rows(day=day, records=rows)
        if values:
            bind.execute(target.insert(), values)
    with Session(bind=bind) as session:
        refresh_months(
            session=session,
            months={month_of(day) for day in days},
            labels=("keyword",),
            hours=False,
            totals=False,
        )
        session.flush()


def downgrade() -> None:
    op.drop_table("rollup_keyword_month")
    op.drop_table("rollup_keyword")
