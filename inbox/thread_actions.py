"""What agents do with a conversation: assign, status, snooze, tags, notes, spam.

Each service changes the session and leaves the commit to the caller, so the change and its
audit event are written in one transaction.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo

from sqlmodel import Session, col, select

from inbox.models import Conversation, ConversationStatus, User
from inbox.types import utcnow
from inbox.users import active_agents
from inbox.workflow_models import ConversationTag, Note

TAG_LENGTH = 64
NOTE_LENGTH = 10_000
WORKDAY_START = time(9, 0)

SNOOZE_PRESETS = ("hour", "tomorrow", "monday")


class ActionError(ValueError):
    """An action that cannot be done as asked; `reason` says why, for the view to explain."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def assign(*, session: Session, conversation: Conversation, assignee_id: int | None) -> None:
    """Hand the conversation to an active agent or admin, or to no one with None."""
    if assignee_id is not None:
        assignee = session.get(User, assignee_id)
        # Only someone who can see the conversation can take it: an admin, or a member agent.
        candidates = active_agents(session=session, account_id=conversation.account_id)
        if assignee is None or assignee not in candidates:
            raise ActionError("unknown_assignee")
    conversation.assignee_id = assignee_id
    session.add(conversation)


def set_status(*, session: Session, conversation: Conversation, status: ConversationStatus) -> None:
    """Move the conversation to a status; closing stamps closed_at, anything else clears it."""
    if status == ConversationStatus.closed:
        if conversation.status != ConversationStatus.closed or conversation.closed_at is None:
            conversation.closed_at = utcnow()
    else:
        conversation.closed_at = None
    conversation.status = status
    session.add(conversation)


def preset_time(preset: str, *, now: datetime, zone: tzinfo) -> datetime:
    """When a snooze preset ends: in an hour, tomorrow 9:00 or next Monday 9:00 local time."""
    if preset not in SNOOZE_PRESETS:
        raise ActionError("unknown_preset")
    if preset == "hour":
        return now + timedelta(hours=1)
    today = now.astimezone(zone).date()
    if preset == "tomorrow":
        return _local_morning(today + timedelta(days=1), zone)
    # On a Monday, "next Monday" is a week ahead: this morning has begun or is gone.
    return _local_morning(today + timedelta(days=7 - today.weekday()), zone)


def _local_morning(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, WORKDAY_START, tzinfo=zone)


def parse_local_time(value: str, *, zone: tzinfo) -> datetime:
    """Read a datetime-local field ("2026-11-23T14:30") as a time in the team's zone."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ActionError("bad_time") from None
    if parsed.tzinfo is not None:
        raise ActionError("bad_time")
    return parsed.replace(tzinfo=zone)


def snooze(*, session: Session, conversation: Conversation, until: datetime, now: datetime) -> None:
    """Hide the conversation from the working views until a time in the future."""
    if until <= now:
        raise ActionError("snooze_in_past")
    conversation.snoozed_until = until
    session.add(conversation)


def unsnooze(*, session: Session, conversation: Conversation) -> None:
    """Bring a snoozed conversation back at once."""
    conversation.snoozed_until = None
    session.add(conversation)


def normalise_tag(raw: str) -> str:
    """A tag as stored: trimmed, lower-case, at most 64 characters; ActionError if empty."""
    tag = " ".join(raw.split()).lower()[:TAG_LENGTH].strip()
    if not tag:
        raise ActionError("empty_tag")
    return tag


def tags_of(*, session: Session, conversation_id: int) -> list[str]:
    """The conversation's tags in alphabetical order."""
    return list(
        session.exec(
            select(ConversationTag.tag)
            .where(ConversationTag.conversation_id == conversation_id)
            .order_by(col(ConversationTag.tag))
        ).all()
    )


def add_tag(*, session: Session, conversation: Conversation, raw: str) -> str:
    """Tag the conversation (a tag it has already is kept once) and return the stored tag."""
    assert conversation.id is not None
    tag = normalise_tag(raw)
    if session.get(ConversationTag, (conversation.id, tag)) is None:
        session.add(ConversationTag(conversation_id=conversation.id, tag=tag))
    return tag


def remove_tag(*, session: Session, conversation: Conversation, raw: str) -> str:
    """Take a tag off the conversation and return it; removing a missing tag changes nothing."""
    assert conversation.id is not None
    tag = normalise_tag(raw)
    found = session.get(ConversationTag, (conversation.id, tag))
    if found is not None:
        session.delete(found)
    return tag


def add_note(*, session: Session, conversation: Conversation, author: User, text: str) -> Note:
    """Add an internal note for colleagues; notes are never sent to the platform."""
    assert conversation.id is not None and author.id is not None
    text = text.strip()
    if not text:
        raise ActionError("empty_note")
    if len(text) > NOTE_LENGTH:
        raise ActionError("note_too_long")
    note = Note(conversation_id=conversation.id, author_user_id=author.id, text=text)
    session.add(note)
    session.flush()
    return note


def mark_spam(*, session: Session, conversation: Conversation, spam: bool) -> None:
    """Mark the conversation as spam, which also closes it, or take the mark off again."""
    conversation.is_spam = spam
    if spam:
        set_status(session=session, conversation=conversation, status=ConversationStatus.closed)
    session.add(conversation)
