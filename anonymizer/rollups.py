"""Rollups for the trend reports: per-day aggregates rebuilt from the raw research records.

A day's rollups are recomputed whole from that day's records rather than incremented: distinct
author counts cannot be incremented without keeping every author seen, a rebuild is idempotent
(a drain repeated after a crash changes nothing), and it stays right when records are deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, insert
from sqlalchemy import select as sa_select
from sqlalchemy import text as sql_text
from sqlmodel import Session, col

from anonymizer.keywords import keywords_of
from anonymizer.store import (
    ROLLUPS,
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

LABEL_LENGTH = 200
DIMENSIONS = ("account_label", "platform", "channel_kind", "language")

Dims = tuple[str, str, str, str]


@dataclass
class _Cell:
    count: int = 0
    score_sum: float = 0.0
    authors: set[str] = field(default_factory=set)

    def add(self, author: str, score: float = 0.0) -> None:
        self.count += 1
        self.score_sum += score
        self.authors.add(author)


def days_of(moments: Iterable[datetime]) -> set[date]:
    """The UTC days the given time buckets fall on."""
    return {moment.date() for moment in moments}


def _records_of(session: Session, day: date) -> Iterator[Any]:
    start = datetime.combine(day, time())
    # SQLAlchemy's select: SQLModel's typed overloads stop at four entities.
    statement = sa_select(
        col(ResearchRecord.account_label),
        col(ResearchRecord.platform),
        col(ResearchRecord.channel_kind),
        col(ResearchRecord.language),
        col(ResearchRecord.sentiment_label),
        col(ResearchRecord.sentiment_score),
        col(ResearchRecord.author_pseudonym),
        col(ResearchRecord.time_bucket),
        col(ResearchRecord.topics),
        col(ResearchRecord.hashtags),
    ).where(
        col(ResearchRecord.time_bucket) >= start,
        col(ResearchRecord.time_bucket) < start + timedelta(days=1),
    )
    yield from session.execute(statement)


def _texts_of(session: Session, day: date) -> Iterator[Any]:
    start = datetime.combine(day, time())
    statement = sa_select(
        *(getattr(ResearchRecord, name) for name in DIMENSIONS),
        col(ResearchRecord.author_pseudonym),
        col(ResearchRecord.redacted_text),
    ).where(
        col(ResearchRecord.time_bucket) >= start,
        col(ResearchRecord.time_bucket) < start + timedelta(days=1),
    )
    yield from session.execute(statement)


# Every drain rebuilds the day's keyword rows from all of the day's texts: the words of a text
# seen before are remembered, not taken apart again. Bounded; forgotten all at once when full.
_KEYWORD_MEMO_SIZE = 100_000
_keyword_memo: dict[str, frozenset[str]] = {}


def _keywords(text: str) -> frozenset[str]:
    found = _keyword_memo.get(text)
    if found is None:
        if len(_keyword_memo) >= _KEYWORD_MEMO_SIZE:
            _keyword_memo.clear()
        found = _keyword_memo[text] = frozenset(keywords_of(text))
    return found


def keyword_rows(*, day: date, records: Iterable[Any]) -> list[dict[str, Any]]:
    """The keyword rollup rows of one day's (dimensions..., author, redacted text) records."""
    cells: dict[tuple[str, ...], _Cell] = defaultdict(_Cell)
    for account, platform, kind, language, author, text in records:
        # A message counts once per keyword, however often it uses it.
        for word in _keywords(str(text or "")):
            cells[(account, platform, kind, language, word)].add(author)
    return [
        {
            "day": day,
            **dict(zip((*DIMENSIONS, "keyword"), key, strict=True)),
            "count": cell.count,
            "authors": len(cell.authors),
        }
        for key, cell in cells.items()
    ]


def _labels(values: Any) -> set[str]:
    # JSON lists from the drain; a hand-edited row must not stop the rollup.
    if not isinstance(values, list):
        return set()
    return {str(value)[:LABEL_LENGTH] for value in values if str(value).strip()}


def rollup_rows(*, day: date, records: Iterable[Any]) -> dict[type[Any], list[dict[str, Any]]]:
    """The rollup rows of one day's records, per rollup table, as plain dicts."""
    days: dict[tuple[str, ...], _Cell] = defaultdict(_Cell)
    topics: dict[tuple[str, ...], _Cell] = defaultdict(_Cell)
    tags: dict[tuple[str, ...], _Cell] = defaultdict(_Cell)
    hours: dict[tuple[Any, ...], _Cell] = defaultdict(_Cell)
    for (
        account,
        platform,
        kind,
        language,
        label,
        score,
        author,
        bucket,
        topic_list,
        tag_list,
    ) in records:
        dims = (account, platform, kind, language)
        days[(*dims, label)].add(author, float(score))
        hours[(bucket.hour, *dims)].add(author)
        # A message counts once per topic or hashtag, however often it names it.
        for topic in _labels(topic_list):
            topics[(*dims, topic)].add(author)
        for tag in {tag.lower() for tag in _labels(tag_list)}:
            tags[(*dims, tag)].add(author)
    names = ("account_label", "platform", "channel_kind", "language")
    return {
        RollupDay: [
            {
                "day": day,
                **dict(zip((*names, "sentiment_label"), key, strict=True)),
                "count": cell.count,
                "score_sum": round(cell.score_sum, 4),
                "authors": len(cell.authors),
            }
            for key, cell in days.items()
        ],
        RollupTopic: [
            {
                "day": day,
                **dict(zip((*names, "topic"), key, strict=True)),
                "count": cell.count,
                "authors": len(cell.authors),
            }
            for key, cell in topics.items()
        ],
        RollupHashtag: [
            {
                "day": day,
                **dict(zip((*names, "hashtag"), key, strict=True)),
                "count": cell.count,
                "authors": len(cell.authors),
            }
            for key, cell in tags.items()
        ],
        RollupHour: [
            {
                "day": day,
                **dict(zip(("hour", *names), key, strict=True)),
                "count": cell.count,
                "authors": len(cell.authors),
            }
            for key, cell in hours.items()
        ],
    }


# Two-part keys of PostgreSQL's transaction-scoped advisory locks: one per rolled-up day and
# one per month, so two workers draining at once rebuild a day one after the other.
_DAY_LOCK, _MONTH_LOCK = 0x524F4C44, 0x524F4C4D


def _lock(session: Session, kind: int, day: date) -> None:
    """Wait for the rollup lock of a day or month, held until the transaction ends.

    Without it, two drains rebuilding the same day would each delete and insert its rows from
    the records they can see, and the second insert would collide with the first's. With it,
    the second waits, then (read committed) sees the first's records too. Locks are taken in
    order, days before months, so two drains never wait on each other in a circle. SQLite has
    one writer at a time and needs none.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sql_text("SELECT pg_advisory_xact_lock(:kind, :day)"),
            {"kind": kind, "day": day.toordinal()},
        )


def refresh_days(*, session: Session, days: Iterable[date]) -> int:
    """Rebuild the rollups of the given UTC days in the session's transaction; rows written."""
    written = 0
    days = sorted(set(days))
    for day in days:
        _lock(session, _DAY_LOCK, day)
    for day in days:
        rows = rollup_rows(day=day, records=_records_of(session, day))
        rows[RollupKeyword] = keyword_rows(day=day, records=_texts_of(session, day))
        for table in ROLLUPS:
            session.execute(delete(table).where(col(table.day) == day))  # type: ignore[attr-defined]
            if rows[table]:
                session.execute(insert(table), rows[table])
                written += len(rows[table])
    written += refresh_totals(session=session, days=days)
    return written + refresh_months(session=session, months={month_of(day) for day in days})


# Label tables summed over the channel dimensions: (per channel, per day, per month).
TOTALS: dict[str, tuple[Any, Any, Any]] = {
    "hashtag": (RollupHashtag, RollupHashtagTotal, RollupHashtagTotalMonth),
    "keyword": (RollupKeyword, RollupKeywordTotal, RollupKeywordTotalMonth),
}


def _sum_into(session: Session, target: Any, source: Any, label: str, day: date, end: date) -> int:
    """target's rows for `day` rebuilt from source's rows in [day, end): counts summed,
    authors the largest (a lower bound, like any merged cell of a report)."""
    session.execute(delete(target).where(col(target.day) == day))
    key = getattr(source, label)
    rows = session.execute(
        sa_select(key, func.sum(source.count), func.max(source.authors))
        .where(col(source.day) >= day, col(source.day) < end)
        .group_by(key)
    ).all()
    values = [
        {"day": day, label: name, "count": count, "authors": authors}
        for name, count, authors in rows
    ]
    if values:
        session.execute(insert(target), values)
    return len(values)


def refresh_totals(*, session: Session, days: Iterable[date]) -> int:
    """Rebuild the all-channel hashtag and keyword rows of these days from their daily rows."""
    written = 0
    for day in sorted(set(days)):
        for label, (daily, total, _) in TOTALS.items():
            written += _sum_into(session, total, daily, label, day, day + timedelta(days=1))
    return written


def month_of(day: date) -> date:
    """The first day of a day's month."""
    return day.replace(day=1)


def next_month(month: date) -> date:
    """The first day of the following month."""
    return (month + timedelta(days=32)).replace(day=1)


LABELLED: dict[str, tuple[Any, Any]] = {
    "topic": (RollupTopic, RollupTopicMonth),
    "hashtag": (RollupHashtag, RollupHashtagMonth),
    "keyword": (RollupKeyword, RollupKeywordMonth),
}


def refresh_months(
    *,
    session: Session,
    months: Iterable[date],
    labels: Iterable[str] = tuple(LABELLED),
    hours: bool = True,
    totals: bool = True,
) -> int:
    """Rebuild the monthly rollups from the daily ones: counts add up, authors take the max.

    `labels`, `hours` and `totals` choose the tables, so a migration can fill only those that
    exist. The monthly all-channel totals are summed from the daily ones (`refresh_totals`).
    """
    written = 0
    chosen = [(*LABELLED[label], label) for label in labels]
    months = sorted(set(months))
    for month in months:
        _lock(session, _MONTH_LOCK, month)
    for month in months:
        span = (month, next_month(month))
        for daily, monthly, label in chosen:
            session.execute(delete(monthly).where(col(monthly.day) == month))
            keys = [getattr(daily, name) for name in (*DIMENSIONS, label)]
            rows = session.execute(
                sa_select(*keys, func.sum(daily.count), func.max(daily.authors))
                .where(col(daily.day) >= span[0], col(daily.day) < span[1])
                .group_by(*keys)
            ).all()
            values = [
                dict(
                    zip(("day", *DIMENSIONS, label, "count", "authors"), (month, *row), strict=True)
                )
                for row in rows
            ]
            if values:
                session.execute(insert(monthly), values)
                written += len(values)
        if hours:
            written += _refresh_hour_month(session, *span)
        if totals:
            for label, (_, total, monthly) in TOTALS.items():
                written += _sum_into(session, monthly, total, label, *span)
    return written


def _refresh_hour_month(session: Session, month: date, until: date) -> int:
    session.execute(delete(RollupHourMonth).where(col(RollupHourMonth.day) == month))
    cells: dict[tuple[Any, ...], list[int]] = {}
    for day, hour, *dims, count, authors in session.execute(
        sa_select(
            col(RollupHour.day),
            col(RollupHour.hour),
            *(getattr(RollupHour, name) for name in DIMENSIONS),
            col(RollupHour.count),
            col(RollupHour.authors),
        ).where(col(RollupHour.day) >= month, col(RollupHour.day) < until)
    ):
        weekday = (day if isinstance(day, date) else date.fromisoformat(str(day))).weekday()
        cell = cells.setdefault((weekday, hour, *dims), [0, 0])
        cell[0] += count
        cell[1] = max(cell[1], authors)
    values = [
        dict(
            zip(("weekday", "hour", *DIMENSIONS), key, strict=True),
            day=month,
            count=count,
            authors=authors,
        )
        for key, (count, authors) in cells.items()
    ]
    if values:
        session.execute(insert(RollupHourMonth), values)
    return len(values)


def refresh_range(*, session: Session, since: date, until: date) -> int:
    """Rebuild the rollups of every day in [since, until) and commit; rows written."""
    days = [since + timedelta(days=n) for n in range((until - since).days)]
    written = refresh_days(session=session, days=days)
    session.commit()
    return written
