"""The market-research statistics store: its own metadata, its own database, no inbox ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Date, DateTime, Index, Text, cast, func
from sqlalchemy.orm import registry
from sqlmodel import Field, Session, SQLModel, col, select

research_registry = registry()


class ResearchBase(SQLModel, registry=research_registry):
    """Base of the research store's tables, kept apart from the inbox's metadata."""


metadata = research_registry.metadata


def _new_id() -> str:
    return uuid.uuid4().hex


class ResearchRecord(ResearchBase, table=True):
    """One anonymized customer message. Nothing here can lead back to an inbox row."""

    __tablename__ = "research_record"

    # Random, never derived from the inbox message: a join back is impossible by design.
    id: str = Field(default_factory=_new_id, primary_key=True, max_length=32)
    account_label: str = Field(max_length=200, index=True)
    platform: str = Field(max_length=32)
    channel_kind: str = Field(max_length=16)
    # UTC, truncated to the hour so the exact moment of a post cannot single it out.
    time_bucket: datetime = Field(sa_type=DateTime(), index=True)
    language: str = Field(max_length=8)
    redacted_text: str = Field(sa_type=Text)
    topics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    hashtags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sentiment_label: str = Field(default="neutral", max_length=8)
    sentiment_score: float = Field(default=0.0)
    author_pseudonym: str = Field(max_length=64)


@dataclass(frozen=True, slots=True)
class DailyVolume:
    """Messages on one day through one channel kind."""

    day: date
    channel_kind: str
    count: int


def _day(session: Session) -> Any:
    column = col(ResearchRecord.time_bucket)
    if session.get_bind().dialect.name == "sqlite":
        return func.date(column)
    return cast(column, Date)


def daily_volume(*, session: Session, since: datetime, until: datetime) -> list[DailyVolume]:
    """Count records per day and channel kind in [since, until), oldest day first."""
    day = _day(session).label("day")
    statement = (
        select(day, ResearchRecord.channel_kind, func.count())
        .where(col(ResearchRecord.time_bucket) >= since, col(ResearchRecord.time_bucket) < until)
        .group_by(day, ResearchRecord.channel_kind)
        .order_by(day, ResearchRecord.channel_kind)
    )
    rows = session.exec(statement).all()
    return [
        DailyVolume(
            day=value if isinstance(value, date) else date.fromisoformat(str(value)),
            channel_kind=kind,
            count=int(count),
        )
        for value, kind, count in rows
    ]


# Rollups: what the reports read instead of raw rows. One row per UTC day and dimensions;
# `authors` counts distinct author pseudonyms of that row alone, because distinct counts do
# not add up across rows (see anonymizer/disclosure.py for how reports use them).


class _Cell(ResearchBase):
    """The key every rollup but the hourly ones starts with, and what each row counts: a day
    (the first of the month in monthly tables) and the channel dimensions."""

    day: date = Field(sa_type=Date, primary_key=True)
    account_label: str = Field(max_length=200, primary_key=True)
    platform: str = Field(max_length=32, primary_key=True)
    channel_kind: str = Field(max_length=16, primary_key=True)
    language: str = Field(max_length=8, primary_key=True)
    count: int
    authors: int


_DIMS = ("account_label", "platform", "channel_kind", "language")


def _covering(table: str, label: str) -> tuple[Index]:
    # The key plus what the report sums: a keyword or hashtag query then reads the index alone
    # instead of looking up every row of its range in the table (bench/reports.py).
    return (Index(f"ix_{table}_covering", "day", *_DIMS, label, "count", "authors"),)


class RollupDay(_Cell, table=True):
    """Messages per day, channel dimensions and sentiment label."""

    __tablename__ = "rollup_day"

    sentiment_label: str = Field(max_length=8, primary_key=True)
    score_sum: float


class RollupTopic(_Cell, table=True):
    """Messages per day, channel dimensions and topic."""

    __tablename__ = "rollup_topic"

    topic: str = Field(max_length=200, primary_key=True)


class RollupHashtag(_Cell, table=True):
    """Messages per day, channel dimensions and hashtag."""

    __tablename__ = "rollup_hashtag"
    __table_args__ = _covering("rollup_hashtag", "hashtag")

    hashtag: str = Field(max_length=200, primary_key=True)


class RollupKeyword(_Cell, table=True):
    """Messages per day, channel dimensions and keyword of the redacted text."""

    __tablename__ = "rollup_keyword"
    __table_args__ = _covering("rollup_keyword", "keyword")

    keyword: str = Field(max_length=200, primary_key=True)


class RollupHour(ResearchBase, table=True):
    """Messages per day, UTC hour and channel dimensions, for the hour-of-week view."""

    __tablename__ = "rollup_hour"

    day: date = Field(sa_type=Date, primary_key=True)
    hour: int = Field(primary_key=True)
    account_label: str = Field(max_length=200, primary_key=True)
    platform: str = Field(max_length=32, primary_key=True)
    channel_kind: str = Field(max_length=16, primary_key=True)
    language: str = Field(max_length=8, primary_key=True)
    count: int
    authors: int


# Monthly rollups: `day` is the first of the month, `authors` the largest daily count in it,
# which is all the reports use of authors over several days. Long ranges read these for their
# whole months and the daily tables only for the days at either end.


class RollupTopicMonth(_Cell, table=True):
    """Messages per month, channel dimensions and topic."""

    __tablename__ = "rollup_topic_month"

    topic: str = Field(max_length=200, primary_key=True)


class RollupHashtagMonth(_Cell, table=True):
    """Messages per month, channel dimensions and hashtag."""

    __tablename__ = "rollup_hashtag_month"
    __table_args__ = _covering("rollup_hashtag_month", "hashtag")

    hashtag: str = Field(max_length=200, primary_key=True)


class RollupKeywordMonth(_Cell, table=True):
    """Messages per month, channel dimensions and keyword."""

    __tablename__ = "rollup_keyword_month"
    __table_args__ = _covering("rollup_keyword_month", "keyword")

    keyword: str = Field(max_length=200, primary_key=True)


# Hashtags and keywords across all channels: the same rows summed over the channel dimensions,
# `authors` the largest of theirs (the same lower bound the reports take of any merged cell).
# A report without a channel filter reads these: a fourteenth of the rows, the same numbers.


class _Total(ResearchBase):
    """A day (or month) across every account, platform, channel kind and language."""

    day: date = Field(sa_type=Date, primary_key=True)
    count: int
    authors: int


def _covering_total(table: str, label: str) -> tuple[Index]:
    return (Index(f"ix_{table}_covering", "day", label, "count", "authors"),)


class RollupHashtagTotal(_Total, table=True):
    """Messages per day and hashtag, across all channels."""

    __tablename__ = "rollup_hashtag_total"
    __table_args__ = _covering_total("rollup_hashtag_total", "hashtag")

    hashtag: str = Field(max_length=200, primary_key=True)


class RollupKeywordTotal(_Total, table=True):
    """Messages per day and keyword, across all channels."""

    __tablename__ = "rollup_keyword_total"
    __table_args__ = _covering_total("rollup_keyword_total", "keyword")

    keyword: str = Field(max_length=200, primary_key=True)


class RollupHashtagTotalMonth(_Total, table=True):
    """Messages per month and hashtag, across all channels."""

    __tablename__ = "rollup_hashtag_total_month"
    __table_args__ = _covering_total("rollup_hashtag_total_month", "hashtag")

    hashtag: str = Field(max_length=200, primary_key=True)


class RollupKeywordTotalMonth(_Total, table=True):
    """Messages per month and keyword, across all channels."""

    __tablename__ = "rollup_keyword_total_month"
    __table_args__ = _covering_total("rollup_keyword_total_month", "keyword")

    keyword: str = Field(max_length=200, primary_key=True)


class RollupHourMonth(ResearchBase, table=True):
    """Messages per month, weekday (0 = Monday), UTC hour and channel dimensions."""

    __tablename__ = "rollup_hour_month"

    day: date = Field(sa_type=Date, primary_key=True)
    weekday: int = Field(primary_key=True)
    hour: int = Field(primary_key=True)
    account_label: str = Field(max_length=200, primary_key=True)
    platform: str = Field(max_length=32, primary_key=True)
    channel_kind: str = Field(max_length=16, primary_key=True)
    language: str = Field(max_length=8, primary_key=True)
    count: int
    authors: int


ROLLUPS: tuple[type[ResearchBase], ...] = (
    RollupDay,
    RollupTopic,
    RollupHashtag,
    RollupKeyword,
    RollupHour,
)
MONTHLY: tuple[type[ResearchBase], ...] = (
    RollupTopicMonth,
    RollupHashtagMonth,
    RollupKeywordMonth,
    RollupHourMonth,
)
