"""Poll leases kept alive through a slow poll, and proven at the commit that ends it."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from sqlmodel import Session, func, select

from inbox.db import databases
from inbox.leases import LeaseLost, hold_lease, kept_alive, renew_lease
from inbox.models import Account, PollRun
from inbox.types import utcnow
from inbox.worker import acquire_lease
from tests.conftest import make_account


def _leased(session: Session, fernet: MultiFernet, owner: str, seconds: int) -> int:
    account = make_account(session, fernet)
    assert account.id is not None
    assert acquire_lease(session=session, account_id=account.id, owner=owner, seconds=seconds)
    return account.id


def _expiry(session: Session, account_id: int) -> tuple[str | None, float]:
    session.expire_all()
    account = session.get(Account, account_id)
    assert account is not None and account.lease_expires_at is not None
    return account.lease_owner, (account.lease_expires_at - utcnow()).total_seconds()


def test_only_the_owner_renews_its_lease(session: Session, fernet: MultiFernet) -> None:
    account_id = _leased(session, fernet, "host:1", seconds=5)
    assert renew_lease(session=session, account_id=account_id, owner="host:1", seconds=600)
    session.commit()
    assert _expiry(session, account_id)[1] > 500
    assert not renew_lease(session=session, account_id=account_id, owner="host:2", seconds=600)
    session.commit()
    assert _expiry(session, account_id)[0] == "host:1"


def test_a_lapsed_lease_taken_by_another_worker_stops_the_commit(
    session: Session, fernet: MultiFernet
) -> None:
    account_id = _leased(session, fernet, "slow:1", seconds=-1)  # lapsed while it polled
    assert acquire_lease(session=session, account_id=account_id, owner="other:2", seconds=60)
    session.add(
        PollRun(account_id=account_id, owner="slow:1", started_at=utcnow(), finished_at=utcnow())
    )
    with pytest.raises(LeaseLost):
        hold_lease(session=session, account_id=account_id, owner="slow:1", seconds=60)
    session.rollback()
    assert session.exec(select(func.count()).select_from(PollRun)).one() == 0
    # The worker that took over still holds it, and proves so at its own commit.
    hold_lease(session=session, account_id=account_id, owner="other:2", seconds=60)
    session.commit()
    assert _expiry(session, account_id)[0] == "other:2"


def test_a_poll_longer_than_its_lease_keeps_it(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account_id = _leased(session, fernet, "busy:1", seconds=2)
    engine = databases(app).inbox
    with kept_alive(engine=engine, account_id=account_id, owner="busy:1", seconds=2):
        deadline = time.monotonic() + 5  # two and a half leases
        while time.monotonic() < deadline:
            assert not acquire_lease(
                session=session, account_id=account_id, owner="other:2", seconds=60
            )
            time.sleep(0.25)
    owner, left = _expiry(session, account_id)
    assert owner == "busy:1" and left > 0
