"""Per-month pseudonym keys: they let reports count distinct authors, then they are destroyed.

A research record's author pseudonym is an HMAC of the platform user id under its month's key.
The keys live only here, in the inbox database, encrypted. Some days after a month ends its
key is destroyed: from then on nobody, not even us, can link that month's records to a person.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from cryptography.fernet import MultiFernet
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from inbox.models import PseudonymKey
from inbox.types import utcnow


def month_of(moment: datetime) -> str:
    """The UTC month a moment falls in, as "YYYY-MM"."""
    return moment.astimezone(utcnow().tzinfo).strftime("%Y-%m")


def key_for(*, session: Session, fernet: MultiFernet, moment: datetime) -> bytes | None:
    """The pseudonym key of the moment's month, created on first use; None once destroyed."""
    month = month_of(moment)
    row = session.get(PseudonymKey, month)
    if row is None:
        # Its own short transaction: the key must exist before any record uses it, whatever
        # becomes of the caller's batch.
        with Session(session.get_bind()) as own:
            key = fernet.encrypt(secrets.token_bytes(32))
            own.add(PseudonymKey(month=month, key_encrypted=key))
            try:
                own.commit()
            except IntegrityError:  # another worker created it first: use theirs
                own.rollback()
        row = session.get(PseudonymKey, month)
        assert row is not None
    if row.key_encrypted is None:
        return None
    return fernet.decrypt(row.key_encrypted)


def _month_end(month: str) -> datetime:
    start = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=utcnow().tzinfo)
    return (start + timedelta(days=32)).replace(day=1)


def expired_months(*, session: Session, retention_days: int, now: datetime) -> list[str]:
    """The months whose keys still exist but ended more than `retention_days` before `now`."""
    # One row per month ever used: a handful, so reading them all is fine.
    months = session.exec(
        select(PseudonymKey.month)
        .where(col(PseudonymKey.key_encrypted).is_not(None))
        .order_by(col(PseudonymKey.month))
    ).all()
    return [m for m in months if _month_end(m) + timedelta(days=retention_days) <= now]


def destroy_expired(
    *, session: Session, retention_days: int, now: datetime | None = None
) -> list[str]:
    """Destroy the keys of months that ended more than `retention_days` ago; name the months."""
    now = now or utcnow()
    destroyed = expired_months(session=session, retention_days=retention_days, now=now)
    for month in destroyed:
        row = session.get(PseudonymKey, month)
        assert row is not None
        row.key_encrypted = None
        row.destroyed_at = now
        session.add(row)
    session.commit()
    return destroyed
