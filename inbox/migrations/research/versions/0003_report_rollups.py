"""report rollups

Revision ID: 0003_research
Revises: 0002_research
Create Date: 2026-11-23 06:45:00.000000
"""

from collections.abc import Sequence
from datetime import datetime, time, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0003_research"
down_revision: str | None = "0002_research"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIMS = ("account_label", "platform", "channel_kind", "language")


def _dims() -> list[sa.Column[str]]:
    return [
        sa.Column("account_label", sa.String(length=200), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("channel_kind", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "rollup_day",
        sa.Column("day", sa.Date(), nullable=False),
        *_dims(),
        sa.Column("sentiment_label", sa.String(length=8), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("authors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", *DIMS, "sentiment_label"),
    )
    op.create_table(
        "rollup_topic",
        sa.Column("day", sa.Date(), nullable=False),
        *_dims(),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("authors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", *DIMS, "topic"),
    )
    op.create_table(
        "rollup_hashtag",
        sa.Column("day", sa.Date(), nullable=False),
        *_dims(),
        sa.Column("hashtag", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("authors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", *DIMS, "hashtag"),
    )
    op.create_table(
        "rollup_hour",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        *_dims(),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("authors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "hour", *DIMS),
    )
    for name, label in (("rollup_topic_month", "topic"), ("rollup_hashtag_month", "hashtag")):
        op.create_table(
            name,
            sa.Column("day", sa.Date(), nullable=False),
            *_dims(),
            sa.Column(label, sa.String(length=200), nullable=False),
            sa.Column("count", sa.Integer(), nullable=False),
            sa.Column("authors", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("day", *DIMS, label),
        )
    op.create_table(
        "rollup_hour_month",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        *_dims(),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("authors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "weekday", "hour", *DIMS),
    )
    _backfill()


def _backfill() -> None:
    # Records stored before this revision get their rollups now, a day at a time. Plain SQL
    # reads so later columns on research_record cannot break this revision.
    from sqlmodel import Session

    from anonymizer.rollups import month_of, refresh_months, rollup_rows

    bind = op.get_bind()
    meta = sa.MetaData()
    meta.reflect(bind, only=["rollup_day", "rollup_topic", "rollup_hashtag", "rollup_hour"])
    record = sa.table(
        "research_record",
        *(sa.column(name) for name in (*DIMS, "sentiment_label", "sentiment_score")),
        sa.column("author_pseudonym"),
        sa.column("time_bucket", sa.DateTime()),
        sa.column("topics", sa.JSON()),
        sa.column("hashtags", sa.JSON()),
    )
    buckets = bind.execute(sa.select(record.c.time_bucket).distinct()).scalars().all()
    days = sorted({bucket.date() for bucket in buckets})
    for day in days:
        start = datetime.combine(day, time())
        rows = bind.execute(
            sa.select(
                *(record.c[name] for name in (*DIMS, "sentiment_label", "sentiment_score")),
                record.c.author_pseudonym,
                record.c.time_bucket,
                record.c.topics,
                record.c.hashtags,
            ).where(record.c.time_bucket >= start, record.c.time_bucket < start + timedelta(days=1))
        ).all()
        for model, values in rollup_rows(day=day, records=rows).items():
            if values:
                bind.execute(meta.tables[model.__tablename__].insert(), values)
    with Session(bind=bind) as session:
        # Only this revision's tables: later ones (keywords, 0004) do not exist yet.
        refresh_months(
            session=session,
            months={month_of(day) for day in days},
            labels=("topic", "hashtag"),
            totals=False,
        )
        session.flush()


def downgrade() -> None:
    for table in (
        "rollup_hour_month",
        "rollup_hashtag_month",
        "rollup_topic_month",
        "rollup_hour",
        "rollup_hashtag",
        "rollup_topic",
        "rollup_day",
    ):
        op.drop_table(table)
