"""The worker's jobs: leased polling, cursors, dead letters and the schedule itself."""

from __future__ import annotations

import dataclasses
import itertools
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from cryptography.fernet import Fernet, MultiFernet
from flask import Flask
from sqlmodel import Session, func, select

from anonymizer.store import ResearchRecord
from inbox import create_app, migrate
from inbox.db import databases
from inbox.heartbeat import WorkerHeartbeat, forget_older_than, latest
from inbox.models import Account, AccountStatus, DeadLetter, Message, PollRun
from inbox.types import utcnow
from inbox.worker import (
    STOPPING,
    WorkerContext,
    acquire_lease,
    configure,
    context_from_app,
    drain,
    heartbeat,
    poll_account,
    release_lease,
    sync_jobs,
)
from tests.conftest import DatabaseUrls, app_config, make_account, worker_process


def _started_an_hour_ago(session: Session, fernet: MultiFernet, **settings: object) -> Account:
    start = (utcnow() - timedelta(hours=1)).isoformat()
    return make_account(session, fernet, **{"start": start, "rate": 1, "backlog": 0, **settings})


def _messages(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Message)).one()


def test_polling_ingests_new_items_and_resumes_from_the_cursor(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account = _started_an_hour_ago(session, fernet)
    assert account.id is not None
    ctx = context_from_app(app)
    first = poll_account(ctx, account.id)
    assert first.polled and first.new == 50  # one poll brings at most one batch
    second = poll_account(ctx, account.id)
    assert second.new == 10 and second.duplicates == 0  # 60 minutes at one a minute
    assert poll_account(ctx, account.id).new == 0
    session.refresh(account)
    assert account.cursor == {"next_index": 60}
    assert account.last_polled_at is not None and account.last_error is None
    assert account.lease_owner is None
    assert _messages(session) == 60


def test_a_lost_cursor_repeats_items_but_stores_none_twice(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account = _started_an_hour_ago(session, fernet)
    assert account.id is not None
    ctx = context_from_app(app)
    poll_account(ctx, account.id)
    session.refresh(account)
    assert account.cursor == {"next_index": 50}
    account.cursor = {}
    session.add(account)
    session.commit()
    again = poll_account(ctx, account.id)
    assert again.new == 0 and again.duplicates == 50
    assert _messages(session) == 50


def test_an_account_leased_by_another_worker_is_not_polled(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account = _started_an_hour_ago(session, fernet)
    assert account.id is not None
    assert acquire_lease(session=session, account_id=account.id, owner="other:1", seconds=60)
    ctx = context_from_app(app)
    assert not poll_account(ctx, account.id).polled
    assert _messages(session) == 0
    release_lease(session=session, account_id=account.id, owner="other:1")
    assert poll_account(ctx, account.id).polled


def test_an_expired_lease_can_be_taken_over(session: Session, fernet: MultiFernet) -> None:
    account = _started_an_hour_ago(session, fernet)
    assert account.id is not None
    assert acquire_lease(session=session, account_id=account.id, owner="crashed:1", seconds=-1)
    assert acquire_lease(session=session, account_id=account.id, owner="alive:2", seconds=60)
    assert not acquire_lease(session=session, account_id=account.id, owner="late:3", seconds=60)


def test_malformed_payloads_become_dead_letters_and_the_rest_arrives(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account = _started_an_hour_ago(session, fernet, malformed_every=10)
    assert account.id is not None
    outcome = poll_account(context_from_app(app), account.id)
    letters = session.exec(select(DeadLetter)).all()
    assert outcome.failed == len(letters) == 5
    assert outcome.new == 45
    assert all(letter.error and letter.raw.startswith("{") for letter in letters)


def test_a_paused_account_is_not_polled(app: Flask, session: Session, fernet: MultiFernet) -> None:
    account = _started_an_hour_ago(session, fernet)
    assert account.id is not None
    account.status = AccountStatus.paused
    session.add(account)
    session.commit()
    assert not poll_account(context_from_app(app), account.id).polled
    assert _messages(session) == 0


def test_undecryptable_credentials_are_reported_on_the_account_not_crashing_the_worker(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account = _started_an_hour_ago(session, fernet)
    assert account.id is not None
    account.credentials_encrypted = b"garbage"
    session.add(account)
    session.commit()
    outcome = poll_account(context_from_app(app), account.id)
    session.refresh(account)
    assert outcome.error and "SOCIALCARE_ENCRYPTION_KEYS" in outcome.error
    assert account.last_error == outcome.error
    assert "garbage" not in outcome.error


def test_the_schedule_has_one_poll_job_per_active_account_and_the_drain(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    active = _started_an_hour_ago(session, fernet, seed=1)
    ctx = context_from_app(app)
    scheduler = configure(BackgroundScheduler(timezone="UTC"), ctx)
    sync_jobs(ctx, scheduler)
    ids = {job.id for job in scheduler.get_jobs()}
    assert ids == {"heartbeat", "sync", "drain", "resend", "retention", f"poll:{active.id}"}
    poll_job = scheduler.get_job(f"poll:{active.id}")
    assert poll_job.trigger.interval == timedelta(seconds=active.poll_interval_seconds)

    active.status = AccountStatus.paused
    session.add(active)
    session.commit()
    sync_jobs(ctx, scheduler)
    assert {job.id for job in scheduler.get_jobs()} == {
        "heartbeat",
        "sync",
        "drain",
        "resend",
        "retention",
    }


def test_the_worker_command_polls_and_fills_the_research_store(
    database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    config = app_config(database_urls, tmp_path, WORKER_DRAIN_SECONDS=1)
    app = create_app(config)
    dbs = databases(app)
    migrate.upgrade(dbs.inbox, "inbox")
    migrate.upgrade(dbs.research, "research")
    with Session(dbs.inbox, expire_on_commit=False) as session:
        fernet = MultiFernet([Fernet(config["ENCRYPTION_KEYS"])])
        _started_an_hour_ago(session, fernet)
    worker = worker_process(config)
    try:
        deadline = time.monotonic() + 30
        records = 0
        while time.monotonic() < deadline and records < 50:
            time.sleep(0.5)
            with Session(dbs.research) as research:
                records = research.exec(select(func.count()).select_from(ResearchRecord)).one()
        assert worker.poll() is None, worker.communicate()[0]
    finally:
        worker.send_signal(signal.SIGINT)
        output = worker.communicate(timeout=15)[0]
        dbs.inbox.dispose()
        dbs.research.dispose()
    assert records >= 50, output
    assert worker.returncode == 0, output


@pytest.mark.postgres_only
def test_two_workers_never_poll_one_account_at_the_same_time(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account = _started_an_hour_ago(session, fernet, rate=30)
    assert account.id is not None
    base = context_from_app(app)
    workers = [dataclasses.replace(base, owner=f"host-{n}:{n}") for n in (1, 2)]
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(ctx: WorkerContext) -> None:
        # Like the scheduler: keep trying; a poll that finds the lease taken does nothing.
        try:
            barrier.wait()
            polls, deadline = 0, time.monotonic() + 60
            while polls < 8 and time.monotonic() < deadline:
                if poll_account(ctx, account.id or 0).polled:
                    polls += 1
                else:
                    time.sleep(0.005)
        except BaseException as exc:  # report in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(ctx,)) for ctx in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    runs = sorted(session.exec(select(PollRun)).all(), key=lambda run: run.started_at)
    assert {run.owner for run in runs} == {ctx.owner for ctx in workers}
    # The lease log: each poll ends before the next one starts, whoever runs it.
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at <= later.started_at, (earlier, later)
    stored = session.exec(select(Message.external_id)).all()
    assert len(stored) == len(set(stored)) == sum(run.new for run in runs)


def test_each_worker_beats_under_its_own_name_and_the_newest_beat_is_read(
    app: Flask, session: Session
) -> None:
    ctx = context_from_app(app)
    assert latest(session=session) is None
    before = utcnow()
    heartbeat(ctx)
    heartbeat(dataclasses.replace(ctx, owner="other-host:1"))
    beats = session.exec(select(WorkerHeartbeat)).all()
    assert {beat.owner for beat in beats} == {ctx.owner, "other-host:1"}
    newest = latest(session=session)
    assert newest is not None and newest >= before
    # A stopped worker's beat can be forgotten; a live one's stays.
    assert forget_older_than(session=session, before=before) == 0
    assert forget_older_than(session=session, before=utcnow() + timedelta(seconds=1)) == 2
    assert latest(session=session) is None


def test_a_stopping_worker_starts_no_new_poll_or_drain(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account = _started_an_hour_ago(session, fernet)
    assert account.id is not None
    ctx = context_from_app(app)
    STOPPING.set()
    try:
        assert poll_account(ctx, account.id).polled is False
        assert drain(ctx).written == 0
        assert _messages(session) == 0
    finally:
        STOPPING.clear()
    assert poll_account(ctx, account.id).new > 0


def test_the_worker_stops_on_sigint_even_when_started_with_it_ignored(
    database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    # As a shell's background job or some supervisors start it: SIGINT ignored from birth.
    config = app_config(database_urls, tmp_path)
    app = create_app(config)
    migrate.upgrade(databases(app).inbox, "inbox")
    migrate.upgrade(databases(app).research, "research")
    worker = worker_process(config, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 30
        with Session(databases(app).inbox) as session:
            while latest(session=session) is None:
                assert time.monotonic() < deadline and worker.poll() is None
                time.sleep(0.2)
        worker.send_signal(signal.SIGINT)
        output = worker.communicate(timeout=15)[0]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
        databases(app).inbox.dispose()
        databases(app).research.dispose()
    assert worker.returncode == 0, output
    assert "worker stopped" in output
