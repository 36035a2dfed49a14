"""Worker heartbeats: each worker process says every few seconds that it is alive.

`/readyz` and `socialcare check` read the newest beat; operators see which workers run.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Field, Session, SQLModel, col, select

from inbox.types import UTCDateTime, utcnow


class WorkerHeartbeat(SQLModel, table=True):
    """The last sign of life of one worker process (host:pid)."""

    owner: str = Field(primary_key=True, max_length=200)
    started_at: datetime = Field(sa_type=UTCDateTime, default_factory=utcnow)
    seen_at: datetime = Field(sa_type=UTCDateTime, default_factory=utcnow, index=True)


def beat(*, session: Session, owner: str, now: datetime | None = None) -> None:
    """Record that the worker `owner` is alive now, and commit."""
    now = now or utcnow()
    row = session.get(WorkerHeartbeat, owner)
    if row is None:
        row = WorkerHeartbeat(owner=owner, started_at=now, seen_at=now)
    row.seen_at = now
    session.add(row)
    session.commit()


def latest(*, session: Session) -> datetime | None:
    """When any worker last said it was alive; None when none ever did."""
    return session.exec(select(func.max(col(WorkerHeartbeat.seen_at)))).one()


def forget_older_than(*, session: Session, before: datetime) -> int:
    """Drop the beats of workers silent since `before` (stopped ones); how many went."""
    rows = session.exec(select(WorkerHeartbeat).where(col(WorkerHeartbeat.seen_at) < before)).all()
    for row in rows:
        session.delete(row)
    session.commit()
    return len(rows)
