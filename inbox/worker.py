"""The worker: APScheduler jobs that poll official accounts and drain the research outbox."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from cryptography.fernet import MultiFernet
from flask import Flask
from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from connectors import ConnectorError
from inbox.accounts import connector_for
from inbox.config import multi_fernet
from inbox.crypto import CredentialsError
from inbox.db import databases
from inbox.ingest import ingest, keep_failed
from inbox.models import Account, AccountStatus
from inbox.research import DrainResult, drain_outbox
from inbox.secrets import pseudonym_key
from inbox.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """What the jobs need, taken from the app once so jobs never touch Flask."""

    inbox: Engine
    research: Engine
    fernet: MultiFernet
    pseudonym_key: bytes
    owner: str
    lease_seconds: int
    drain_batch: int
    drain_seconds: int
    sync_seconds: int


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one poll of one account did."""

    polled: bool
    new: int = 0
    duplicates: int = 0
    failed: int = 0
    error: str | None = None


def context_from_app(app: Flask) -> WorkerContext:
    """Build the jobs' context from an app's configuration."""
    dbs = databases(app)
    return WorkerContext(
        inbox=dbs.inbox,
        research=dbs.research,
        fernet=multi_fernet(app.config["ENCRYPTION_KEYS"]),
        pseudonym_key=pseudonym_key(app.config),
        owner=f"{socket.gethostname()}:{os.getpid()}",
        lease_seconds=app.config["WORKER_LEASE_SECONDS"],
        drain_batch=app.config["OUTBOX_BATCH_SIZE"],
        drain_seconds=app.config["WORKER_DRAIN_SECONDS"],
        sync_seconds=app.config["WORKER_ACCOUNT_SYNC_SECONDS"],
    )


def acquire_lease(*, session: Session, account_id: int, owner: str, seconds: int) -> bool:
    """Take the account's poll lease unless another worker holds a live one."""
    now = utcnow()
    result = session.execute(
        update(Account)
        .where(
            col(Account.id) == account_id,
            or_(
                col(Account.lease_expires_at).is_(None),
                col(Account.lease_expires_at) < now,
                col(Account.lease_owner) == owner,
            ),
        )
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=seconds))
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_lease(*, session: Session, account_id: int, owner: str) -> None:
    """Give the lease back so the next poll need not wait for it to expire."""
    session.execute(
        update(Account)
        .where(col(Account.id) == account_id, col(Account.lease_owner) == owner)
        .values(lease_owner=None, lease_expires_at=None)
    )
    session.commit()


def poll_account(ctx: WorkerContext, account_id: int) -> PollOutcome:
    """Poll one account under its lease and ingest what it brings."""
    with Session(ctx.inbox, expire_on_commit=False) as session:
        if not acquire_lease(
            session=session, account_id=account_id, owner=ctx.owner, seconds=ctx.lease_seconds
        ):
            return PollOutcome(polled=False)
        try:
            return _poll(ctx, session, account_id)
        finally:
            release_lease(session=session, account_id=account_id, owner=ctx.owner)


def _poll(ctx: WorkerContext, session: Session, account_id: int) -> PollOutcome:
    account = session.get(Account, account_id)
    if account is None or account.status != AccountStatus.active:
        return PollOutcome(polled=False)
    try:
        result = connector_for(account, ctx.fernet).poll(account.cursor or None)
    except (ConnectorError, CredentialsError) as exc:
        account.last_error = str(exc)
        account.last_polled_at = utcnow()
        session.add(account)
        session.commit()
        log.warning("polling account %s failed: %s", account_id, exc)
        return PollOutcome(polled=True, error=str(exc))
    new = duplicates = 0
    for item in result.items:
        if ingest(session=session, account=account, item=item).created:
            new += 1
        else:
            duplicates += 1
    for failure in result.failures:
        keep_failed(session=session, account=account, failure=failure, source="poll")
    # The cursor moves only after every item is stored: a crash repeats items, never skips them.
    account.cursor = result.cursor
    account.last_polled_at = utcnow()
    account.last_error = None
    session.add(account)
    session.commit()
    return PollOutcome(polled=True, new=new, duplicates=duplicates, failed=len(result.failures))


def drain(ctx: WorkerContext) -> DrainResult:
    """Move a batch of outbox rows into the research store."""
    with (
        Session(ctx.inbox, expire_on_commit=False) as session,
        Session(ctx.research, expire_on_commit=False) as research_session,
    ):
        return drain_outbox(
            session=session,
            research_session=research_session,
            pseudonym_key=ctx.pseudonym_key,
            limit=ctx.drain_batch,
        )


def sync_jobs(ctx: WorkerContext, scheduler: BaseScheduler) -> None:
    """Keep one poll job per active account, at the account's interval."""
    with Session(ctx.inbox) as session:
        accounts = session.exec(select(Account).where(Account.status == AccountStatus.active)).all()
    wanted = {f"poll:{account.id}": account for account in accounts}
    for job in scheduler.get_jobs():
        if job.id.startswith("poll:") and job.id not in wanted:
            job.remove()
    for job_id, account in wanted.items():
        job = scheduler.get_job(job_id)
        interval = timedelta(seconds=account.poll_interval_seconds)
        if job is not None and getattr(job.trigger, "interval", None) == interval:
            continue
        scheduler.add_job(
            poll_account,
            "interval",
            args=[ctx, account.id],
            id=job_id,
            seconds=account.poll_interval_seconds,
            next_run_time=utcnow(),
            replace_existing=True,
            max_instances=1,
            coalesce=True,
        )


def configure(scheduler: BaseScheduler, ctx: WorkerContext) -> BaseScheduler:
    """Add the worker's standing jobs to a scheduler."""
    common: dict[str, Any] = {
        "replace_existing": True,
        "max_instances": 1,
        "coalesce": True,
        "next_run_time": utcnow(),
    }
    scheduler.add_job(
        sync_jobs, "interval", args=[ctx, scheduler], id="sync", seconds=ctx.sync_seconds, **common
    )
    scheduler.add_job(
        drain, "interval", args=[ctx], id="drain", seconds=ctx.drain_seconds, **common
    )
    return scheduler


def run(app: Flask) -> None:
    """Run the worker in the foreground until interrupted."""
    scheduler = configure(BlockingScheduler(timezone="UTC"), context_from_app(app))
    log.info("worker started")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("worker stopped")
