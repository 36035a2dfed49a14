"""Seeding for bench/reports.py: raw research records generated fast, rolled up as the drain does.

Records are generated a day at a time with numpy and assembled into the very tuples the drain
reads, then `anonymizer.rollups.rollup_rows` and `keyword_rows` (the drain's functions) turn
each day into its rollup rows; at each month's end `refresh_totals` sums its days over the
channels and `refresh_months` builds the monthly rollups.
Raw records and rollup rows go in through each driver's bulk path: `executemany` on the raw
sqlite3 connection, `COPY ... FROM STDIN` through psycopg 3. Secondary indexes are dropped for
the load and created after it. One generated stream can fill several databases in one pass.
"""

from __future__ import annotations

import json
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, Index, text
from sqlmodel import Session

from anonymizer.rollups import (
    keyword_rows,
    month_of,
    refresh_months,
    refresh_totals,
    rollup_rows,
)
from anonymizer.store import ROLLUPS, ResearchRecord, RollupKeyword, metadata

ACCOUNTS = (("Quendelmarkt", "x"), ("Quendelmarkt DE", "facebook"), ("Quendel Style", "instagram"))
KINDS = ("mention", "comment", "dm")
LABELS = ("negative", "neutral", "positive")
TOPICS = (
    "delivery", "returns", "billing", "product", "praise", "shop", "account",
    "voucher", "size", "quality", "stock", "app",
)  # fmt: skip
HASHTAGS = [f"tag{n}" for n in range(300)]
# Keywords must be letters only (anonymizer.keywords drops anything with a digit).
_LETTERS = string.ascii_lowercase
KEYWORDS = [f"wort{_LETTERS[n // 26]}{_LETTERS[n % 26]}" for n in range(500)]
WORDS_PER_MESSAGE = 4
AUTHOR_POOL = 150_000
DAYS = 730
FIRST_DAY = date(2024, 11, 1)


def _zipf(size: int) -> Any:
    weights = 1 / np.arange(1, size + 1)
    return weights / weights.sum()


# Every topic list a record can have: none, one of twelve, or two different ones.
_TOPIC_LISTS: list[list[str]] = [[], *([t] for t in TOPICS)] + [
    [a, b] for a in TOPICS for b in TOPICS
]
# Hashtags are drawn with replacement, so a record may repeat one (the rollup dedups it).
_TAG_LISTS: list[list[str]] = [[], *([t] for t in HASHTAGS)] + [
    [a, b] for a in HASHTAGS for b in HASHTAGS
]
_TOPIC_JSON = [json.dumps(values) for values in _TOPIC_LISTS]
_TAG_JSON = [json.dumps(values) for values in _TAG_LISTS]
_DIMS = np.array(
    [(a, p, k, lang) for a, p in ACCOUNTS for k in KINDS for lang in ("de", "en")], dtype=object
)
_WORDS = np.array(KEYWORDS, dtype=object)
_WORD_P = _zipf(len(KEYWORDS))
_TAG_P = _zipf(len(HASHTAGS))


@dataclass
class Day:
    """One generated day: raw rows in research_record's column order and the rollup rows."""

    day: date
    raw: list[tuple[Any, ...]]
    rollups: dict[type[Any], list[dict[str, Any]]]


RAW_COLUMNS = (
    "id", "account_label", "platform", "channel_kind", "time_bucket", "language",
    "redacted_text", "topics", "hashtags", "sentiment_label", "sentiment_score",
    "author_pseudonym",
)  # fmt: skip


def generate_day(day: date, offset: int, count: int, rng: np.random.Generator) -> Day:
    """One day's records: three accounts, three channel kinds, 70 % German, Zipf tails.

    Authors come from a pool of 150,000 pseudonyms that changes every month (keys rotate
    monthly), drawn Pareto(1.2) so a few people write a lot.
    """
    n1 = len(TOPICS)
    account, kind, english = rng.integers(0, 3, count), rng.integers(0, 3, count), rng.random(count)
    dims = _DIMS[account * 6 + kind * 2 + (english >= 0.7)]
    labels = np.array(LABELS, dtype=object)[rng.choice(3, size=count, p=(0.3, 0.5, 0.2))]
    scores = np.round(rng.uniform(-1, 1, count), 4).tolist()
    month = day.year * 12 + day.month
    drawn = ((rng.pareto(1.2, count) + 1) * 1000).astype(np.int64) % AUTHOR_POOL
    authors = [f"{month}-{a}" for a in drawn.tolist()]
    starts = [datetime.combine(day, datetime.min.time()) + timedelta(hours=h) for h in range(24)]
    hours = rng.integers(0, 24, count)
    first = rng.integers(0, n1, count)
    second = (first + rng.integers(1, n1, count)) % n1
    topic_count = rng.choice((0, 1, 1, 1, 2), count)
    pairs = 1 + n1 + first * n1 + second
    topics = np.where(topic_count == 0, 0, np.where(topic_count == 1, 1 + first, pairs))
    nt = len(HASHTAGS)
    tag_count = rng.choice((0, 0, 0, 1, 2), count)
    one, two = rng.choice(nt, count, p=_TAG_P), rng.choice(nt, count, p=_TAG_P)
    tags = np.where(tag_count == 0, 0, np.where(tag_count == 1, 1 + one, 1 + nt + one * nt + two))
    words = _WORDS[rng.choice(len(KEYWORDS), (count, WORDS_PER_MESSAGE), p=_WORD_P)]
    texts = (words[:, 0] + " " + words[:, 1] + " " + words[:, 2] + " " + words[:, 3]).tolist()
    dim_rows = dims.tolist()
    buckets = [starts[h] for h in hours.tolist()]
    topic_codes, tag_codes = topics.tolist(), tags.tolist()
    records = [
        (*d, label, score, author, bucket, _TOPIC_LISTS[t], _TAG_LISTS[g])
        for d, label, score, author, bucket, t, g in zip(
            dim_rows, labels.tolist(), scores, authors, buckets, topic_codes, tag_codes, strict=True
        )
    ]
    rollups = rollup_rows(day=day, records=records)
    rollups[RollupKeyword] = keyword_rows(
        day=day,
        records=[(*d, author, t) for d, author, t in zip(dim_rows, authors, texts, strict=True)],
    )
    # Ids ascend (the drain's are random hex) so the primary key grows at its end; no report
    # query reads them.
    raw = [
        (f"{offset:08x}{n:024x}", *d[:3], bucket, d[3], text, _TOPIC_JSON[t], _TAG_JSON[g], *r[4:7])
        for n, (d, bucket, text, t, g, r) in enumerate(
            zip(dim_rows, buckets, texts, topic_codes, tag_codes, records, strict=True)
        )
    ]
    return Day(day=day, raw=raw, rollups=rollups)


def days(records: int, seed: int = 7) -> Iterator[Day]:
    """`records` records spread evenly over two years from 2024-11-01, a day at a time."""
    rng = np.random.default_rng(seed)
    per_day = records // DAYS
    for offset in range(DAYS):
        yield generate_day(FIRST_DAY + timedelta(days=offset), offset, per_day, rng)


def _columns(table: Any) -> list[str]:
    return [column.name for column in table.__table__.columns]


@dataclass
class Sink:
    """One database being seeded: bulk writes in one transaction per month, timed."""

    engine: Engine
    seconds: float = 0.0
    indexes: list[Index] = field(default_factory=list)

    def __post_init__(self) -> None:
        started = time.perf_counter()
        metadata.drop_all(self.engine)
        metadata.create_all(self.engine)
        self.connection = self.engine.connect()
        for table in metadata.sorted_tables:
            for index in table.indexes:
                index.drop(self.connection)
                self.indexes.append(index)
        self.connection.commit()
        self.dbapi: Any = self.connection.connection.driver_connection
        self.sqlite = self.engine.dialect.name == "sqlite"
        if self.sqlite:
            self.dbapi.execute("PRAGMA synchronous=OFF")
            self.dbapi.execute("PRAGMA cache_size=-262144")
        self.seconds += time.perf_counter() - started

    def write(self, day: Day) -> None:
        """Insert one day's raw records and rollup rows; at a month's end, its monthly rollups."""
        started = time.perf_counter()
        self._bulk(ResearchRecord, list(RAW_COLUMNS), day.raw)
        for table in ROLLUPS:
            names = _columns(table)
            rows = [tuple(row[name] for name in names) for row in day.rollups[table]]
            self._bulk(table, names, rows)
        if (day.day + timedelta(days=1)).day == 1 or day.day == FIRST_DAY + timedelta(DAYS - 1):
            with Session(bind=self.connection) as session:
                month = month_of(day.day)
                refresh_totals(
                    session=session,
                    days=[month + timedelta(days=n) for n in range((day.day - month).days + 1)],
                )
                refresh_months(session=session, months={month})
                # The session began the connection's transaction: this commits the month.
                session.commit()
            self.dbapi.commit()
        self.seconds += time.perf_counter() - started

    def _bulk(self, table: Any, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        name = table.__tablename__
        if self.sqlite:
            dated = [i for i, value in enumerate(rows[0]) if isinstance(value, date)]
            if dated:
                rows = [_sqlite(row, dated) for row in rows]
            marks = ", ".join("?" * len(names))
            self.dbapi.executemany(
                f"INSERT INTO {name} ({', '.join(names)}) VALUES ({marks})",  # noqa: S608
                rows,
            )
            return
        with (
            self.dbapi.cursor() as cursor,
            cursor.copy(f"COPY {name} ({', '.join(names)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def finish(self) -> None:
        """Commit, create the secondary indexes, and let PostgreSQL vacuum and analyze."""
        started = time.perf_counter()
        self.connection.commit()
        self.dbapi.commit()
        for index in self.indexes:
            index.create(self.connection)
        self.connection.commit()
        self.connection.close()
        if not self.sqlite:
            # What autovacuum does after a bulk load: statistics and the visibility map.
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE"))
        self.seconds += time.perf_counter() - started


def _sqlite(row: tuple[Any, ...], dated: list[int]) -> tuple[Any, ...]:
    # The text SQLAlchemy's SQLite dialect stores for dates and datetimes.
    values = list(row)
    for i in dated:
        value = values[i]
        if isinstance(value, datetime):
            values[i] = value.strftime("%Y-%m-%d %H:%M:%S.%f")
        else:
            values[i] = value.isoformat()
    return tuple(values)


def seed(engines: list[Engine], records: int, log: Any) -> None:
    """Fill every engine's research store with the same generated records and their rollups."""
    sinks = [Sink(engine) for engine in engines]
    started, cpu = time.perf_counter(), time.process_time()
    for offset, day in enumerate(days(records)):
        for sink in sinks:
            sink.write(day)
        if offset % 73 == 72:
            print(f"  seeded {offset + 1}/{DAYS} days", file=log, flush=True)
    for sink in sinks:
        sink.finish()
    wall = time.perf_counter() - started
    generated = wall - sum(sink.seconds for sink in sinks)
    total = records // DAYS * DAYS
    print(f"seeded {total:,} records in {wall:.0f} s: generating and rolling up {generated:.0f} s")
    print(f"  CPU time of this process: {time.process_time() - cpu:.0f} s (not the server's)")
    for sink in sinks:
        name = sink.engine.dialect.name
        print(f"  {name}: writing, monthly rollups, indexes {sink.seconds:.0f} s")
