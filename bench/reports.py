"""How fast the trend report's queries answer on two years of raw research records.

    .venv/bin/python bench/reports.py                                   # 10,000,000 records, SQLite
    .venv/bin/python bench/reports.py --records 1000000 --runs 30
    .venv/bin/python bench/reports.py --database-url sqlite:////tmp/r.db \\
        --database-url postgresql+psycopg://postgres@127.0.0.1/socialcare_bench_reports
    .venv/bin/python bench/reports.py --no-seed                         # reuse the seeded DB

Seeding (bench/reports_seed.py): every record is generated (13,698 a day for ten million over
two years) with a realistic spread: three accounts on three platforms, three channel kinds,
German and English, three sentiment labels, a dozen topics, Zipf tails of hashtags (300) and
of keywords (four words a message from a vocabulary of 500), and authors drawn Pareto-like from
a pool that changes every month (pseudonym keys rotate monthly). The raw records are inserted
and each day is rolled up by the drain's own `rollup_rows` and `keyword_rows`, each month by
`refresh_months`. Several `--database-url`s are filled from the one generated stream.

Timing: each query runs `--runs` times for each preset range (7, 30, 90 days) and a 365-day
custom range ending on a random day of the second year, once unfiltered and once filtered by
one account. Printed per query and range: p50 and p95 wall time in milliseconds and the mean
CPU time (this process plus, on PostgreSQL, the server backend), which other load on the
machine disturbs less than wall time. "whole report" is `report_tables`, every table with its
protections, as the page builds it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from anonymizer import report_queries as queries  # noqa: E402
from anonymizer.disclosure import Protection  # noqa: E402
from anonymizer.report_queries import ReportFilter  # noqa: E402
from anonymizer.store import metadata  # noqa: E402
from bench.reports_seed import ACCOUNTS, DAYS, FIRST_DAY, seed  # noqa: E402
from inbox.reports_secondary import report_tables  # noqa: E402

RANGES = (7, 30, 90, 365)
Query = Callable[[Session, ReportFilter], object]
QUERIES: dict[str, Query] = {
    "volume": lambda s, w: queries.volume(session=s, where=w),
    "sentiment": lambda s, w: queries.sentiment(session=s, where=w),
    "topics": lambda s, w: queries.topics(session=s, where=w),
    "hashtags": lambda s, w: queries.hashtags(session=s, where=w),
    "keywords": lambda s, w: queries.keywords(session=s, where=w),
    "languages": lambda s, w: queries.languages(session=s, where=w),
    "hour_of_week": lambda s, w: queries.hour_of_week(session=s, where=w),
    "filter options": lambda s, w: queries.options(session=s, since=w.since, until=w.until),
    "whole report": lambda s, w: report_tables(
        session=s, where=w, protection=Protection(k=5, epsilon=1.0, secret=b"bench"), report="b"
    ),
}


class CpuClock:
    """CPU seconds of this process and, on PostgreSQL, of the session's server backend."""

    def __init__(self, session: Session) -> None:
        self.stat: Path | None = None
        if session.get_bind().dialect.name == "postgresql":
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            self.stat = Path(f"/proc/{pid}/stat")
        self.tick = os.sysconf("SC_CLK_TCK")

    def __call__(self) -> float:
        """Seconds so far."""
        seconds = time.process_time()
        if self.stat is not None:
            # utime and stime, fields 14 and 15, after the parenthesised command name.
            fields = self.stat.read_text().rsplit(")", 1)[1].split()
            seconds += (int(fields[11]) + int(fields[12])) / self.tick
        return seconds


def measure(url: str, runs: int, names: list[str]) -> None:
    """Time every query on one database and print p50/p95 wall and mean CPU per range."""
    engine = create_engine(url)
    rng = random.Random(11)
    results: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    with Session(engine) as session:
        clock = CpuClock(session)
        for _ in range(runs):
            for days in RANGES:
                end = FIRST_DAY + timedelta(days=365 + rng.randrange(DAYS - 366))
                for account in (None, ACCOUNTS[0][0]):
                    where = ReportFilter(
                        since=end - timedelta(days=days), until=end, account_label=account
                    )
                    for name in names:
                        wall, cpu = time.perf_counter(), clock()
                        QUERIES[name](session, where)
                        sample = ((time.perf_counter() - wall) * 1000, (clock() - cpu) * 1000)
                        results.setdefault((name, account or "", days), []).append(sample)
    uptime = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\n{engine.dialect.name} ({url.split('@')[-1]}), {runs} runs, load {' '.join(uptime)}")
    for account in ("", ACCOUNTS[0][0]):
        print(f"\n{'filtered by one account' if account else 'unfiltered'}: p50 / p95 (cpu) ms")
        print(f"{'query':<15}" + "".join(f"{f'{d} days':>24}" for d in RANGES))
        for name in names:
            print(f"{name:<15}" + "".join(_cell(results[(name, account, d)]) for d in RANGES))
    engine.dispose()


def _cell(samples: list[tuple[float, float]]) -> str:
    walls = sorted(wall for wall, _ in samples)
    p95 = walls[min(len(walls) - 1, int(len(walls) * 0.95))]
    cpu = statistics.mean(cpu for _, cpu in samples)
    return f"{statistics.median(walls):7.1f} /{p95:7.1f} ({cpu:5.0f})"


def ensure_totals(engine: Any) -> None:
    """Give a database seeded before the all-channel totals existed its totals, filled from its
    rollups as research migration 0006 fills them."""
    metadata.create_all(engine)  # only the tables that are missing
    with engine.begin() as connection:
        for label in ("hashtag", "keyword"):
            if connection.execute(text(f"SELECT 1 FROM rollup_{label}_total LIMIT 1")).first():
                continue
            for suffix, source in (("total", ""), ("total_month", "_month")):
                connection.execute(
                    text(
                        f"INSERT INTO rollup_{label}_{suffix} (day, {label}, count, authors) "
                        f"SELECT day, {label}, SUM(count), MAX(authors) FROM rollup_{label}{source}"
                        f" GROUP BY day, {label}"
                    )
                )
            connection.execute(text(f"ANALYZE rollup_{label}_total"))
            connection.execute(text(f"ANALYZE rollup_{label}_total_month"))


def main() -> None:
    """Seed unless told not to, then time every report query on every database."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--database-url",
        action="append",
        help="research store to seed and time (repeatable; default a SQLite file in /tmp)",
    )
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-seed", action="store_true", help="reuse the seeded databases")
    parser.add_argument("--no-timing", action="store_true", help="only seed")
    parser.add_argument("--query", action="append", choices=QUERIES, help="time only these")
    args = parser.parse_args()
    urls: list[str] = args.database_url or ["sqlite:////tmp/socialcare-bench-reports.db"]
    if not args.no_seed:
        seed([create_engine(url) for url in urls], args.records, sys.stderr)
    else:
        for url in urls:
            ensure_totals(create_engine(url))
    if not args.no_timing:
        for url in urls:
            measure(url, args.runs, args.query or list(QUERIES))


if __name__ == "__main__":
    main()
