"""The worker: APScheduler jobs that poll official accounts and drain the research outbox."""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import time
from dataclasses import asdict, astuple, dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from cryptography.fernet import MultiFernet
from flask import Flask
from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from connectors import ConnectorError, CredentialsRevoked, RateLimited
from inbox import metrics
from inbox.accounts import connector_for
from inbox.config import multi_fernet
from inbox.crypto import CredentialsError
from inbox.db import databases
from inbox.heartbeat import beat
from inbox.ingest import BatchResult, commit_batch
from inbox.leases import LeaseLost, hold_lease, kept_alive
from inbox.models import Account, AccountStatus, PollRun
from inbox.replies import deliver, stuck_replies
from inbox.research import DrainResult, drain_outbox
from inbox.retention import RetentionReport
from inbox.retention_policy import RUN_HOUR, run_daily
from inbox.types import utcnow

log = logging.getLogger(__name__)

# Set when the worker is asked to stop (SIGINT, what the systemd unit sends): jobs the scheduler
# queued meanwhile return at once and the drain stops after its current batch, so a stop takes
# one poll or one batch at most, not everything that piled up on a busy machine. Whatever was
# not done stays in the database for the next worker.
STOPPING = threading.Event()

BACKOFF_CAP_SECONDS = 30 * 60


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """What the jobs need, taken from the app once so jobs never touch Flask."""

    inbox: Engine
    research: Engine
    fernet: MultiFernet
    owner: str
    lease_seconds: int
    drain_batch: int
    drain_seconds: int
    sync_seconds: int
    backoff_base_seconds: float
    pseudonym_retention_days: int
    # The team's zone: the daily retention run starts at RUN_HOUR there.
    timezone: str = "Europe/Berlin"


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
        owner=f"{socket.gethostname()}:{os.getpid()}",
        lease_seconds=app.config["WORKER_LEASE_SECONDS"],
        drain_batch=app.config["OUTBOX_BATCH_SIZE"],
        drain_seconds=app.config["WORKER_DRAIN_SECONDS"],
        sync_seconds=app.config["WORKER_ACCOUNT_SYNC_SECONDS"],
        backoff_base_seconds=app.config["WORKER_BACKOFF_BASE_SECONDS"],
        pseudonym_retention_days=app.config["PSEUDONYM_KEY_RETENTION_DAYS"],
        timezone=app.config["BABEL_DEFAULT_TIMEZONE"],
    )


def acquire_lease(*, session: Session, account_id: int, owner: str, seconds: int) -> bool:
    """Take the account's poll lease unless another worker holds a live one.

    One UPDATE decides: on PostgreSQL the row is picked FOR UPDATE SKIP LOCKED, so a worker
    never waits behind another that is taking the same lease; SQLite serializes writers anyway.
    """
    now = utcnow()
    free = (
        select(Account.id)
        .where(
            col(Account.id) == account_id,
            or_(
                col(Account.lease_expires_at).is_(None),
                col(Account.lease_expires_at) < now,
                col(Account.lease_owner) == owner,
            ),
        )
        .with_for_update(skip_locked=True)
    )
    result = session.execute(
        update(Account)
        .where(col(Account.id).in_(free.scalar_subquery()))
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
    if STOPPING.is_set():
        return PollOutcome(polled=False)
    with Session(ctx.inbox, expire_on_commit=False) as session:
        if not acquire_lease(
            session=session, account_id=account_id, owner=ctx.owner, seconds=ctx.lease_seconds
        ):
            return PollOutcome(polled=False)
        try:
            # A slow platform or a busy database must not let the lease lapse mid-poll.
            with kept_alive(
                engine=ctx.inbox, account_id=account_id, owner=ctx.owner, seconds=ctx.lease_seconds
            ):
                return _poll(ctx, session, account_id)
        except LeaseLost as lost:
            log.warning("poll dropped: %s", lost)
            return PollOutcome(polled=False, error=str(lost))
        finally:
            # What a failed poll staged must not be committed by the release below.
            session.rollback()
            release_lease(session=session, account_id=account_id, owner=ctx.owner)


def _poll(ctx: WorkerContext, session: Session, account_id: int) -> PollOutcome:
    account = session.get(Account, account_id)
    started = utcnow()
    if account is None or account.status != AccountStatus.active:
        return PollOutcome(polled=False)
    waits = [t for t in (account.rate_limited_until, account.backoff_until) if t is not None]
    if any(until > started for until in waits):
        return PollOutcome(polled=False)
    try:
        result = connector_for(account, ctx.fernet).poll(account.cursor or None)
    except CredentialsRevoked as exc:
        # No retry storm: the account stops until an admin reconnects it.
        metrics.count_poll(account_id=account.id, platform=account.platform, error="revoked")
        account.status = AccountStatus.needs_reconnection
        return _failed(ctx, session, account, started, str(exc))
    except RateLimited as exc:
        metrics.count_poll(account_id=account.id, platform=account.platform, error="rate_limited")
        wait = (exc.retry_at - started).total_seconds()
        metrics.count_rate_limit(account_id=account.id, platform=account.platform, seconds=wait)
        account.rate_limited_until = exc.retry_at
        return _failed(ctx, session, account, started, str(exc))
    except (ConnectorError, CredentialsError) as exc:
        metrics.count_poll(account_id=account.id, platform=account.platform, error="error")
        account.consecutive_failures += 1
        account.backoff_until = started + backoff_delay(
            account.consecutive_failures, base_seconds=ctx.backoff_base_seconds
        )
        return _failed(ctx, session, account, started, str(exc))

    metrics.count_poll(account_id=account.id, platform=account.platform)

    def with_batch(batch: BatchResult) -> None:
        hold_lease(
            session=session, account_id=account_id, owner=ctx.owner, seconds=ctx.lease_seconds
        )
        # Same transaction as the items: after a crash the cursor never runs ahead of the data.
        account.cursor = result.cursor
        account.last_polled_at = utcnow()
        account.last_error = None
        account.consecutive_failures = 0
        account.backoff_until = account.rate_limited_until = None
        session.add(account)
        session.add(
            PollRun(
                account_id=account_id,
                owner=ctx.owner,
                started_at=started,
                finished_at=utcnow(),
                new=batch.new,
                duplicates=batch.duplicates,
                failed=batch.failed,
            )
        )

    batch = commit_batch(
        session=session,
        account=account,
        items=result.items,
        failures=result.failures,
        source="poll",
        with_batch=with_batch,
    )
    return PollOutcome(polled=True, new=batch.new, duplicates=batch.duplicates, failed=batch.failed)


def backoff_delay(failures: int, *, base_seconds: float) -> timedelta:
    """Exponential backoff with jitter: base, 2×base, 4×base, … capped at 30 minutes."""
    ceiling = min(BACKOFF_CAP_SECONDS, base_seconds * 2 ** (failures - 1))
    # Jitter spreads the retries of many accounts after a shared outage.
    return timedelta(seconds=ceiling * (0.5 + random.random() / 2))  # noqa: S311


def _failed(
    ctx: WorkerContext, session: Session, account: Account, started: datetime, error: str
) -> PollOutcome:
    assert account.id is not None
    hold_lease(session=session, account_id=account.id, owner=ctx.owner, seconds=ctx.lease_seconds)
    account.last_error = error
    account.last_polled_at = utcnow()
    session.add(account)
    session.add(
        PollRun(
            account_id=account.id,
            owner=ctx.owner,
            started_at=started,
            finished_at=utcnow(),
            error=error,
        )
    )
    session.commit()
    log.warning("polling account %s failed: %s", account.id, error)
    return PollOutcome(polled=True, error=error)


def drain(ctx: WorkerContext) -> DrainResult:
    """Move outbox rows into the research store: batch after batch while full ones come back.

    One batch per run would cap the drain at `drain_batch` rows per interval (40 a second by
    default), below what a busy inbox takes in; so a run goes on for up to one interval while
    there is a backlog. It stops at a batch with a failed row, which would come first again.
    """
    deadline = time.monotonic() + ctx.drain_seconds
    total = DrainResult(written=0, skipped=0, failed=0, rejected=0)
    if STOPPING.is_set():
        return total
    while True:
        with (
            Session(ctx.inbox, expire_on_commit=False) as session,
            Session(ctx.research, expire_on_commit=False) as research_session,
        ):
            started = time.perf_counter()
            result = drain_outbox(
                session=session,
                research_session=research_session,
                fernet=ctx.fernet,
                limit=ctx.drain_batch,
            )
            metrics.count_drain(outcomes=asdict(result), seconds=time.perf_counter() - started)
        total = DrainResult(*(a + b for a, b in zip(astuple(total), astuple(result), strict=True)))
        handled = sum(astuple(result))
        if handled < ctx.drain_batch or result.failed or time.monotonic() >= deadline:
            return total
        if STOPPING.is_set():
            return total


def resend_stuck_replies(ctx: WorkerContext) -> int:
    """Finish replies a crash left half-sent; `deliver` looks on the platform before posting."""
    with Session(ctx.inbox, expire_on_commit=False) as session:
        stuck = stuck_replies(session=session, older_than=timedelta(minutes=2))
        for message in stuck:
            deliver(session=session, fernet=ctx.fernet, message=message)
        return len(stuck)


def apply_retention(ctx: WorkerContext) -> RetentionReport | None:
    """Apply every account's retention policy, pseudonym keys included, if a run is due."""
    report = run_daily(
        engine=ctx.inbox,
        now=utcnow(),
        timezone=ctx.timezone,
        default_key_days=ctx.pseudonym_retention_days,
    )
    if report is not None:
        log.info("retention applied: %s", report.detail())
    return report


HEARTBEAT_SECONDS = 15


def heartbeat(ctx: WorkerContext) -> None:
    """Tell `/readyz` and `socialcare check` that this worker is alive."""
    with Session(ctx.inbox) as session:
        beat(session=session, owner=ctx.owner)


def sync_jobs(ctx: WorkerContext, scheduler: BaseScheduler) -> None:
    """Keep one poll job per active account, at the account's interval."""
    if STOPPING.is_set():
        return
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
        heartbeat, "interval", args=[ctx], id="heartbeat", seconds=HEARTBEAT_SECONDS, **common
    )
    scheduler.add_job(
        sync_jobs, "interval", args=[ctx, scheduler], id="sync", seconds=ctx.sync_seconds, **common
    )
    scheduler.add_job(
        drain, "interval", args=[ctx], id="drain", seconds=ctx.drain_seconds, **common
    )
    scheduler.add_job(
        resend_stuck_replies, "interval", args=[ctx], id="resend", minutes=1, **common
    )
    # Daily; also right away, where it runs only if the worker was down at the scheduled hour.
    # The grace time catches a run missed while the machine slept.
    scheduler.add_job(
        apply_retention,
        CronTrigger(hour=RUN_HOUR, timezone=ZoneInfo(ctx.timezone)),
        args=[ctx],
        id="retention",
        misfire_grace_time=6 * 3600,
        **common,
    )
    return scheduler


def run(app: Flask) -> None:
    """Run the worker in the foreground until interrupted (SIGINT, as the systemd unit stops
    it)."""
    # Started in the background by a shell, or under some supervisors, a process inherits SIGINT
    # ignored, and Python then never turns it into KeyboardInterrupt: the stop signal would do
    # nothing until the supervisor's kill. Listen for it whatever the parent did.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    scheduler = configure(BlockingScheduler(timezone="UTC"), context_from_app(app))
    from inbox.metrics_http import serve_worker_metrics_for

    serve_worker_metrics_for(app)
    log.info("worker started")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        STOPPING.set()
        # The jobs still running finish their poll or batch; queued ones return at once.
        scheduler.shutdown(wait=True)
        log.info("worker stopped")
