"""The Python half of bench/load.sh: prepare the database, log users in, count what arrived.

    .venv/bin/python bench/load_setup.py prepare --feeders 4 --rate 100 --data-dir DIR
    .venv/bin/python bench/load_setup.py login --base http://127.0.0.1:8765 --role agent \
        --users 20 --out DIR/agent.cookies
    .venv/bin/python bench/load_setup.py snapshot --web PID --worker PID --since-id N

The app is configured through the environment (``SOCIALCARE_DATABASE_URL``,
``SOCIALCARE_RESEARCH_DATABASE_URL``, ``SOCIALCARE_SECRET_KEY``, ``SOCIALCARE_ENCRYPTION_KEYS``),
as load.sh sets it for gunicorn and the worker too.

``prepare`` copies the inbox benchmark's PostgreSQL database (``socialcare_bench``, seeded by
``bench/inbox.py``) into a scratch database (``socialcare_load``) so that the benchmark's own
stays untouched, migrates it and a fresh research store, pauses the benchmark's five accounts
(their credentials are fake: the worker would only knock on the real platforms) and sets their
retention to the maximum (the seeded messages go back 800 days), connects
``--feeders`` offline demo accounts that together post ``--rate`` items a second from now on,
makes the 50 benchmark agents members of them, creates a marketing user, and writes the paths
of the pages to measure into the data folder.

``feed`` starts the feeders' clocks and lets the worker poll them. ``snapshot`` counts the
messages, outbox and research rows, and reads the CPU time the web server (with its workers,
recycled ones included), the worker and the PostgreSQL backends of each (told apart by their
application name, from ``PGAPPNAME``) have used so far: the machine may be shared, and CPU time
per request says more about capacity than wall time then.

``login`` logs users in through the real login form (CSRF token included) with the same
User-Agent wrk sends, checks that the session opens the page it is for, and writes one
``Cookie`` header value per line to a file only the owner can read. Nothing secret is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from anonymizer.store import ResearchRecord  # noqa: E402
from inbox import create_app  # noqa: E402
from inbox.accounts import connect_account  # noqa: E402
from inbox.canned import set_member  # noqa: E402
from inbox.config import multi_fernet  # noqa: E402
from inbox.db import databases  # noqa: E402
from inbox.migrate import upgrade  # noqa: E402
from inbox.models import (  # noqa: E402
    Account,
    AccountStatus,
    Conversation,
    Message,
    ResearchOutbox,
    Role,
    User,
)
from inbox.retention_policy import MAX_DAYS, POLICY_FIELDS, set_policy  # noqa: E402
from inbox.types import utcnow  # noqa: E402
from inbox.users import create_user, find_user  # noqa: E402

# The benchmark's agents all share this password (bench/inbox.py); the marketing user is ours.
AGENT_PASSWORD = "bench-password-not-secret"  # noqa: S105  (a throwaway local database)
MARKETING_EMAIL = "marketing@load.example"
MARKETING_PASSWORD = "load-marketing-not-secret"  # noqa: S105
USER_AGENT = "socialcare-load/1"
SOURCE_DB = "socialcare_bench"
FEEDER_PREFIX = "load-feeder-"
# libpq reads PGAPPNAME: load.sh names the web server's and the worker's connections so.
WEB_APP_NAME, WORKER_APP_NAME = "socialcare-load-web", "socialcare-load-worker"
CONVERSATIONS = 200
_CSRF = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def clone_database(url: str, source: str) -> None:
    """Drop the scratch database and create it again as a copy of the seeded one."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            # A template must have no other sessions; a benchmark left running would hold one.
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                {"d": source},
            )
            connection.execute(text(f'CREATE DATABASE "{target.database}" TEMPLATE "{source}"'))
    finally:
        admin.dispose()


def prepare(args: argparse.Namespace) -> None:
    """Build the scratch database, feeders, users and the list of pages to measure."""
    url = os.environ["SOCIALCARE_DATABASE_URL"]
    clone_database(url, args.source)
    app = create_app()
    dbs = databases(app)
    upgrade(dbs.inbox, "inbox")
    upgrade(dbs.research, "research")
    fernet = multi_fernet(app.config["ENCRYPTION_KEYS"])
    per_minute = args.rate * 60 / args.feeders
    with Session(dbs.inbox, expire_on_commit=False) as session:
        for account in session.exec(select(Account)).all():
            account.status = AccountStatus.paused
            # The seeded messages go back 800 days; a shorter policy would have the worker's
            # start-up retention run delete half of them while we measure.
            set_policy(
                session=session, account=account, days=dict.fromkeys(POLICY_FIELDS, MAX_DAYS)
            )
        session.commit()
        feeders = []
        for n in range(1, args.feeders + 1):
            account = connect_account(
                session=session,
                fernet=fernet,
                platform="demo",
                credentials={},
                settings={"seed": 1000 + n, "rate": per_minute, "start": utcnow().isoformat()},
                poll_interval_seconds=1,
            )
            # The demo connector names one account only: renamed, the next call adds another.
            account.platform_account_id = f"{FEEDER_PREFIX}{n}"
            account.display_name = f"Load feeder {n}"
            # Paused until `feed` starts their clock, just before the worker starts.
            account.status = AccountStatus.paused
            session.add(account)
            session.commit()
            feeders.append(account)
        agents = session.exec(select(User).where(User.role == Role.agent)).all()
        for account in feeders:
            for agent in agents:
                assert account.id is not None and agent.id is not None
                set_member(session=session, account_id=account.id, user_id=agent.id, signature="")
        session.commit()
        if find_user(session=session, email=MARKETING_EMAIL) is None:
            create_user(
                session=session,
                email=MARKETING_EMAIL,
                name="Load Marketing",
                role=Role.marketing,
                password=MARKETING_PASSWORD,
            )
        # Threads of the seeded data, a different one on each request (the mix the team opens).
        ids = session.exec(
            select(Conversation.id).order_by(func.random()).limit(CONVERSATIONS)
        ).all()
    dbs.inbox.dispose()
    dbs.research.dispose()
    out = Path(args.data_dir)
    (out / "list.paths").write_text("/conversations\n")
    (out / "thread.paths").write_text("".join(f"/conversations/{i}\n" for i in ids))
    (out / "report.paths").write_text("/reports\n")
    print(
        f"prepared: {len(feeders)} demo feeders at {per_minute:g} items/min each, "
        f"{len(agents)} agents, {len(ids)} conversations to open"
    )


def login(args: argparse.Namespace) -> None:
    """Log users in through the form and write their Cookie headers, one per line."""
    if args.role == "marketing":
        emails, password, check = [MARKETING_EMAIL], MARKETING_PASSWORD, "/reports"
    else:
        emails = [f"agent{n:02d}@bench.example" for n in range(1, args.users + 1)]
        password, check = AGENT_PASSWORD, "/conversations"
    lines = []
    for email in emails:
        client = requests.Session()
        client.headers["User-Agent"] = USER_AGENT
        page = client.get(f"{args.base}/login", timeout=30)
        found = _CSRF.search(page.text) or re.search(
            r'value="([^"]+)" name="csrf_token"', page.text
        )
        if found is None:
            raise SystemExit(f"no CSRF token on the login page (HTTP {page.status_code})")
        form = {"csrf_token": found.group(1), "email": email, "password": password}
        client.post(f"{args.base}/login", data=form, timeout=30, allow_redirects=False)
        # Logged in means the page opens instead of sending us back to the login form.
        answer = client.get(f"{args.base}{check}", timeout=60, allow_redirects=False)
        if answer.status_code != 200:
            raise SystemExit(
                f"{email} could not open {check} after logging in: {answer.status_code}"
            )
        lines.append("; ".join(f"{c.name}={c.value}" for c in client.cookies))
    out = Path(args.out)
    out.touch(mode=0o600)
    out.chmod(0o600)
    out.write_text("".join(f"{line}\n" for line in lines))
    print(f"logged in {len(lines)} {args.role} user(s)")


def feed(args: argparse.Namespace) -> None:
    """Start the demo feeders' clocks now and let the worker poll them."""
    app = create_app()
    engine = databases(app).inbox
    with Session(engine) as session:
        feeders = session.exec(
            select(Account).where(col(Account.platform_account_id).startswith(FEEDER_PREFIX))
        ).all()
        for account in feeders:
            # Item i is posted at start + i / rate: from now on, the rate's items each second.
            account.settings = {**account.settings, "start": utcnow().isoformat(), "backlog": 0}
            account.status = AccountStatus.active
            session.add(account)
        session.commit()
    engine.dispose()
    databases(app).research.dispose()


def _cpu_seconds(pid: int, *, children: bool) -> float:
    """User plus system CPU of a process (and of its exited, reaped children) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0  # gone in between: its time went to its parent's children fields
    # After the name: state is field 3 of proc(5), so utime (14) is at index 11 here.
    ticks = sum(int(fields[i]) for i in ((11, 12, 13, 14) if children else (11, 12)))
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(pid: int) -> float:
    """CPU of a process, its reaped children (recycled web workers) and its live children."""
    total = _cpu_seconds(pid, children=True)
    for child in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((child / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if parent == pid:
            total += _cpu_seconds(int(child.name), children=True)
    return total


def snapshot(args: argparse.Namespace) -> None:
    """Print, as JSON: the time; the newest message id and the messages above --since-id; the
    outbox and research rows; the CPU seconds so far of web, worker and their backends."""
    url = make_url(os.environ["SOCIALCARE_DATABASE_URL"])
    inbox = create_engine(url)
    research = create_engine(os.environ["SOCIALCARE_RESEARCH_DATABASE_URL"])
    try:
        with inbox.connect() as connection:
            newest = connection.execute(select(func.max(Message.id))).scalar_one() or 0
            since = newest if args.since_id is None else args.since_id
            new = connection.execute(
                select(func.count()).select_from(Message).where(col(Message.id) > since)
            ).scalar_one()
            outbox = connection.execute(
                select(func.count()).select_from(ResearchOutbox)
            ).scalar_one()
            backends = connection.execute(
                text(
                    "SELECT pid, application_name FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": url.database},
            ).all()
        with research.connect() as connection:
            records = connection.execute(
                select(func.count()).select_from(ResearchRecord)
            ).scalar_one()
    finally:
        inbox.dispose()
        research.dispose()
    result = {
        "time": time.time(),
        "newest_id": newest,
        "new_messages": new,
        "outbox": outbox,
        "research_records": records,
        "cpu_web": _tree_cpu_seconds(args.web),
        "cpu_worker": _cpu_seconds(args.worker, children=True) if args.worker else 0.0,
        # Per backend: one that closes between two snapshots must not count as negative time.
        "pg_web": {p: _cpu_seconds(p, children=False) for p, n in backends if n == WEB_APP_NAME},
        "pg_worker": {
            p: _cpu_seconds(p, children=False) for p, n in backends if n == WORKER_APP_NAME
        },
    }
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    """Run one of the sub-commands."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    step = commands.add_parser("prepare", help="scratch database, feeders, users, pages")
    step.add_argument("--data-dir", required=True)
    step.add_argument("--feeders", type=int, default=4)
    step.add_argument("--rate", type=float, default=100.0, help="items a second, all feeders")
    step.add_argument("--source", default=SOURCE_DB, help="the seeded database to copy")
    step.set_defaults(run=prepare)
    step = commands.add_parser("login", help="log users in, write their Cookie headers")
    step.add_argument("--base", required=True)
    step.add_argument("--role", choices=("agent", "marketing"), default="agent")
    step.add_argument("--users", type=int, default=20)
    step.add_argument("--out", required=True)
    step.set_defaults(run=login)
    step = commands.add_parser("feed", help="start the demo feeders now")
    step.set_defaults(run=feed)
    step = commands.add_parser("snapshot", help="counts and CPU seconds so far, as JSON")
    step.add_argument("--web", type=int, required=True, help="the web server's main process")
    step.add_argument("--worker", type=int, help="the worker's process")
    step.add_argument("--since-id", type=int, help="count the messages above this id")
    step.set_defaults(run=snapshot)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
