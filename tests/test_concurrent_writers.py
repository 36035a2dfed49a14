"""Two workers writing at once on PostgreSQL: shared customers and one research outbox.

Two workers poll two official accounts in parallel, and the same customers write to both; both
workers drain the one research outbox. Neither may fail the other's work (a deadlock) nor do
the same work twice (a research record written twice inflates every trend report).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from sqlmodel import Session, func, select

from anonymizer.store import ResearchRecord, RollupDay
from connectors import Author, InboundItem
from inbox.db import databases
from inbox.ingest import commit_batch
from inbox.models import Account, Contact, Message, ResearchOutbox
from inbox.worker import WorkerContext, context_from_app, drain
from tests.conftest import make_account, make_item

CUSTOMERS = 60


def _at_once(*jobs: Callable[[], object]) -> list[BaseException]:
    """Run the jobs in threads released together; the errors they raised."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            barrier.wait()
            job()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def _mentions(account: Account, customers: list[int]) -> list[InboundItem]:
    return [
        make_item(
            account_ref=account.platform_account_id,
            external_id=f"{account.id}-{n}",
            kind="mention",
            thread_key=f"{account.id}-{n}",
            author=Author(platform_user_id=f"90{n}", handle=f"kunde{n}", display_name=f"K {n}"),
        )
        for n in customers
    ]


@pytest.mark.postgres_only
def test_two_accounts_with_the_same_customers_are_stored_at_once(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    first = make_account(session, fernet)
    second = Account(
        platform="demo",
        platform_account_id="demo-zweite",
        display_name="Zweite",
        credentials_encrypted=b"",
    )
    session.add(second)
    session.commit()
    engine = databases(app).inbox
    # The same customers, met in opposite orders: each batch holds new contacts the other needs.
    batches = [
        (first.id, _mentions(first, list(range(CUSTOMERS)))),
        (second.id, _mentions(second, list(range(CUSTOMERS))[::-1])),
    ]

    def store(account_id: int | None, items: list[InboundItem]) -> Callable[[], object]:
        def job() -> object:
            with Session(engine, expire_on_commit=False) as own:
                account = own.get(Account, account_id)
                assert account is not None
                return commit_batch(
                    session=own, account=account, items=items, failures=[], source="poll"
                )

        return job

    errors = _at_once(*(store(account_id, items) for account_id, items in batches))
    assert errors == []
    assert session.exec(select(func.count()).select_from(Message)).one() == 2 * CUSTOMERS
    assert session.exec(select(func.count()).select_from(Contact)).one() == CUSTOMERS


@pytest.mark.postgres_only
def test_two_workers_draining_at_once_write_each_record_once(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    items = _mentions(account, list(range(2 * CUSTOMERS)))
    commit_batch(session=session, account=account, items=items, failures=[], source="poll")
    base = context_from_app(app)
    workers = [dataclasses.replace(base, owner=f"host-{n}:{n}", drain_batch=50) for n in (1, 2)]

    def drain_all(ctx: WorkerContext) -> Callable[[], object]:
        def job() -> object:
            while drain(ctx).written:
                pass
            return None

        return job

    assert _at_once(*(drain_all(ctx) for ctx in workers)) == []
    assert session.exec(select(func.count()).select_from(ResearchOutbox)).one() == 0
    with Session(databases(app).research) as research:
        records = research.exec(select(func.count()).select_from(ResearchRecord)).one()
        counted = research.exec(select(func.sum(RollupDay.count))).one()
    assert records == len(items)
    # The trend report's daily counts include every record, whichever worker wrote it.
    assert counted == len(items)
