"""The trend reports' queries: rollups in, unprotected cells out (disclosure.py protects them).

Every query reads the rollup tables, never raw records, except `examples`, which fetches a few
redacted texts of one topic. Ranges over whole months read the monthly rollups for those months.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from anonymizer.disclosure import Cell, merge
from anonymizer.rollups import month_of, next_month
from anonymizer.store import (
    ResearchRecord,
    RollupDay,
    RollupHashtag,
    RollupHashtagMonth,
    RollupHashtagTotal,
    RollupHashtagTotalMonth,
    RollupHour,
    RollupHourMonth,
    RollupKeyword,
    RollupKeywordMonth,
    RollupKeywordTotal,
    RollupKeywordTotalMonth,
    RollupTopic,
    RollupTopicMonth,
)

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


def spans(where: ReportFilter) -> tuple[list[tuple[date, date]], tuple[date, date] | None]:
    """The range cut into day spans at either end and the whole months between them."""
    first = where.since if where.since.day == 1 else next_month(month_of(where.since))
    last = month_of(where.until)
    if first >= last:
        return [(where.since, where.until)], None
    days = [
        (start, end) for start, end in ((where.since, first), (last, where.until)) if start < end
    ]
    return days, (first, last)


def _by_label(
    session: Session, where: ReportFilter, daily: Any, monthly: Any, label: str
) -> dict[str, Cell]:
    days, months = spans(where)
    parts = [(daily, start, end) for start, end in days]
    if months is not None:
        parts.append((monthly, *months))
    found: dict[str, list[Cell]] = defaultdict(list)
    for table, start, end in parts:
        clauses = _where(table, replace(where, since=start, until=end))
        if label == "topic" and where.topic is not None:
            clauses.append(table.topic == where.topic)
        column = getattr(table, label)
        for key, count, authors in session.execute(
            sa_select(column, func.sum(table.count), func.max(table.authors))
            .where(*clauses)
            .group_by(column)
        ):
            found[str(key)].append(Cell(int(count), int(authors)))
    return {key: merge(cells) for key, cells in found.items()}


def topics(*, session: Session, where: ReportFilter) -> dict[str, Cell]:
    """Messages per topic over the whole range."""
    return _by_label(session, where, RollupTopic, RollupTopicMonth, "topic")


def _across_channels(where: ReportFilter) -> bool:
    # No channel filter: the all-channel totals hold the same sums in far fewer rows.
    return all(getattr(where, name) is None for name in DIMENSIONS)


def hashtags(*, session: Session, where: ReportFilter) -> dict[str, Cell]:
    """Messages per hashtag over the whole range (the topic filter does not apply)."""
    if _across_channels(where):
        return _by_label(session, where, RollupHashtagTotal, RollupHashtagTotalMonth, "hashtag")
    return _by_label(session, where, RollupHashtag, RollupHashtagMonth, "hashtag")


def keywords(*, session: Session, where: ReportFilter) -> dict[str, Cell]:
    """Messages per keyword over the whole range (the topic filter does not apply)."""
    if _across_channels(where):
        return _by_label(session, where, RollupKeywordTotal, RollupKeywordTotalMonth, "keyword")
    return _by_label(session, where, RollupKeyword, RollupKeywordMonth, "keyword")


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
    days, months = spans(where)
    slots: dict[tuple[int, int], list[Cell]] = defaultdict(list)
    for start, end in days:
        for day, hour, count, authors in session.execute(
            sa_select(
                col(RollupHour.day),
                col(RollupHour.hour),
                func.sum(RollupHour.count),
                func.max(RollupHour.authors),
            )
            .where(*_where(RollupHour, replace(where, since=start, until=end)))
            .group_by(col(RollupHour.day), col(RollupHour.hour))
        ):
            slots[(_day(day).weekday(), int(hour))].append(Cell(int(count), int(authors)))
    if months is not None:
        month_where = replace(where, since=months[0], until=months[1])
        for weekday, hour, count, authors in session.execute(
            sa_select(
                col(RollupHourMonth.weekday),
                col(RollupHourMonth.hour),
                func.sum(RollupHourMonth.count),
                func.max(RollupHourMonth.authors),
            )
            .where(*_where(RollupHourMonth, month_where))
            .group_by(col(RollupHourMonth.weekday), col(RollupHourMonth.hour))
        ):
            slots[(int(weekday), int(hour))].append(Cell(int(count), int(authors)))
    return {slot: merge(found) for slot, found in sorted(slots.items())}


def options(*, session: Session, since: date, until: date) -> dict[str, list[str]]:
    """The values each filter can take in [since, until): dimensions and topics."""
    span = (col(RollupDay.day) >= since, col(RollupDay.day) < until)
    found = {
        name: sorted(
            str(value)
            for value in session.exec(
                select(getattr(RollupDay, name)).where(*span).distinct()
            ).all()
        )
        for name in DIMENSIONS
    }
    found["topic"] = sorted(
        str(value)
        for value in session.exec(
            select(RollupTopic.topic)
            .where(col(RollupTopic.day) >= since, col(RollupTopic.day) < until)
            .distinct()
        ).all()
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
