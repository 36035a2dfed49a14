"""The fault-injection run: 5,000 mentions from a misbehaving X, a worker killed mid-run.

The fake platform answers with random 429s, 503s, answers slower than the client's timeout and
truncated JSON, and serves some mentions without their text. The real tweepy client talks to
it over HTTP from `socialcare worker` processes. Afterwards every well-formed mention is in the
inbox exactly once, every malformed one is a dead letter exactly once, and the cursor has
reached the newest mention.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet
from sqlmodel import Session, func, select

from inbox import create_app, migrate
from inbox.accounts import connect_account
from inbox.db import databases
from inbox.models import Account, DeadLetter, Message, PollRun
from tests.conftest import DatabaseUrls, app_config, worker_process
from tests.fakes.x_platform import FIRST_ID, FakeX, Faults, serving

TOTAL = 5000
FAULTS = Faults(
    rate_limited=0.04,
    server_error=0.04,
    slow=0.02,
    truncated=0.03,
    slow_seconds=1.5,
    malformed_every=97,
)


def _wait(
    condition: Callable[[], bool], seconds: float, what: str, output: Callable[[], str]
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{output()}"
        time.sleep(0.25)


def test_every_item_arrives_exactly_once_through_faults_and_a_killed_worker(
    database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    fake = FakeX(total=TOTAL, released_at_start=TOTAL - 500, release_per_second=50, faults=FAULTS)
    config = app_config(
        database_urls,
        tmp_path,
        WORKER_ACCOUNT_SYNC_SECONDS=1,
        WORKER_DRAIN_SECONDS=2,
        WORKER_LEASE_SECONDS=3,
        WORKER_BACKOFF_BASE_SECONDS=0.2,
    )
    app = create_app(config)
    dbs = databases(app)
    migrate.upgrade(dbs.inbox, "inbox")
    migrate.upgrade(dbs.research, "research")
    workers: list[subprocess.Popen[str]] = []
    logs: list[str] = []

    def output() -> str:
        # What to look at if it ever times out: where the account stands, and the workers' logs.
        with Session(dbs.inbox) as session:
            account = session.exec(select(Account)).first()
            state = (
                f"cursor={account.cursor} failures={account.consecutive_failures} "
                f"backoff_until={account.backoff_until} "
                f"rate_limited_until={account.rate_limited_until} lease={account.lease_owner}"
                if account
                else "no account"
            )
            stored = session.exec(select(func.count()).select_from(Message)).one()
        return f"{state} messages={stored} released={fake.released()}\n" + "\n".join(logs)[-4000:]

    def count(model: type) -> int:
        with Session(dbs.inbox) as session:
            return session.exec(select(func.count()).select_from(model)).one()

    with serving(fake):
        with Session(dbs.inbox, expire_on_commit=False) as session:
            account = connect_account(
                session=session,
                fernet=MultiFernet([Fernet(config["ENCRYPTION_KEYS"])]),
                platform="x",
                credentials={
                    "consumer_key": "ck",
                    "consumer_secret": "cs",
                    "access_token": "at",
                    "access_token_secret": "ats",
                },
                settings={
                    "username": "acme_hilft",
                    "api_base": fake.base_url,
                    "timeout_seconds": 1,
                    "max_pages": 3,
                },
                poll_interval_seconds=1,
            )
            # Connected before these mentions were written: the walk starts below the first.
            mentions = {"since_id": str(FIRST_ID - 1), "next_token": None, "pending_newest": None}
            dms = {"last_id": None, "next_token": None, "pending_newest": None}
            account.cursor = {"v": 1, "mentions": mentions, "dms": dms}
            session.add(account)
            session.commit()
        try:
            workers.append(worker_process(config))
            _wait(lambda: count(Message) >= 1500, 300, "the first 1,500 mentions", output)
            workers[0].send_signal(signal.SIGKILL)  # mid-run, no chance to clean up
            logs.append(workers[0].communicate()[0])
            workers.append(worker_process(config))

            newest = fake.tweet_id(TOTAL - 1)

            def done() -> bool:
                with Session(dbs.inbox) as session:
                    cursor = session.exec(select(Account)).one().cursor
                return fake.all_released() and cursor["mentions"]["since_id"] == newest

            _wait(done, 480, "the cursor to reach the newest mention", output)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGINT)
                    logs.append(worker.communicate(timeout=20)[0])

    malformed = {fake.tweet_id(i) for i in range(TOTAL) if fake.malformed(i)}
    expected = {fake.tweet_id(i) for i in range(TOTAL)} - malformed
    with Session(dbs.inbox) as session:
        stored = session.exec(select(Message.external_id)).all()
        letters = session.exec(select(DeadLetter)).all()
        runs = session.exec(select(PollRun)).all()
    dbs.inbox.dispose()
    dbs.research.dispose()

    assert len(stored) == len(set(stored)) == len(expected), output()
    assert set(stored) == expected
    assert sorted(json.loads(letter.raw)["entry"]["id"] for letter in letters) == sorted(malformed)
    assert all(letter.error for letter in letters)
    # The faults really happened, and both workers really polled.
    failed_runs = [run for run in runs if run.error]
    assert any("rate limit" in (run.error or "") for run in failed_runs)
    assert any("HTTP 503" in (run.error or "") for run in failed_runs)
    assert any("could not be reached" in (run.error or "") for run in failed_runs)
    assert len({run.owner for run in runs}) == 2
