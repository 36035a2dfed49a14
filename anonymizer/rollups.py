"""Rollups for the trend reports: per-day aggregates rebuilt from the raw research records.

A day's rollups are recomputed whole from that day's records rather than incremented: distinct
author counts cannot be incremented without keeping every author seen, a rebuild is idempotent
(a drain repeated after a crash changes nothing), and it stays right when records are deleted.
The drain (`add_records`) does keep every author seen, in memory, for the last days it rolled
up, and adds to those; whenever it cannot be sure they are the day's records, it rebuilds.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, case, delete, func, insert
from sqlalchemy import select as sa_select
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql, sqlite
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


# The rollup tables of one day and the columns, after the day, that key their rows.
_KEYS: dict[type[Any], tuple[str, ...]] = {
    RollupDay: (*DIMENSIONS, "sentiment_label"),
    RollupTopic: (*DIMENSIONS, "topic"),
    RollupHashtag: (*DIMENSIONS, "hashtag"),
    RollupKeyword: (*DIMENSIONS, "keyword"),
    RollupHour: ("hour", *DIMENSIONS),
}
Cells = dict[type[Any], dict[tuple[Any, ...], _Cell]]
# Per table, the cells a drain changed and their (count, authors) before it.
Touched = dict[type[Any], dict[tuple[Any, ...], tuple[int, int]]]


def _cells() -> Cells:
    return {table: defaultdict(_Cell) for table in _KEYS}


def _count_in(
    cells: Cells,
    table: type[Any],
    key: tuple[Any, ...],
    author: str,
    touched: Touched | None,
    score: float = 0.0,
) -> None:
    cell = cells[table][key]
    if touched is not None and key not in touched[table]:
        touched[table][key] = (cell.count, len(cell.authors))
    cell.add(author, score)


def _add_record(cells: Cells, record: Sequence[Any], touched: Touched | None = None) -> None:
    """Count one (dimensions..., label, score, author, bucket, topics, hashtags) record."""
    account, platform, kind, language, label, score, author, bucket, topic_list, tag_list = record
    dims = (account, platform, kind, language)
    _count_in(cells, RollupDay, (*dims, label), author, touched, float(score))
    _count_in(cells, RollupHour, (bucket.hour, *dims), author, touched)
    # A message counts once per topic or hashtag, however often it names it.
    for topic in _labels(topic_list):
        _count_in(cells, RollupTopic, (*dims, topic), author, touched)
    for tag in {tag.lower() for tag in _labels(tag_list)}:
        _count_in(cells, RollupHashtag, (*dims, tag), author, touched)


def _add_text(cells: Cells, record: Sequence[Any], touched: Touched | None = None) -> None:
    """Count the keywords of one (dimensions..., author, redacted text) record."""
    account, platform, kind, language, author, text = record
    # A message counts once per keyword, however often it uses it.
    for word in _keywords(str(text or "")):
        _count_in(cells, RollupKeyword, (account, platform, kind, language, word), author, touched)


def _rows(
    table: type[Any], day: date, cells: Iterable[tuple[tuple[Any, ...], _Cell]]
) -> list[dict[str, Any]]:
    names = _KEYS[table]
    return [
        {
            "day": day,
            **dict(zip(names, key, strict=True)),
            "count": cell.count,
            **({"score_sum": round(cell.score_sum, 4)} if table is RollupDay else {}),
            "authors": len(cell.authors),
        }
        for key, cell in cells
    ]


def keyword_rows(*, day: date, records: Iterable[Any]) -> list[dict[str, Any]]:
    """The keyword rollup rows of one day's (dimensions..., author, redacted text) records."""
    cells = _cells()
    for record in records:
        _add_text(cells, record)
    return _rows(RollupKeyword, day, cells[RollupKeyword].items())


def _labels(values: Any) -> set[str]:
    # JSON lists from the drain; a hand-edited row must not stop the rollup.
    if not isinstance(values, list):
        return set()
    return {str(value)[:LABEL_LENGTH] for value in values if str(value).strip()}


def rollup_rows(*, day: date, records: Iterable[Any]) -> dict[type[Any], list[dict[str, Any]]]:
    """The rollup rows of one day's records, per rollup table, as plain dicts."""
    cells = _cells()
    for record in records:
        _add_record(cells, record)
    return {
        table: _rows(table, day, cells[table].items())
        for table in (RollupDay, RollupTopic, RollupHashtag, RollupHour)
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


def _rebuild(session: Session, day: date) -> int:
    """Rebuild one day's rollups whole from its records and remember its cells; rows written."""
    cells, records, written = _cells(), 0, 0
    for record in _records_of(session, day):
        _add_record(cells, record)
        records += 1
    for record in _texts_of(session, day):
        _add_text(cells, record)
    for table in ROLLUPS:
        rows = _rows(table, day, cells[table].items())
        session.execute(delete(table).where(col(table.day) == day))  # type: ignore[attr-defined]
        if rows:
            session.execute(insert(table), rows)
            written += len(rows)
    _remember(session, day, _Day(records=records, cells=cells))
    return written


def refresh_days(*, session: Session, days: Iterable[date]) -> int:
    """Rebuild the rollups of the given UTC days in the session's transaction; rows written."""
    written = 0
    days = sorted(set(days))
    for day in days:
        _lock(session, _DAY_LOCK, day)
    for day in days:
        written += _rebuild(session, day)
    written += refresh_totals(session=session, days=days)
    return written + refresh_months(session=session, months={month_of(day) for day in days})


@dataclass
class _Day:
    """A day's rollup cells with their authors, as its rows were last written, and the number
    of records they count."""

    records: int
    cells: Cells


# The days this process rolled up last, per research store: the next drain adds its records to
# them instead of reading and counting the whole day again. At most this many days each.
_KEPT_DAYS = 3
_known: WeakKeyDictionary[Engine, dict[date, _Day]] = WeakKeyDictionary()
_known_lock = threading.Lock()


def _store(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _remember(session: Session, day: date, state: _Day) -> None:
    with _known_lock:
        days = _known.setdefault(_store(session), {})
        days[day] = state
        for old in sorted(days)[:-_KEPT_DAYS]:
            del days[old]


def _recall(session: Session, day: date) -> _Day | None:
    with _known_lock:
        return _known.get(_store(session), {}).pop(day, None)


def forget(*, session: Session) -> None:
    """Forget the remembered days of this store: its transaction did not commit."""
    with _known_lock:
        _known.pop(_store(session), None)


def _records_on(session: Session, day: date) -> int:
    start = datetime.combine(day, time())
    return int(
        session.execute(
            sa_select(func.count()).where(
                col(ResearchRecord.time_bucket) >= start,
                col(ResearchRecord.time_bucket) < start + timedelta(days=1),
            )
        ).scalar_one()
    )


def add_records(*, session: Session, records: Sequence[ResearchRecord]) -> int:
    """Bring the rollups up to date with records just added in the session's transaction.

    The same rows as `refresh_days` for the records' days, without reading and counting each
    whole day (and regrouping its month) again: a day this process rolled up last is taken from
    memory, its new records added, only the day's rows they change are written, and what they
    grew by is added to the totals and months. That holds only while the day's records are
    exactly those remembered plus the new ones; records are only ever added, so their number
    tells, and where it differs (another worker drained records of that day, or a transaction
    did not commit) the day is rebuilt and its month regrouped as before. SQLite and PostgreSQL
    (the rows are upserted).
    """
    by_day: dict[date, list[ResearchRecord]] = defaultdict(list)
    for record in records:
        by_day[record.time_bucket.date()].append(record)
    days = sorted(by_day)
    for day in days:
        _lock(session, _DAY_LOCK, day)
    session.flush()
    written = 0
    rebuilt: list[date] = []
    sums: dict[type[Any], dict[tuple[Any, ...], tuple[int, int]]] = defaultdict(dict)
    for day in days:
        state = _recall(session, day)
        if state is None or _records_on(session, day) != state.records + len(by_day[day]):
            written += _rebuild(session, day)
            rebuilt.append(day)
            continue
        touched: Touched = {table: {} for table in _KEYS}
        for record in by_day[day]:
            _add_record(state.cells, _values(record), touched)
            _add_text(state.cells, _text_values(record), touched)
        state.records += len(by_day[day])
        for table, keys in touched.items():
            rows = _rows(table, day, ((key, state.cells[table][key]) for key in keys))
            _upsert(session, table, rows, add=False)
            written += len(rows)
        _remember(session, day, state)
        _changes(sums, day, state.cells, touched)
    written += refresh_totals(session=session, days=rebuilt)
    whole = {month_of(day) for day in rebuilt}
    for month in sorted(whole | {month_of(day) for day in days}):
        _lock(session, _MONTH_LOCK, month)
    for table, changes in sums.items():
        # A month with a day rebuilt is regrouped whole below.
        rows = [
            {**dict(zip(_SUMMED[table], key, strict=True)), "count": count, "authors": authors}
            for key, (count, authors) in changes.items()
            if table in _DAILY_TOTALS or key[0] not in whole
        ]
        _upsert(session, table, rows, add=True)
        written += len(rows)
    return written + refresh_months(session=session, months=whole)


# The key columns of the rows a day's changed cells add to.
_SUMMED: dict[type[Any], tuple[str, ...]] = {
    RollupTopicMonth: ("day", *DIMENSIONS, "topic"),
    RollupHashtagMonth: ("day", *DIMENSIONS, "hashtag"),
    RollupKeywordMonth: ("day", *DIMENSIONS, "keyword"),
    RollupHourMonth: ("day", "weekday", "hour", *DIMENSIONS),
    RollupHashtagTotal: ("day", "hashtag"),
    RollupKeywordTotal: ("day", "keyword"),
    RollupHashtagTotalMonth: ("day", "hashtag"),
    RollupKeywordTotalMonth: ("day", "keyword"),
}
_DAILY_TOTALS = (RollupHashtagTotal, RollupKeywordTotal)
_MONTHLY: dict[type[Any], type[Any]] = {
    RollupTopic: RollupTopicMonth,
    RollupHashtag: RollupHashtagMonth,
    RollupKeyword: RollupKeywordMonth,
}
_TOTALLED: dict[type[Any], tuple[type[Any], type[Any]]] = {
    RollupHashtag: (RollupHashtagTotal, RollupHashtagTotalMonth),
    RollupKeyword: (RollupKeywordTotal, RollupKeywordTotalMonth),
}


def _changes(
    sums: dict[type[Any], dict[tuple[Any, ...], tuple[int, int]]],
    day: date,
    cells: Cells,
    touched: Touched,
) -> None:
    """Add what a day's changed cells add to the totals and months.

    Counts grow by the cells' growth; authors, the largest of the merged cells, become at least
    a changed cell's (cells only ever grow, so the largest of the others stays what it was).
    """

    def bump(table: type[Any], key: tuple[Any, ...], count: int, authors: int) -> None:
        before = sums[table].get(key, (0, 0))
        sums[table][key] = (before[0] + count, max(before[1], authors))

    month = month_of(day)
    for table, keys in touched.items():
        for key, (count_before, _) in keys.items():
            cell = cells[table][key]
            grown, authors = cell.count - count_before, len(cell.authors)
            if table is RollupHour:
                bump(RollupHourMonth, (month, day.weekday(), *key), grown, authors)
            if table in _MONTHLY:
                bump(_MONTHLY[table], (month, *key), grown, authors)
            if table in _TOTALLED:
                daily, monthly = _TOTALLED[table]
                bump(daily, (day, key[-1]), grown, authors)
                bump(monthly, (month, key[-1]), grown, authors)


def _upsert(session: Session, table: type[Any], rows: list[dict[str, Any]], *, add: bool) -> None:
    """Insert rows, or where one is there already, replace its values or (`add`) add to them."""
    if not rows:
        return
    target = table.__table__
    statement: Any = (
        postgresql.insert(target)
        if session.get_bind().dialect.name == "postgresql"
        else sqlite.insert(target)
    )
    new, old = statement.excluded, target.c
    keys = list(target.primary_key.columns)
    if add:
        values = {
            "count": old["count"] + new["count"],
            "authors": case(
                (new["authors"] > old["authors"], new["authors"]), else_=old["authors"]
            ),
        }
    else:
        values = {name: new[name] for name in rows[0] if name not in {c.name for c in keys}}
    session.execute(statement.on_conflict_do_update(index_elements=keys, set_=values), rows)


_LABEL_TABLES = (("topic", RollupTopic), ("hashtag", RollupHashtag), ("keyword", RollupKeyword))


def _values(record: ResearchRecord) -> tuple[Any, ...]:
    return (
        record.account_label,
        record.platform,
        record.channel_kind,
        record.language,
        record.sentiment_label,
        record.sentiment_score,
        record.author_pseudonym,
        record.time_bucket,
        record.topics,
        record.hashtags,
    )


def _text_values(record: ResearchRecord) -> tuple[Any, ...]:
    return (
        record.account_label,
        record.platform,
        record.channel_kind,
        record.language,
        record.author_pseudonym,
        record.redacted_text,
    )


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
