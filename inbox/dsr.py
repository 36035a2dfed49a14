"""Data-subject requests: everything stored about a contact (access), and erasing it.

A contact's data are their profile, their conversations (every message in them, both ways,
with notes and tags), the messages they wrote in other people's threads, their consent records,
and the audit trail of who opened any of it. Erasure deletes all of it but the audit trail
(append-only, ids only) and keeps tombstones so that a re-poll brings none of it back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from inbox import audit
from inbox.models import (
    Account,
    AuditEvent,
    Contact,
    Conversation,
    DeadLetter,
    Message,
    ResearchOutbox,
    User,
)
from inbox.privacy_models import ConsentRecord, ConsentText
from inbox.tombstones import bury, contact_hash, item_hash, tombstone_key
from inbox.types import utcnow
from inbox.workflow_models import ConversationTag, Note, Presence

FORMAT = "socialcare-dsr-export/1"
_CHUNK = 1000
_FIND_LIMIT = 50


class UnknownContact(LookupError):
    """No contact with that id (erased already, or never stored)."""


@dataclass(frozen=True, slots=True)
class Counts:
    """How much is stored about a contact: what the request page and the erasure confirm show."""

    conversations: int
    messages: int
    notes: int
    consents: int


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What an erasure deleted, and how many tombstones it left."""

    contact_id: int
    conversations: int
    messages: int
    notes: int
    tags: int
    consents: int
    outbox_rows: int
    dead_letters: int
    tombstones: int

    def counts(self) -> dict[str, int]:
        """The figures without the id, for the audit trail and the report page."""
        return {k: v for k, v in asdict(self).items() if k != "contact_id"}


def find_contacts(*, session: Session, query: str) -> list[Contact]:
    """Contacts whose id, platform user id, handle, name or e-mail is or starts with `query`."""
    text = query.strip().lstrip("@").strip()
    if not text:
        return []
    prefix = _like_prefix(text.lower())
    # lower() with LIKE, as the trigram indexes on PostgreSQL are built on lower(handle/name).
    conditions: list[ColumnElement[bool]] = [
        col(Contact.platform_user_id) == text,
        func.lower(col(Contact.handle)).like(prefix, escape="\\"),
        func.lower(col(Contact.display_name)).like(prefix, escape="\\"),
        func.lower(col(Contact.email)).like(prefix, escape="\\"),
    ]
    if text.isdigit() and len(text) < 19:
        conditions.append(col(Contact.id) == int(text))
    statement = select(Contact).where(or_(*conditions)).order_by(col(Contact.id)).limit(_FIND_LIMIT)
    return list(session.exec(statement))


def contact_counts(*, session: Session, contact_id: int) -> Counts:
    """Conversations, messages, notes and consent records stored about a contact."""
    conversations = _conversation_ids(contact_id)
    return Counts(
        conversations=_count(
            session, select(func.count()).where(col(Conversation.contact_id) == contact_id)
        ),
        messages=_count(
            session, select(func.count()).where(_their_messages(contact_id, conversations))
        ),
        notes=_count(
            session, select(func.count()).where(col(Note.conversation_id).in_(conversations))
        ),
        consents=_count(
            session, select(func.count()).where(col(ConsentRecord.contact_id) == contact_id)
        ),
    )


def export_contact(*, session: Session, contact_id: int) -> dict[str, Any]:
    """Everything stored about a contact, as JSON-ready data (a handful of queries, any size)."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise UnknownContact(contact_id)
    conversations = _conversation_ids(contact_id)
    user_names = {uid: name for uid, name in session.exec(select(User.id, User.name)) if uid}
    rows = session.exec(
        select(Conversation, Account.platform, Account.display_name)
        .join(Account, col(Account.id) == Conversation.account_id)
        .where(col(Conversation.contact_id) == contact_id)
        .order_by(col(Conversation.id))
    ).all()
    tags: dict[int, list[str]] = {}
    for conversation_id, tag in session.exec(
        select(ConversationTag.conversation_id, ConversationTag.tag)
        .where(col(ConversationTag.conversation_id).in_(conversations))
        .order_by(col(ConversationTag.tag))
    ):
        tags.setdefault(conversation_id, []).append(tag)
    return {
        "format": FORMAT,
        "exported_at": utcnow().isoformat(),
        "contact": _plain(contact.model_dump()),
        "research_objection": contact.research_objection,
        "conversations": [
            {
                **_plain(c.model_dump(exclude={"contact_id"})),
                "account": {"id": c.account_id, "platform": platform, "display_name": name},
                "assignee": user_names.get(c.assignee_id) if c.assignee_id else None,
                "tags": tags.get(c.id or 0, []),
            }
            for c, platform, name in rows
        ],
        "messages": _messages(session, contact_id, conversations, user_names),
        "notes": [
            {**_plain(n.model_dump()), "author": user_names.get(n.author_user_id)}
            for n in session.exec(
                select(Note)
                .where(col(Note.conversation_id).in_(conversations))
                .order_by(col(Note.created_at), col(Note.id))
            )
        ],
        "consent_records": _consents(session, contact_id, user_names),
        "access_log": _access_log(session, contact_id, conversations, user_names),
    }


def erase_contact(
    *, session: Session, contact_id: int, by_user_id: int | None, ip: str | None, via: str = "web"
) -> ErasureReport:
    """Delete a contact and everything about them, keep tombstones, audit it, and commit."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise UnknownContact(contact_id)
    conversation_ids = list(
        session.exec(select(Conversation.id).where(col(Conversation.contact_id) == contact_id))
    )
    messages = session.exec(
        select(Message.id, Message.external_id, Account.platform)
        .join(Account, col(Account.id) == Message.account_id)
        .where(_their_messages(contact_id, _conversation_ids(contact_id)))
    ).all()
    message_ids = [row[0] for row in messages]
    key = tombstone_key(session=session)
    items = {item_hash(key, platform=p, external_id=e) for _, e, p in messages if e}
    tombstones = bury(session=session, hashes=items, kind="item")
    tombstones += bury(
        session=session,
        hashes=[
            contact_hash(key, platform=contact.platform, platform_user_id=contact.platform_user_id)
        ],
        kind="contact",
    )
    outbox = _delete_in(session, ResearchOutbox, col(ResearchOutbox.message_id), message_ids)
    _delete_in(session, Message, col(Message.id), message_ids)
    notes = _delete_in(session, Note, col(Note.conversation_id), conversation_ids)
    tags = _delete_in(
        session, ConversationTag, col(ConversationTag.conversation_id), conversation_ids
    )
    _delete_in(session, Presence, col(Presence.conversation_id), conversation_ids)
    _delete_in(session, Conversation, col(Conversation.id), conversation_ids)
    consents = _delete_in(session, ConsentRecord, col(ConsentRecord.contact_id), [contact_id])
    letters = _delete_in(
        session, DeadLetter, col(DeadLetter.id), _their_dead_letters(session, contact)
    )
    session.expunge(contact)
    session.execute(delete(Contact).where(col(Contact.id) == contact_id))
    report = ErasureReport(
        contact_id=contact_id,
        conversations=len(conversation_ids),
        messages=len(message_ids),
        notes=notes,
        tags=tags,
        consents=consents,
        outbox_rows=outbox,
        dead_letters=letters,
        tombstones=tombstones,
    )
    audit.record(
        session=session,
        action="erase_contact",
        user_id=by_user_id,
        target_type="contact",
        target_id=contact_id,
        ip=ip,
        detail={**report.counts(), "via": via},
        contact_id=contact_id,
    )
    session.commit()
    return report


def _conversation_ids(contact_id: int) -> Any:
    return select(Conversation.id).where(col(Conversation.contact_id) == contact_id)


def _their_messages(contact_id: int, conversations: Any) -> ColumnElement[bool]:
    # Their threads whole (our replies and whoever joined in), and what they wrote elsewhere.
    return or_(
        col(Message.conversation_id).in_(conversations),
        col(Message.author_contact_id) == contact_id,
    )


def _messages(
    session: Session, contact_id: int, conversations: Any, user_names: dict[int, str]
) -> list[dict[str, Any]]:
    statement = (
        select(Message)
        .where(_their_messages(contact_id, conversations))
        .order_by(col(Message.conversation_id), col(Message.created_at), col(Message.id))
        .execution_options(yield_per=1000)
    )
    out = []
    for message in session.exec(statement):
        row = _plain(message.model_dump())
        row["agent"] = user_names.get(message.author_user_id) if message.author_user_id else None
        out.append(row)
        session.expunge(message)  # 10,000 messages need not stay in the identity map
    return out


def _consents(
    session: Session, contact_id: int, user_names: dict[int, str]
) -> list[dict[str, Any]]:
    rows = session.exec(
        select(ConsentRecord, ConsentText)
        .outerjoin(ConsentText, col(ConsentText.id) == ConsentRecord.text_id)
        .where(col(ConsentRecord.contact_id) == contact_id)
        .order_by(col(ConsentRecord.given_at), col(ConsentRecord.id))
    ).all()
    return [
        {
            **_plain(record.model_dump(exclude={"contact_id"})),
            "recorded_by": user_names.get(record.recorded_by_user_id or 0),
            "withdrawn_by": user_names.get(record.withdrawn_by_user_id or 0),
            "text": None
            if text is None
            else {"version": text.version, "language": text.language, "text": text.text},
        }
        for record, text in rows
    ]


def _access_log(
    session: Session, contact_id: int, conversations: Any, user_names: dict[int, str]
) -> list[dict[str, Any]]:
    mine = aliased(Message)
    messages = select(mine.id).where(
        or_(col(mine.conversation_id).in_(conversations), col(mine.author_contact_id) == contact_id)
    )
    target = col(AuditEvent.target_id)
    statement = (
        select(AuditEvent)
        .where(
            or_(
                col(AuditEvent.contact_id) == contact_id,
                (col(AuditEvent.target_type) == "contact") & (target == contact_id),
                (col(AuditEvent.target_type) == "conversation") & target.in_(conversations),
                (col(AuditEvent.target_type) == "message") & target.in_(messages),
            )
        )
        .order_by(col(AuditEvent.at), col(AuditEvent.id))
    )
    # Staff addresses are the staff's data, not the contact's: who and when is what they get.
    return [
        {
            "at": event.at.isoformat(),
            "user": user_names.get(event.user_id) if event.user_id else None,
            "action": event.action,
            "target_type": event.target_type,
            "target_id": event.target_id,
        }
        for event in session.exec(statement)
    ]


def _their_dead_letters(session: Session, contact: Contact) -> list[int]:
    # The id as a whole token, so "7001" does not match "17001"; LIKE narrows it first.
    token = re.compile(rf"(?<![\w-]){re.escape(contact.platform_user_id)}(?![\w-])")
    candidates = session.exec(
        select(DeadLetter.id, DeadLetter.raw).where(
            col(DeadLetter.platform) == contact.platform,
            col(DeadLetter.raw).like(f"%{_like_escape(contact.platform_user_id)}%", escape="\\"),
        )
    ).all()
    return [letter_id for letter_id, raw in candidates if letter_id and token.search(raw)]


def _delete_in(session: Session, table: Any, column: Any, values: Sequence[Any]) -> int:
    deleted = 0
    for start in range(0, len(values), _CHUNK):
        result = session.execute(
            delete(table).where(column.in_(values[start : start + _CHUNK])),
            execution_options={"synchronize_session": False},
        )
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


def _count(session: Session, statement: Any) -> int:
    return int(session.exec(statement).one())


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(text: str) -> str:
    return _like_escape(text) + "%"
