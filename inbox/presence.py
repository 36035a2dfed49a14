"""Collision detection: who else has a conversation open, and what arrived since an agent looked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, func, or_, select

from inbox.models import Direction, Message, User
from inbox.types import utcnow
from inbox.workflow_models import Presence

# Browsers beat every few seconds; a colleague missing three beats has left.
ACTIVE = timedelta(seconds=15)
# Rows older than this are dead tabs and closed laptops: deleted on the next beat.
STALE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Present:
    """A colleague who has the conversation open."""

    name: str
    typing: bool


def heartbeat(
    *,
    session: Session,
    conversation_id: int,
    user_id: int,
    typing: bool,
    now: datetime | None = None,
) -> None:
    """Note that the user has the conversation open, and whether they type; the caller commits."""
    now = now or utcnow()
    values = {
        "conversation_id": conversation_id,
        "user_id": user_id,
        "typing": typing,
        "seen_at": now,
    }
    # Two tabs of one agent beat at once: an upsert, so neither fails on the primary key.
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(Presence).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["conversation_id", "user_id"],
            set_={"typing": typing, "seen_at": now},
        )
    )
    session.execute(
        delete(Presence).where(
            col(Presence.conversation_id) == conversation_id,
            col(Presence.seen_at) < now - STALE,
        )
    )


def leave(*, session: Session, conversation_id: int, user_id: int) -> None:
    """Forget that the user has the conversation open (the tab was closed); the caller commits."""
    session.execute(
        delete(Presence).where(
            col(Presence.conversation_id) == conversation_id, col(Presence.user_id) == user_id
        )
    )


def others_present(
    *, session: Session, conversation_id: int, user_id: int, now: datetime | None = None
) -> list[Present]:
    """The other users who had the conversation open in the last few seconds, by name."""
    since = (now or utcnow()) - ACTIVE
    rows = session.exec(
        select(User.name, Presence.typing)
        .join(User, col(User.id) == Presence.user_id)
        .where(
            Presence.conversation_id == conversation_id,
            Presence.user_id != user_id,
            col(Presence.seen_at) >= since,
        )
        .order_by(col(User.name), col(User.id))
    ).all()
    return [Present(name=name, typing=typing) for name, typing in rows]


def newest_message_id(*, session: Session, conversation_id: int) -> int:
    """The id of the newest message in the conversation, 0 if it has none."""
    newest = session.exec(
        select(func.max(Message.id)).where(Message.conversation_id == conversation_id)
    ).one()
    return int(newest or 0)


def missed_messages(*, session: Session, conversation_id: int, seen_id: int, user_id: int) -> int:
    """How many customer messages and colleagues' replies arrived after message `seen_id`."""
    count = session.exec(
        select(func.count())
        .select_from(Message)
        .where(
            Message.conversation_id == conversation_id,
            col(Message.id) > seen_id,
            or_(
                Message.direction == Direction.inbound,
                col(Message.author_user_id).is_(None),
                Message.author_user_id != user_id,
            ),
        )
    ).one()
    return int(count)
