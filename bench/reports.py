"""How fast the trend report's queries answer on two years of research records.

    .venv/bin/python bench/reports.py                                   # 10,000,000 records, SQLite
    .venv/bin/python bench/reports.py --records 1000000 --runs 30
    .venv/bin/python bench/reports.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench

Seeding: records are generated a day at a time (13,700 a day for ten million over two years)
with a realistic spread: three accounts on three platforms, three channel kinds, German and
English, three sentiment labels, a dozen topics, Zipf-like tails of hashtags and of keywords
(four words a message from a vocabulary of 500), and authors
drawn from a pool that changes every month (pseudonym keys rotate monthly). Each day's
rollups are computed by `anonymizer.rollups.rollup_rows`, the very function the drain uses, and
inserted; the raw records themselves are not inserted unless `--raw` is given, because no report
query reads them (only the few redacted examples do, through the time index), and ten million
raw inserts would take most of the run. The figures are therefore those of the report queries
over rollups built from ten million records.

Timing: each query runs `--runs` times for each preset range (7, 30, 90 days) and a 365-day
custom range, ending on a random day of the second year, unfiltered and filtered by one account;
p50 and p95 in milliseconds are printed per query, plus the whole report (`all_tables`, every
table with its protections, as the page builds it).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, insert, select  # noqa: E402
from sqlmodel import Session  # noqa: E402

from anonymizer import report_queries as queries  # noqa: E402
from anonymizer.disclosure import Protection  # noqa: E402
from anonymizer.report_queries import ReportFilter  # noqa: E402
from anonymizer.rollups import keyword_rows, month_of, refresh_months, rollup_rows  # noqa: E402
from anonymizer.store import (  # noqa: E402
    MONTHLY,
    ROLLUPS,
    ResearchRecord,
    RollupDay,
    RollupHashtag,
    RollupHour,
    RollupKeyword,
    RollupTopic,
    metadata,
)
from inbox.reports_tables import all_tables  # noqa: E402

ACCOUNTS = (("Quendelmarkt", "x"), ("Quendelmarkt DE", "facebook"), ("Quendel Style", "instagram"))
KINDS = ("mention", "comment", "dm")
TOPICS = (
    "delivery", "returns", "billing", "product", "praise", "shop", "account",
    "voucher", "size", "quality", "stock", "app",
)  # fmt: skip
HASHTAGS = [f"tag{n}" for n in range(300)]
HASHTAG_WEIGHTS = [1 / (n + 1) for n in range(300)]
KEYWORDS = [f"wort{n}" for n in range(500)]
KEYWORD_WEIGHTS = [1 / (n + 1) for n in range(500)]
WORDS_PER_MESSAGE = 4
DAYS = 730


def generate_day(day: date, count: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """One day's records as the tuples `rollup_rows` reads, plus a redacted text."""
    month = day.year * 12 + day.month
    pool = 150_000
    for _ in range(count):
        account, platform = rng.choice(ACCOUNTS)
        label = rng.choices(("negative", "neutral", "positive"), (3, 5, 2))[0]
        topics = rng.sample(TOPICS, rng.choice((0, 1, 1, 1, 2)))
        tags = rng.choices(HASHTAGS, HASHTAG_WEIGHTS, k=rng.choice((0, 0, 0, 1, 2)))
        yield (
            account,
            platform,
            rng.choice(KINDS),
            "de" if rng.random() < 0.7 else "en",
            label,
            rng.uniform(-1, 1),
            f"{month}-{int(rng.paretovariate(1.2) * 1000) % pool}",
            datetime.combine(day, datetime.min.time()) + timedelta(hours=rng.randrange(24)),
            topics,
            tags,
            " ".join(rng.choices(KEYWORDS, KEYWORD_WEIGHTS, k=WORDS_PER_MESSAGE)),
        )


def poisson(rng: random.Random, mu: float) -> int:
    """A Poisson draw: Knuth's method for small means, a rounded normal for large ones."""
    if mu > 30:
        return max(0, round(rng.gauss(mu, mu**0.5)))
    limit, k, p = math.exp(-mu), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _authors(rng: random.Random, count: int) -> int:
    # Most people write once a day; a few write several times.
    return max(1, round(count * rng.uniform(0.8, 1.0)))


def synthesize_day(
    day: date, per_day: int, rng: random.Random
) -> dict[type[Any], list[dict[str, Any]]]:
    """One day's rollup rows drawn directly from the same distribution as `generate_day`."""
    rows: dict[type[Any], list[dict[str, Any]]] = {t: [] for t in ROLLUPS}
    tag_total = sum(HASHTAG_WEIGHTS)
    word_total = sum(KEYWORD_WEIGHTS)
    for account, platform in ACCOUNTS:
        for kind in KINDS:
            for language, language_share in (("de", 0.7), ("en", 0.3)):
                dims = {
                    "day": day,
                    "account_label": account,
                    "platform": platform,
                    "channel_kind": kind,
                    "language": language,
                }
                mu = per_day * language_share / 9
                for label, share in (("negative", 0.3), ("neutral", 0.5), ("positive", 0.2)):
                    n = poisson(rng, mu * share)
                    if n:
                        rows[RollupDay].append(
                            {**dims, "sentiment_label": label, "count": n,
                             "score_sum": rng.uniform(-0.2, 0.2) * n, "authors": _authors(rng, n)}
                        )  # fmt: skip
                for hour in range(24):
                    n = poisson(rng, mu / 24)
                    if n:
                        rows[RollupHour].append(
                            {**dims, "hour": hour, "count": n, "authors": _authors(rng, n)}
                        )
                for topic in TOPICS:
                    n = poisson(rng, mu / len(TOPICS))
                    if n:
                        rows[RollupTopic].append(
                            {**dims, "topic": topic, "count": n, "authors": _authors(rng, n)}
                        )
                for tag, weight in zip(HASHTAGS, HASHTAG_WEIGHTS, strict=True):
                    n = poisson(rng, mu * 0.6 * weight / tag_total)
                    if n:
                        rows[RollupHashtag].append(
                            {**dims, "hashtag": tag, "count": n, "authors": _authors(rng, n)}
                        )
                for word, weight in zip(KEYWORDS, KEYWORD_WEIGHTS, strict=True):
                    n = poisson(rng, mu * WORDS_PER_MESSAGE * weight / word_total)
                    if n:
                        rows[RollupKeyword].append(
                            {**dims, "keyword": word, "count": n, "authors": _authors(rng, n)}
                        )
    return rows


def insert_records(
    connection: Any, day: date, offset: int, per_day: int, rng: random.Random, *, raw: bool
) -> None:
    """Generate one day's records, roll them up as the drain does, and insert the raw ones too."""
    rows = list(generate_day(day, per_day, rng))
    rolled = rollup_rows(day=day, records=[r[:10] for r in rows])
    rolled[RollupKeyword] = keyword_rows(day=day, records=[(*r[:4], r[6], r[10]) for r in rows])
    for table, values in rolled.items():
        if values:
            connection.execute(insert(table), values)
    if raw:
        connection.execute(
            insert(ResearchRecord),
            [
                {
                    "id": f"{offset:04d}{n:08d}",
                    "account_label": r[0],
                    "platform": r[1],
                    "channel_kind": r[2],
                    "language": r[3],
                    "sentiment_label": r[4],
                    "sentiment_score": r[5],
                    "author_pseudonym": r[6],
                    "time_bucket": r[7],
                    "topics": r[8],
                    "hashtags": r[9],
                    "redacted_text": r[10],
                }
                for n, r in enumerate(rows)
            ],
        )


def seed(engine: Any, *, records: int, raw: bool, first: date, from_records: bool) -> None:
    """Create the tables and fill them with `records` records over two years."""
    metadata.drop_all(engine)
    metadata.create_all(engine)
    rng = random.Random(7)
    per_day = records // DAYS
    started = time.perf_counter()
    with engine.begin() as connection:
        for offset in range(DAYS):
            day = first + timedelta(days=offset)
            if not (from_records or raw):
                for table, values in synthesize_day(day, per_day, rng).items():
                    if values:
                        connection.execute(insert(table), values)
            else:
                insert_records(connection, day, offset, per_day, rng, raw=raw)
            if day.month != (day + timedelta(days=1)).month or offset == DAYS - 1:
                with Session(bind=connection) as session:
                    refresh_months(session=session, months={month_of(day)})
                    session.flush()
            if offset % 73 == 0:
                print(f"  seeded {offset + 1}/{DAYS} days", file=sys.stderr, flush=True)
    how = "from generated records" if from_records or raw else "as rollups drawn directly"
    print(f"seeded {per_day * DAYS:,} records {how} in {time.perf_counter() - started:.0f} s")


def copy_rollups(source: Any, target: Any) -> None:
    """The rollup tables of one seeded database copied into another (same generator output)."""
    metadata.drop_all(target)
    metadata.create_all(target)
    started = time.perf_counter()
    with source.connect() as reading, target.begin() as writing:
        for table in (*ROLLUPS, *MONTHLY):
            result = reading.execution_options(stream_results=True).execute(
                select(table.__table__)  # type: ignore[attr-defined]
            )
            while batch := result.mappings().fetchmany(50_000):
                writing.execute(insert(table), [dict(row) for row in batch])
    print(f"copied the rollups in {time.perf_counter() - started:.0f} s")


def timed(runs: list[float], call: Callable[[], object]) -> None:
    """Run a call once and record its time in milliseconds."""
    started = time.perf_counter()
    call()
    runs.append((time.perf_counter() - started) * 1000)


def main() -> None:
    """Seed, then time every report query and print p50/p95."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/socialcare-bench-reports.db")
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--raw", action="store_true", help="insert the raw records too")
    parser.add_argument(
        "--from-records",
        action="store_true",
        help="generate every record and roll it up as the drain does (slow), not the rollups",
    )
    parser.add_argument("--no-seed", action="store_true", help="reuse the seeded database")
    parser.add_argument("--copy-from", help="copy the rollups of a database seeded before")
    args = parser.parse_args()
    engine = create_engine(args.database_url)
    first = date(2024, 11, 1)
    if args.copy_from:
        copy_rollups(create_engine(args.copy_from), engine)
    elif not args.no_seed:
        seed(
            engine,
            records=args.records,
            raw=args.raw,
            first=first,
            from_records=args.from_records,
        )
    rng = random.Random(11)
    protection = Protection(k=5, epsilon=1.0, secret=b"bench")
    names: dict[str, Callable[[Session, ReportFilter], object]] = {
        "volume": lambda s, w: queries.volume(session=s, where=w),
        "sentiment": lambda s, w: queries.sentiment(session=s, where=w),
        "topics": lambda s, w: queries.topics(session=s, where=w),
        "hashtags": lambda s, w: queries.hashtags(session=s, where=w),
        "keywords": lambda s, w: queries.keywords(session=s, where=w),
        "languages": lambda s, w: queries.languages(session=s, where=w),
        "hour_of_week": lambda s, w: queries.hour_of_week(session=s, where=w),
        "filter options": lambda s, w: queries.options(session=s, since=w.since, until=w.until),
        "whole report": lambda s, w: all_tables(
            session=s, where=w, protection=protection, report="bench"
        ),
    }
    ranges = (7, 30, 90, 365)
    results: dict[tuple[str, int], list[float]] = {(n, d): [] for n in names for d in ranges}
    with Session(engine) as session:
        for _ in range(args.runs):
            for days in ranges:
                end = first + timedelta(days=365 + rng.randrange(DAYS - 366))
                account = rng.choice((None, ACCOUNTS[0][0]))
                where = ReportFilter(
                    since=end - timedelta(days=days), until=end, account_label=account
                )
                for name, call in names.items():
                    timed(results[(name, days)], lambda c=call, w=where: c(session, w))  # type: ignore[misc]
    print(f"{engine.dialect.name}, {args.records:,} records, {args.runs} runs per query and range")
    print(f"{'query':<16}" + "".join(f" {f'{d} d p50/p95 ms':>18}" for d in ranges))
    for name in names:
        cells = []
        for days in ranges:
            runs = sorted(results[(name, days)])
            p95 = runs[min(len(runs) - 1, int(len(runs) * 0.95))]
            cells.append(f"{statistics.median(runs):8.1f} /{p95:8.1f}")
        print(f"{name:<16}" + "".join(f" {cell:>18}" for cell in cells))


if __name__ == "__main__":
    main()
