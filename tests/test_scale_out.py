"""Scale-out on one machine: two web nodes and two workers, separate processes, one PostgreSQL.

Four official X accounts live on four fake X servers that release mentions over time. Two
`socialcare worker` processes poll them under database leases while two agents answer through
both gunicorn nodes over real HTTP. One platform then answers slower than the lease lasts, and
one worker is killed (SIGKILL) with a page of mentions in hand; the other takes that account
over once the lease expires. Every mention is stored and anonymized exactly once, every reply
is posted exactly once, and the lease log (PollRun) shows no two polls of one account at once.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, MultiFernet
from sqlmodel import Session, col, func, select

from anonymizer.store import ResearchRecord
from inbox import create_app, migrate
from inbox.accounts import connect_account
from inbox.db import Databases, databases
from inbox.models import (
    Account,
    Conversation,
    Delivery,
    Direction,
    Message,
    PollRun,
    ResearchOutbox,
)
from inbox.types import utcnow
from tests.conftest import PASSWORD, DatabaseUrls, app_config, make_member, make_user
from tests.fakes.x_platform import FIRST_ID, FakeX, serving
from tests.processes import (
    Process,
    Processes,
    answer_through,
    processes,
    start_web,
    start_worker,
    wait_for,
    wait_until_serving,
)

TOTAL = 300  # mentions per account
AT_START = 30
PER_SECOND = 9.0  # the rest arrive over about 30 s
BURST = 150  # mentions at once on the first account: more than one page of 100
LEASE_SECONDS = 4
REPLIES_PER_ACCOUNT = 3  # per agent


@dataclass
class Cluster:
    """What the test runs: processes, databases, the fake platforms and who works there."""

    started: Processes
    dbs: Databases
    fakes: list[FakeX]
    account_ids: list[int]
    emails: list[str]

    def inbound(self, account_id: int) -> list[str]:
        """The platform ids of the account's stored mentions, duplicates included."""
        with Session(self.dbs.inbox) as session:
            query = select(Message.external_id).where(
                Message.account_id == account_id, Message.direction == Direction.inbound
            )
            return [str(external_id) for external_id in session.exec(query).all()]

    def runs(self) -> list[PollRun]:
        """The lease log: every poll of every account, oldest first."""
        with Session(self.dbs.inbox) as session:
            return list(session.exec(select(PollRun).order_by(col(PollRun.started_at))).all())

    def count(self, model: type, research: bool = False) -> int:
        """How many rows a table holds now."""
        with Session(self.dbs.research if research else self.dbs.inbox) as session:
            return int(session.exec(select(func.count()).select_from(model)).one())

    def output(self) -> str:
        """Where things stand and what the processes said, for a failure message."""
        stored = [len(self.inbound(account_id)) for account_id in self.account_ids]
        released = [fake.released() for fake in self.fakes]
        return f"stored={stored} released={released}\n{self.started.output()}"


def _connect(dbs: Databases, fernet: MultiFernet, fake: FakeX) -> int:
    with Session(dbs.inbox, expire_on_commit=False) as session:
        account = connect_account(
            session=session,
            fernet=fernet,
            platform="x",
            credentials={
                "consumer_key": "ck",
                "consumer_secret": "cs",
                "access_token": "at",
                "access_token_secret": "ats",
            },
            # A long timeout: a held request hangs until the test lets it go.
            settings={
                "username": fake.account["username"],
                "api_base": fake.base_url,
                "timeout_seconds": 60,
                "max_pages": 5,
            },
            poll_interval_seconds=1,
        )
        # Connected before these mentions were written: the walk starts below the first.
        mentions = {"since_id": str(FIRST_ID - 1), "next_token": None, "pending_newest": None}
        dms = {"last_id": None, "next_token": None, "pending_newest": None}
        account.cursor = {"v": 1, "mentions": mentions, "dms": dms}
        session.add(account)
        session.commit()
        assert account.id is not None
        return account.id


@pytest.mark.postgres_only
def test_two_web_nodes_and_two_workers_on_one_database_lose_and_repeat_nothing(
    database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    config = app_config(
        database_urls,
        tmp_path,
        WORKER_ACCOUNT_SYNC_SECONDS=1,
        WORKER_DRAIN_SECONDS=2,
        WORKER_LEASE_SECONDS=LEASE_SECONDS,
        WORKER_BACKOFF_BASE_SECONDS=0.5,
        LOG_LEVEL="WARNING",
    )
    dbs = databases(create_app(config))
    migrate.upgrade(dbs.inbox, "inbox")
    migrate.upgrade(dbs.research, "research")
    fernet = MultiFernet([Fernet(config["ENCRYPTION_KEYS"])])
    # AT_START mentions each; the rest come once everything runs.
    fakes = [
        FakeX(
            total=TOTAL,
            released_at_start=AT_START,
            seed=n,
            account={"id": f"{4200 + n}", "name": f"Acme Service {n}", "username": f"acme_{n}"},
        )
        for n in range(4)
    ]

    with ExitStack() as stack, processes(tmp_path / "logs") as started:
        stack.callback(dbs.research.dispose)
        stack.callback(dbs.inbox.dispose)
        for fake in fakes:
            stack.enter_context(serving(fake))
        account_ids = [_connect(dbs, fernet, fake) for fake in fakes]
        with Session(dbs.inbox, expire_on_commit=False) as session:
            agents = [make_user(session, name=f"Agent {n}") for n in (1, 2)]
            for agent, account_id in itertools.product(agents, account_ids):
                account = session.get(Account, account_id)
                assert account is not None
                make_member(session, agent, account)
        cluster = Cluster(started, dbs, fakes, account_ids, [agent.email for agent in agents])
        web = [start_web(started, f"web{n}", config) for n in (1, 2)]
        workers = [start_worker(started, f"worker{n}", config) for n in (1, 2)]
        _scale_out(cluster, web, workers)


def _scale_out(cluster: Cluster, web: list[Process], workers: list[Process]) -> None:
    fakes, account_ids, output = cluster.fakes, cluster.account_ids, cluster.output
    for node in web:
        wait_until_serving(node, output)
    pids = {str(worker.pid) for worker in workers}

    def owners() -> set[str]:
        return {run.owner.rsplit(":", 1)[1] for run in cluster.runs()}

    wait_for(lambda: owners() == pids, 90, "both workers to poll", output)
    for fake in fakes[1:]:  # from now on mentions arrive over time; the first account's later
        fake.started, fake.release_per_second = time.monotonic(), PER_SECOND
    jobs = _reply_jobs(cluster)
    errors: list[str] = []
    threads = [
        threading.Thread(target=answer_through, args=(nodes, email, PASSWORD, agent_jobs, errors))
        for nodes, email, agent_jobs in zip([web, web[::-1]], cluster.emails, jobs, strict=True)
    ]
    for thread in threads:
        thread.start()
    # Meanwhile one platform answers slower than a lease lasts, and a worker dies in a poll.
    _slow_platform(cluster, fakes[1])
    victim, expired = _kill_mid_poll(cluster, fakes[0], account_ids[0], workers)
    survivor = next(worker for worker in workers if worker is not victim)
    for thread in threads:
        thread.join(timeout=180)
    assert errors == [], f"{errors}\n{output()}"

    def taken_over() -> bool:
        return any(
            run.account_id == account_ids[0]
            and run.owner.endswith(f":{survivor.pid}")
            and run.started_at >= expired
            and run.error is None
            for run in cluster.runs()
        )

    def all_stored() -> bool:
        return all(f.all_released() for f in fakes) and all(
            len(cluster.inbound(a)) >= TOTAL for a in account_ids
        )

    wait_for(taken_over, 60, "the survivor to take the dead worker's account over", output)
    wait_for(all_stored, 120, "every mention to be stored", output)
    wait_for(lambda: cluster.count(ResearchOutbox) == 0, 120, "the outbox to drain", output)
    assert survivor.popen.poll() is None, output()
    _assert_exactly_once(cluster, pids)
    _assert_replies_posted_once(cluster, jobs)
    for worker in workers:
        said = worker.log.read_text(errors="replace").splitlines()
        trouble = [line for line in said if '"ERROR"' in line or "Warning:" in line]
        assert trouble == [], "\n".join(trouble)[-3000:]


def _reply_jobs(cluster: Cluster) -> list[list[tuple[int, str]]]:
    """Each agent's conversations to answer, spread over every account, and the texts."""

    def first(account_id: int) -> list[int]:
        with Session(cluster.dbs.inbox) as session:
            query = (
                select(Conversation.id)
                .where(Conversation.account_id == account_id)
                .order_by(col(Conversation.id))
                .limit(2 * REPLIES_PER_ACCOUNT)
            )
            return [int(c) for c in session.exec(query).all() if c is not None]

    wait_for(
        lambda: all(len(first(a)) == 2 * REPLIES_PER_ACCOUNT for a in cluster.account_ids),
        90,
        "the first conversations of every account",
        cluster.output,
    )
    jobs: list[list[tuple[int, str]]] = [[], []]
    for account_id in cluster.account_ids:
        for n, conversation_id in enumerate(first(account_id)):
            text = f"Danke für Ihre Geduld! Antwort {account_id}-{n}"
            jobs[n % 2].append((conversation_id, text))
    return jobs


def _slow_platform(cluster: Cluster, fake: FakeX) -> None:
    """Answer the account's next mentions request only after 1.5 leases: the worker polling
    it must keep its lease, so no other worker asks the platform for the account meanwhile."""
    fake.hold()
    try:
        wait_for(lambda: fake.held > 0, 60, "a poll of the slow platform", cluster.output)
        time.sleep(1.5 * LEASE_SECONDS)  # the platform is that slow
        assert fake.held == 1, "a second worker polled the account while the first still did"
    finally:
        fake.release()


def _kill_mid_poll(
    cluster: Cluster, fake: FakeX, account_id: int, workers: list[Process]
) -> tuple[Process, datetime]:
    """SIGKILL the worker polling the account while it holds a page of mentions in hand;
    return it and its lease's expiry."""
    # A burst: the next poll gets a first page of it, then hangs asking for the second.
    fake.hold(later_pages=True)
    fake.released_at_start = AT_START + BURST
    try:
        wait_for(lambda: fake.held > 0, 60, "a worker to hang in a poll", cluster.output)
        with Session(cluster.dbs.inbox) as session:
            account = session.get(Account, account_id)
            assert account is not None and account.lease_expires_at is not None
            owner, expires = account.lease_owner, account.lease_expires_at
        victim = next(w for w in workers if f"{owner}".endswith(f":{w.pid}"))
        victim.popen.send_signal(signal.SIGKILL)
        killed_at = utcnow()
        victim.popen.wait(timeout=30)
        # It died with part of the burst in hand, not stored: the survivor must fetch it.
        assert len(cluster.inbound(account_id)) == AT_START, cluster.output()
    finally:
        fake.release()
        fake.released_at_start = fake.total
    # Its lease was live when it died: the worker was inside the poll, not between polls.
    assert killed_at < expires, (killed_at, expires)
    return victim, expires


def _assert_exactly_once(cluster: Cluster, pids: set[str]) -> None:
    runs = cluster.runs()
    for account_id, fake in zip(cluster.account_ids, cluster.fakes, strict=True):
        stored = cluster.inbound(account_id)
        assert len(stored) == len(set(stored)), Counter(stored).most_common(3)
        assert set(stored) == {fake.tweet_id(i) for i in range(TOTAL)}
        # The lease log: polls of one account never overlap, whoever runs them.
        mine = [run for run in runs if run.account_id == account_id]
        for earlier, later in itertools.pairwise(mine):
            assert earlier.finished_at <= later.started_at, (earlier, later)
    assert {run.owner.rsplit(":", 1)[1] for run in runs} == pids
    # Each mention went to the research store once, however the two workers drained.
    inbound = len(cluster.account_ids) * TOTAL
    assert cluster.count(ResearchRecord, research=True) == inbound


def _assert_replies_posted_once(cluster: Cluster, jobs: list[list[tuple[int, str]]]) -> None:
    wanted = [text for agent_jobs in jobs for _, text in agent_jobs]
    posted = Counter(post["text"] for fake in cluster.fakes for post in fake.posted)
    assert posted == Counter(wanted)
    with Session(cluster.dbs.inbox) as session:
        replies = session.exec(select(Message).where(Message.direction == Direction.outbound))
        for reply in replies.all():
            assert reply.delivery == Delivery.sent, reply.delivery_error
            # Posted as its own account, answering the mention of its own conversation.
            account_id = int(reply.text.rsplit(" ", 1)[1].split("-")[0])
            assert reply.account_id == account_id
            fake = cluster.fakes[cluster.account_ids.index(account_id)]
            post = next(p for p in fake.posted if p["text"] == reply.text)
            answered = session.exec(
                select(Message.external_id).where(
                    Message.conversation_id == reply.conversation_id,
                    Message.direction == Direction.inbound,
                )
            ).one()
            assert post["reply"]["in_reply_to_tweet_id"] == answered
