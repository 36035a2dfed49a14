"""The worker's CPU cost per item: polling and ingestion, then draining into the research store.

    .venv/bin/python bench/worker_cpu.py                      # PostgreSQL, 3,000 items
    .venv/bin/python bench/worker_cpu.py --items 6000 --feeders 4 --batch 25 --drain-every 5
    .venv/bin/python bench/worker_cpu.py --database-url sqlite:////tmp/wcpu/inbox.db
    .venv/bin/python bench/worker_cpu.py --research-url \\
        postgresql+psycopg://postgres@127.0.0.1:5432/socialcare_worker_bench_research
    .venv/bin/python bench/worker_cpu.py --profile            # cProfile's top functions too

The inbox database (PostgreSQL ``socialcare_worker_bench`` by default) is dropped, created and
migrated afresh, and so is the research store (SQLite in ``--data-dir`` by default, as
bench/load.sh has it; a PostgreSQL URL is dropped and created too). ``--feeders`` offline demo
accounts are connected the way bench/load_setup.py ``prepare`` connects its feeders (same
seeds, renamed so that each is an account of its own), with enough items posted already for
the whole run.

Then the worker's own functions run in this one process, as the scheduler would call them
under bench/load.sh (four feeders polled every second, 100 items a second, a drain every five
seconds): a round polls every feeder once with `poll_account` (lease, connector, ingestion,
commit), each poll bringing ``--batch`` items (the demo connector's batch cap, 50 by default,
is lowered to that); every ``--drain-every`` rounds `drain` empties the research outbox
(anonymizing, research records, rollups). This goes on until ``--items`` are stored, and a
last drain empties the outbox.

Printed: the items stored, this process's CPU time (time.process_time, the lease-renewal thread
included) per item for polling plus ingestion and for draining, and on PostgreSQL the CPU time
the database backends of this process used per item (read from /proc by pid, as load_setup.py
``snapshot`` reads them), split the same way. CPU time, not wall time: the machine may be
shared. Wall time is printed too, for reference only. A first round of polls and a drain warm
the process up uncounted: a worker loads its language model and name lists once, then runs for
days.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

# libpq reads PGAPPNAME: our backends are told apart from the rest by it.
APP_NAME = "socialcare-worker-cpu"
os.environ["PGAPPNAME"] = APP_NAME

from cryptography.fernet import Fernet  # noqa: E402
from flask import Flask  # noqa: E402
from sqlalchemy import Engine, create_engine, func, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

import connectors.demo  # noqa: E402
import inbox.research  # noqa: E402
from anonymizer import rollups  # noqa: E402
from bench.load_setup import FEEDER_PREFIX, _cpu_seconds  # noqa: E402
from inbox import create_app  # type: ignore[attr-defined]  # noqa: E402
from inbox.accounts import connect_account  # noqa: E402
from inbox.db import databases  # noqa: E402
from inbox.migrate import upgrade  # noqa: E402
from inbox.models import Account, Message, ResearchOutbox  # noqa: E402
from inbox.research import DrainResult  # noqa: E402
from inbox.types import utcnow  # noqa: E402
from inbox.worker import context_from_app, drain, poll_account  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/socialcare_worker_bench"
DATA_DIR = "/tmp/socialcare-worker-cpu"  # noqa: S108  (a scratch folder of this benchmark)
T = TypeVar("T")
SECRET = "worker-cpu-bench-secret-not-secret-0123456789"  # noqa: S105


def fresh_database(url: str) -> None:
    """Drop and create a PostgreSQL database, or delete a SQLite file and its journals."""
    target = make_url(url)
    if target.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{target.database}{suffix}").unlink(missing_ok=True)
        Path(str(target.database)).parent.mkdir(parents=True, exist_ok=True)
        return
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


class Backends:
    """The CPU seconds so far of this process's PostgreSQL backends on some databases."""

    def __init__(self, urls: list[str]) -> None:
        """Watch the PostgreSQL databases among these URLs (SQLite ones have no backends)."""
        self.engines: list[tuple[Engine, str]] = [
            (
                create_engine(make_url(u), connect_args={"application_name": f"{APP_NAME}-probe"}),
                str(make_url(u).database),
            )
            for u in urls
            if make_url(u).get_backend_name() == "postgresql"
        ]
        self.seen: dict[int, float] = {}

    def cpu(self) -> float:
        """Total CPU of the backends, counting one that has gone with its last reading."""
        for engine, name in self.engines:
            with engine.connect() as connection:
                pids = connection.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = :d AND application_name = :a"
                    ),
                    {"d": name, "a": APP_NAME},
                ).scalars()
                for pid in pids:
                    self.seen[pid] = _cpu_seconds(pid, children=False)
        return sum(self.seen.values())

    def dispose(self) -> None:
        """Close the probe's own connections."""
        for engine, _ in self.engines:
            engine.dispose()


def setup(args: argparse.Namespace) -> tuple[Flask, list[int]]:
    """Fresh, migrated databases and the demo feeders; the app and the feeders' ids."""
    fresh_database(args.database_url)
    fresh_database(args.research_url)
    app = create_app(
        {
            "DATABASE_URL": args.database_url,
            "RESEARCH_DATABASE_URL": args.research_url,
            "SECRET_KEY": SECRET,
            "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        }
    )
    dbs = databases(app)
    upgrade(dbs.inbox, "inbox")
    upgrade(dbs.research, "research")
    from inbox.config import multi_fernet

    fernet = multi_fernet(app.config["ENCRYPTION_KEYS"])
    per_feeder = -(-args.items // args.feeders)
    # Every item the run needs is posted already, spread over the last minutes like live ones.
    per_minute = 25 * 60.0
    start = utcnow() - timedelta(minutes=per_feeder / per_minute + 1)
    ids = []
    with Session(dbs.inbox, expire_on_commit=False) as session:
        for n in range(1, args.feeders + 1):
            account = connect_account(
                session=session,
                fernet=fernet,
                platform="demo",
                credentials={},
                settings={
                    "seed": 1000 + n,
                    "rate": per_minute,
                    "start": start.isoformat(),
                    "backlog": 0,
                    "malformed_every": args.malformed_every,
                },
                poll_interval_seconds=1,
            )
            account.platform_account_id = f"{FEEDER_PREFIX}{n}"
            account.display_name = f"Load feeder {n}"
            session.add(account)
            session.commit()
            assert account.id is not None
            ids.append(account.id)
    return app, ids


def count(engine: Engine, model: type) -> int:
    """Rows of a table."""
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def run(args: argparse.Namespace) -> None:
    """Set up, poll and drain, and print the figures."""
    app, feeders = setup(args)
    connectors.demo.MAX_BATCH = args.batch
    ctx = context_from_app(app)
    backends = Backends([args.database_url, args.research_url])
    profiler = cProfile.Profile() if args.profile else None
    cpu = {"poll": 0.0, "drain": 0.0, "rollups": 0.0}
    pg = {"poll": 0.0, "drain": 0.0}

    def timed(step: str, call: Callable[[], T]) -> T:
        before, pg_before = time.process_time(), backends.cpu()
        if profiler is not None:
            profiler.enable()
        result = call()
        if profiler is not None:
            profiler.disable()
        cpu[step] += time.process_time() - before
        pg[step] += backends.cpu() - pg_before
        return result

    def drained(result: DrainResult) -> int:
        return result.written + result.skipped + result.rejected

    # A worker runs for days: what it loads once (the language model, name lists) and its
    # first connections are no cost per item. One round of polls and a drain, not counted.
    warmed = sum(poll_account(ctx, account_id).new for account_id in feeders)
    drain(ctx)
    # The rollups' share of the drain, timed where the drain calls them: inbox.research
    # imported the function by name (`refresh_days` in older checkouts, to compare with).
    name = "add_records" if hasattr(inbox.research, "add_records") else "refresh_days"
    rollup = getattr(rollups, name)

    def timed_rollup(**kwargs: Any) -> int:
        before = time.process_time()
        try:
            return int(rollup(**kwargs))
        finally:
            cpu["rollups"] += time.process_time() - before

    setattr(inbox.research, name, timed_rollup)
    wall = time.perf_counter()
    stored = rounds = handled = 0
    while stored < args.items:
        for account_id in feeders:
            stored += timed("poll", partial(poll_account, ctx, account_id)).new
        rounds += 1
        if rounds % args.drain_every == 0:
            handled += drained(timed("drain", lambda: drain(ctx)))
    # The rest of the outbox, as the next drains would take it.
    while last := drained(timed("drain", lambda: drain(ctx))):
        handled += last
    wall = time.perf_counter() - wall

    messages = count(ctx.inbox, Message)
    left = count(ctx.inbox, ResearchOutbox)
    accounts = count(ctx.inbox, Account)
    backends.dispose()
    load = Path("/proc/loadavg").read_text().split()[:3]
    pg_note = "" if backends.engines else " (no PostgreSQL: SQLite works in this process)"
    print(f"inbox:    {make_url(args.database_url).render_as_string(hide_password=True)}")
    print(f"research: {make_url(args.research_url).render_as_string(hide_password=True)}")
    print(
        f"{accounts} feeders, {rounds} rounds of {args.batch} items a poll, "
        f"a drain every {args.drain_every} rounds; load average {' '.join(load)}"
    )
    print(
        f"items stored: {messages} ({warmed} to warm up, then {stored} measured), "
        f"outbox rows handled: {handled}, left: {left}"
    )
    per = 1000 / max(stored, 1)
    print(f"{'':24}{'process':>10}{'backends':>10}{'total':>10}  CPU ms per item")
    for step, label in (("poll", "poll + ingest"), ("drain", "drain")):
        print(
            f"{label:24}{cpu[step] * per:10.2f}{pg[step] * per:10.2f}"
            f"{(cpu[step] + pg[step]) * per:10.2f}"
        )
    print(f"{'  of which rollups':24}{cpu['rollups'] * per:10.2f}")
    total_cpu, total_pg = cpu["poll"] + cpu["drain"], sum(pg.values())
    print(
        f"{'all':24}{total_cpu * per:10.2f}{total_pg * per:10.2f}"
        f"{(total_cpu + total_pg) * per:10.2f}{pg_note}"
    )
    print(f"wall: {wall:.1f} s ({stored / wall:.0f} items/s; shared machine, for reference only)")
    if profiler is not None:
        stats = pstats.Stats(profiler).sort_stats(args.sort)
        stats.print_stats(args.top)
    ctx.inbox.dispose()
    ctx.research.dispose()


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="the inbox (made afresh)")
    parser.add_argument(
        "--research-url",
        default=f"sqlite:///{DATA_DIR}/research.db",
        help="the research store (made afresh)",
    )
    parser.add_argument("--items", type=int, default=3000, help="items to store (at least)")
    parser.add_argument("--feeders", type=int, default=4, help="demo accounts")
    parser.add_argument("--batch", type=int, default=25, help="items a poll brings")
    parser.add_argument("--drain-every", type=int, default=5, help="rounds between drains")
    parser.add_argument("--malformed-every", type=int, default=0, help="demo dead letters")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument("--sort", default="cumulative", help="cProfile sort key")
    parser.add_argument("--top", type=int, default=40, help="functions cProfile prints")
    args = parser.parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
