"""Login throttling: failed logins per e-mail address and per client address, and lockouts.

Rows are keyed by a hash of the e-mail or address, and an e-mail gets a row whether or not a
user has it, so neither the table nor the answers tell which addresses exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from inbox.privacy_models import LoginThrottle


@dataclass(frozen=True, slots=True)
class Policy:
    """How many failures within which window lock a key, and for how long."""

    email_limit: int = 5
    ip_limit: int = 50
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Failure:
    """What one failed attempt changed: which scopes ("email", "ip") it locked just now."""

    locked_now: tuple[str, ...]


def email_key(email: str) -> str:
    """The throttle key of an e-mail address, as typed or not, in any case."""
    return _hash("email:" + email.strip().lower())


def ip_key(address: str | None) -> str:
    """The throttle key of a client address."""
    return _hash("ip:" + (address or "unknown"))


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def is_locked(*, session: Session, email: str, ip: str | None, now: datetime) -> bool:
    """Whether the e-mail address or the client address is locked out at `now`."""
    keys = [email_key(email), ip_key(ip)]
    found = session.exec(
        select(LoginThrottle.key).where(
            col(LoginThrottle.key).in_(keys), col(LoginThrottle.locked_until) > now
        )
    ).first()
    return found is not None


def record_failure(
    *, session: Session, email: str, ip: str | None, policy: Policy, now: datetime
) -> Failure:
    """Count a failed attempt for the e-mail and the address; lock those over their limit."""
    for attempt in range(2):
        locked = [
            scope
            for scope, key, limit in (
                ("email", email_key(email), policy.email_limit),
                ("ip", ip_key(ip), policy.ip_limit),
            )
            if _count(session=session, key=key, limit=limit, policy=policy, now=now)
        ]
        _prune(session=session, policy=policy, now=now)
        try:
            session.commit()
        except IntegrityError:
            # Another request created the same key a moment ago: count again on its row.
            session.rollback()
            if attempt:
                raise
            continue
        break
    return Failure(locked_now=tuple(locked))


def _count(*, session: Session, key: str, limit: int, policy: Policy, now: datetime) -> bool:
    row = session.exec(
        select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
    ).first()
    if row is None:
        row = LoginThrottle(key=key, failures=0, first_failure_at=now)
    elif row.locked_until is not None and row.locked_until > now:
        # Attempts while locked change nothing: the lock neither grows nor ends early.
        return False
    elif row.locked_until is not None or now - row.first_failure_at > policy.window:
        row.failures, row.first_failure_at, row.locked_until = 0, now, None
    row.failures += 1
    newly_locked = row.failures >= limit
    if newly_locked:
        row.locked_until = now + policy.lockout
    session.add(row)
    return newly_locked


def _prune(*, session: Session, policy: Policy, now: datetime) -> None:
    # Rows whose window and lock are over say nothing any more; keep the table small.
    session.execute(
        delete(LoginThrottle).where(
            col(LoginThrottle.first_failure_at) < now - policy.window - policy.lockout,
            or_(col(LoginThrottle.locked_until).is_(None), col(LoginThrottle.locked_until) < now),
        )
    )


def clear(*, session: Session, email: str) -> None:
    """Forget the failures of an e-mail address after a successful login (the caller commits)."""
    session.execute(delete(LoginThrottle).where(col(LoginThrottle.key) == email_key(email)))
