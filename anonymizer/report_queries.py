"""The trend reports' queries: rollups in, unprotected cells out (disclosure.py protects them).

Every query reads the rollup tables, never raw records, except `examples`, which fetches a few
redacted texts of one topic.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from anonymizer.disclosure import Cell, merge
from anonymizer.store import ResearchRecord, RollupDay, RollupHashtag, RollupHour, RollupTopic

DIMENSIONS = ("account_label", "platform", "channel_kind", "language")


@dataclass(frozen=True, slots=True)
class ReportFilter:
    """Which records a report covers: UTC days [since, until) and optional dimension values."""

    since: date
    until: date
    account_label: str | None = None
    platform: str | None = None
    channel_kind: str | None = None
    language: str | None = None
    topic: str | None = None

    @property
    def days(self) -> int:
        """How many days the range spans."""
        return (self.until - self.since).days

    def previous(self) -> ReportFilter:
        """The same filter over the equally long period just before."""
        return ReportFilter(
            since=self.since - timedelta(days=self.days),
            until=self.since,
            account_label=self.account_label,
            platform=self.platform,
            channel_kind=self.channel_kind,
            language=self.language,
            topic=self.topic,
        )


def _where(table: Any, where: ReportFilter) -> list[Any]:
    clauses = [col(table.day) >= where.since, col(table.day) < where.until]
    for name in DIMENSIONS:
        value = getattr(where, name)
        if value is not None:
            clauses.append(getattr(table, name) == value)
    return clauses


def _day(value: Any) -> date:
    # SQLite hands dates back as text when grouped.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def week_of(day: date) -> date:
    """The Monday starting the ISO week of a day."""
    return day - timedelta(days=day.weekday())


def volume(*, session: Session, where: ReportFilter) -> dict[date, Cell]:
    """Messages per day; the topic filter, when set, counts the topic's messages."""
    table: Any = RollupTopic if where.topic is not None else RollupDay
    clauses = _where(table, where)
    if where.topic is not None:
        clauses.append(col(RollupTopic.topic) == where.topic)
    rows = session.exec(
        select(table.day, func.sum(table.count), func.max(table.authors))
        .where(*clauses)
        .group_by(table.day)
    ).all()
    return {_day(day): Cell(int(count), int(authors)) for day, count, authors in rows}


def by_week(cells: dict[date, Cell]) -> dict[date, Cell]:
    """Daily cells merged into ISO weeks (the lower bound of authors stays a lower bound)."""
    weeks: dict[date, list[Cell]] = defaultdict(list)
    for day, cell in cells.items():
        weeks[week_of(day)].append(cell)
    return {week: merge(found) for week, found in sorted(weeks.items())}


@dataclass(frozen=True, slots=True)
class SentimentCells:
    """Messages per day and sentiment label, with the score sums for averages."""

    cells: dict[tuple[date, str], Cell]
    score_sums: dict[date, float]


def sentiment(*, session: Session, where: ReportFilter) -> SentimentCells:
    """Messages per day and sentiment label (the topic filter does not apply)."""
    rows = session.execute(
        sa_select(
            col(RollupDay.day),
            col(RollupDay.sentiment_label),
            func.sum(RollupDay.count),
            func.max(RollupDay.authors),
            func.sum(RollupDay.score_sum),
        )
        .where(*_where(RollupDay, where))
        .group_by(col(RollupDay.day), col(RollupDay.sentiment_label))
    ).all()
    cells: dict[tuple[date, str], Cell] = {}
    sums: dict[date, float] = defaultdict(float)
    for day, label, count, authors, score in rows:
        cells[(_day(day), label)] = Cell(int(count), int(authors))
        sums[_day(day)] += float(score)
    return SentimentCells(cells=cells, score_sums=dict(sums))


def topics(*, session: Session, where: ReportFilter) -> dict[str, Cell]:
    """Messages per topic over the whole range."""
    clauses = _where(RollupTopic, where)
    if where.topic is not None:
        clauses.append(col(RollupTopic.topic) == where.topic)
    return _labelled(
        session.exec(
            select(RollupTopic.topic, func.sum(RollupTopic.count), func.max(RollupTopic.authors))
            .where(*clauses)
            .group_by(RollupTopic.topic)
        ).all()
    )


def hashtags(*, session: Session, where: ReportFilter) -> dict[str, Cell]:
    """Messages per hashtag over the whole range (the topic filter does not apply)."""
    return _labelled(
        session.exec(
            select(
                RollupHashtag.hashtag,
                func.sum(RollupHashtag.count),
                func.max(RollupHashtag.authors),
            )
            .where(*_where(RollupHashtag, where))
            .group_by(RollupHashtag.hashtag)
        ).all()
    )


def languages(*, session: Session, where: ReportFilter) -> dict[str, Cell]:
    """Messages per language over the whole range (the topic filter does not apply)."""
    return _labelled(
        session.exec(
            select(RollupDay.language, func.sum(RollupDay.count), func.max(RollupDay.authors))
            .where(*_where(RollupDay, where))
            .group_by(RollupDay.language)
        ).all()
    )


def _labelled(rows: Iterable[Any]) -> dict[str, Cell]:
    return {str(label): Cell(int(count), int(authors)) for label, count, authors in rows}


def hour_of_week(*, session: Session, where: ReportFilter) -> dict[tuple[int, int], Cell]:
    """Messages per (weekday 0 = Monday, UTC hour) (the topic filter does not apply)."""
    rows = session.execute(
        sa_select(
            col(RollupHour.day),
            col(RollupHour.hour),
            func.sum(RollupHour.count),
            func.max(RollupHour.authors),
        )
        .where(*_where(RollupHour, where))
        .group_by(col(RollupHour.day), col(RollupHour.hour))
    ).all()
    slots: dict[tuple[int, int], list[Cell]] = defaultdict(list)
    for day, hour, count, authors in rows:
        slots[(_day(day).weekday(), int(hour))].append(Cell(int(count), int(authors)))
    return {slot: merge(found) for slot, found in sorted(slots.items())}


def options(*, session: Session) -> dict[str, list[str]]:
    """The values each filter can take: accounts, platforms, channel kinds, languages, topics."""
    found = {
        name: sorted(
            str(value) for value in session.exec(select(getattr(RollupDay, name)).distinct()).all()
        )
        for name in DIMENSIONS
    }
    found["topic"] = sorted(
        str(value) for value in session.exec(select(RollupTopic.topic).distinct()).all()
    )
    return found


def examples(*, session: Session, where: ReportFilter, topic: str, limit: int = 3) -> list[str]:
    """A few recent redacted texts of one topic (records exist only if they passed the guard)."""
    statement = (
        select(ResearchRecord.redacted_text, ResearchRecord.topics)
        .where(
            col(ResearchRecord.time_bucket) >= datetime.combine(where.since, time()),
            col(ResearchRecord.time_bucket) < datetime.combine(where.until, time()),
        )
        .order_by(col(ResearchRecord.time_bucket).desc())
        .limit(500)
    )
    for name in DIMENSIONS:
        value = getattr(where, name)
        if value is not None:
            statement = statement.where(getattr(ResearchRecord, name) == value)
    # JSON containment differs between SQLite and PostgreSQL; a bounded scan in Python is enough.
    texts: list[str] = []
    for text, labels in session.exec(statement):
        if isinstance(labels, list) and topic in labels and text not in texts:
            texts.append(text)
            if len(texts) == limit:
                break
    return texts
