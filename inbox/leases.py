"""Keeping a worker's poll lease on an account while the poll runs, and proving it at commit.

A lease (Account.lease_owner, lease_expires_at) lets one worker poll an account at a time. A
poll can outlast it: a platform answering slowly, a big batch, a busy database. `kept_alive`
renews the lease in the background while the poll runs; `hold_lease` renews it inside the
poll's own transaction just before the commit, so a worker whose lease lapsed anyway (paused,
starved) finds out and drops its work instead of committing next to the worker that took over.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from inbox.models import Account
from inbox.types import utcnow

log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """Another worker holds the account's lease now: this poll's work must not be committed."""


def renew_lease(
    *, session: Session, account_id: int, owner: str, seconds: float, skip_locked: bool = False
) -> bool:
    """Extend this owner's lease in the caller's transaction; False if the lease is not ours.

    With `skip_locked` a row another transaction has locked is left alone (False) instead of
    waited for: the background renewal must never wait on the poll's own transaction, which
    locks the row just before it commits and rolls back only after the renewal has stopped.
    """
    rows = select(Account.id).where(
        col(Account.id) == account_id, col(Account.lease_owner) == owner
    )
    if skip_locked:
        rows = rows.with_for_update(skip_locked=True)
    result = session.execute(
        update(Account)
        .where(col(Account.id).in_(rows.scalar_subquery()))
        .values(lease_expires_at=utcnow() + timedelta(seconds=seconds))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def hold_lease(*, session: Session, account_id: int, owner: str, seconds: float) -> None:
    """Renew the lease in the caller's transaction, or raise LeaseLost if it was taken.

    The UPDATE keeps the account row locked until the caller commits: no other worker can
    take the lease between this check and that commit.
    """
    if not renew_lease(session=session, account_id=account_id, owner=owner, seconds=seconds):
        raise LeaseLost(f"account {account_id} is polled by another worker now")


@contextmanager
def kept_alive(*, engine: Engine, account_id: int, owner: str, seconds: float) -> Iterator[None]:
    """Renew the lease every third of its length while the block runs."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(seconds / 3):
            try:
                with Session(engine) as session:
                    # Not renewed: taken over (hold_lease stops the poll at its commit) or the
                    # poll is committing right now; either way, try again next round.
                    renew_lease(
                        session=session,
                        account_id=account_id,
                        owner=owner,
                        seconds=seconds,
                        skip_locked=True,
                    )
                    session.commit()
            except Exception:  # hold_lease still protects the data; keep trying
                log.exception("renewing the lease of account %s failed", account_id)

    thread = threading.Thread(target=renew, name=f"lease-{account_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
