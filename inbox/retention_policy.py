"""Retention around the run itself: editing an account's policy, and when the daily run is due.

The worker runs retention once a day at RUN_HOUR in the team's time zone, and once on start
when a scheduled run was missed while it was down. Several workers may be running: on
PostgreSQL an advisory lock lets one of them do it; SQLite has one writer anyway.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from inbox.models import Account, AuditEvent
from inbox.retention import ACTION, RetentionReport, apply

# A quiet hour for bulk deletes, in the team's zone (BABEL_DEFAULT_TIMEZONE).
RUN_HOUR = 3
MIN_DAYS, MAX_DAYS = 1, 3650
POLICY_FIELDS = ("retention_days", "raw_retention_days", "pseudonym_key_days")
# Any constant will do; it only has to be the same in every worker.
_LOCK_KEY = 0x5EC1_0006


class PolicyError(ValueError):
    """A retention figure is out of range; `field` names it."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} must be a whole number of days from {MIN_DAYS} to {MAX_DAYS}")
        self.field = field


def set_policy(
    *, session: Session, account: Account, days: dict[str, int]
) -> dict[str, dict[str, int]]:
    """Change an account's retention figures; return {field: {old, new}} of what changed.

    Nothing changes unless all three are valid. The caller audits and commits.
    """
    for name in POLICY_FIELDS:
        if not MIN_DAYS <= days[name] <= MAX_DAYS:
            raise PolicyError(name)
    changes = {}
    for name in POLICY_FIELDS:
        old = int(getattr(account, name))
        if old != days[name]:
            changes[name] = {"old": old, "new": days[name]}
            setattr(account, name, days[name])
    session.add(account)
    return changes


def last_run(*, session: Session) -> AuditEvent | None:
    """The audit event of the latest run: when it was and what it deleted."""
    return session.exec(
        select(AuditEvent).where(AuditEvent.action == ACTION).order_by(col(AuditEvent.id).desc())
    ).first()


def _at_hour(day: datetime, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, RUN_HOUR, tzinfo=zone)


def next_run(*, now: datetime, timezone: str) -> datetime:
    """When the next scheduled run starts (UTC)."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    at = _at_hour(local, zone)
    if at <= local:
        at = _at_hour(local + timedelta(days=1), zone)
    return at.astimezone(UTC)


def previous_run(*, now: datetime, timezone: str) -> datetime:
    """When the latest scheduled run should have started (UTC)."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    at = _at_hour(local, zone)
    if at > local:
        at = _at_hour(local - timedelta(days=1), zone)
    return at.astimezone(UTC)


def due(*, session: Session, now: datetime, timezone: str) -> bool:
    """Whether no run has happened since the latest scheduled time."""
    last = last_run(session=session)
    return last is None or last.at < previous_run(now=now, timezone=timezone)


def run_daily(
    *,
    engine: Engine,
    now: datetime,
    timezone: str,
    default_key_days: int,
    force: bool = False,
    via: str = "worker",
) -> RetentionReport | None:
    """Apply retention if it is due (or `force`), unless another worker is at it; None if not."""
    with engine.connect() as lock:
        postgres = engine.dialect.name == "postgresql"
        if postgres:
            # Held by this connection across the run's many commits; released below.
            taken = lock.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}).scalar()
            lock.commit()  # a session-level lock outlives the transaction that took it
            if not taken:
                return None
        try:
            with Session(engine) as session:
                if not force and not due(session=session, now=now, timezone=timezone):
                    return None
                return apply(
                    session=session,
                    now=now,
                    default_key_days=default_key_days,
                    via=via,
                )
        finally:
            if postgres:
                lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                lock.commit()
