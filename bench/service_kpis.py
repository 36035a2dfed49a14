"""How long the trend report's service KPIs (`service_summary`) take on an existing database.

    .venv/bin/python bench/service_kpis.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/socialcare_load --runs 20

Nothing is seeded: point it at a filled copy (bench/load_setup.py fills `socialcare_load`).
For each range ending today (7, 30, 90 and 365 days), unfiltered and filtered by the first
account, `service_summary` runs `--runs` times after one warm-up. Printed: p50 and p95 wall
time in milliseconds, mean CPU milliseconds of this process and, on PostgreSQL, of the
session's server backend, and the load average (other work on the machine disturbs wall time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from inbox.models import Account  # noqa: E402
from inbox.reports_kpis import service_summary  # noqa: E402
from inbox.types import utcnow  # noqa: E402


def backend_cpu(pid: int | None) -> float:
    """CPU seconds of the PostgreSQL backend `pid` so far (0 without one, as on SQLite)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime, fields 14 and 15, after the parenthesised command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Time `service_summary` per range and filter and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    engine = create_engine(args.database_url)
    now = utcnow()
    today = now.date()
    print(f"load average before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print("range    filter      p50 ms   p95 ms   cpu ms (python + db)   conversations")
    with Session(engine) as session:
        first = session.exec(select(Account).order_by(Account.id)).first()  # type: ignore[arg-type]
        label = first.display_name if first else None
        pid = None
        if session.get_bind().dialect.name == "postgresql":
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        for days in (7, 30, 90, 365):
            for account in (None, label):
                since, until = today - timedelta(days=days - 1), today + timedelta(days=1)
                walls, own, server = [], [], []
                for run in range(args.runs + 1):
                    db, cpu, wall = backend_cpu(pid), time.process_time(), time.perf_counter()
                    summary = service_summary(
                        session=session, since=since, until=until, now=now, account_label=account
                    )
                    if run:  # the first run warms caches
                        walls.append((time.perf_counter() - wall) * 1000)
                        own.append((time.process_time() - cpu) * 1000)
                        server.append((backend_cpu(pid) - db) * 1000)
                    session.rollback()
                p95 = statistics.quantiles(walls, n=20)[-1] if len(walls) > 1 else walls[0]
                print(
                    f"{days:4d} d   {'account' if account else 'all':8s}"
                    f"{statistics.median(walls):9.1f}{p95:9.1f}"
                    f"{statistics.mean(own):10.1f} +{statistics.mean(server):6.1f}"
                    f"{summary.conversations:17d}"
                )
    print(f"load average after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()
