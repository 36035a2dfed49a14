"""Reading one conversation for the thread view: its timeline and the contact beside it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from urllib.parse import quote

from sqlmodel import Session, col, select

from inbox.models import Account, Contact, Conversation, Message, User
from inbox.thread_actions import tags_of
from inbox.workflow_models import Note

EARLIER_LIMIT = 10

# Where a handle's public profile lives; platforms missing here get no link (Facebook pages
# are addressed by ids we do not show).
_PROFILE_URLS = {
    "x": "https://x.com/{}",
    "instagram": "https://www.instagram.com/{}/",
}


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """A message with the name of whoever wrote it."""

    kind: ClassVar[str] = "message"
    message: Message
    author: str
    # The earlier message of this thread it answers, if the platform said so and we have it.
    reply_to_id: int | None = None
    reply_to_author: str | None = None

    @property
    def at(self) -> datetime:
        """When the message was written."""
        return self.message.created_at


@dataclass(frozen=True, slots=True)
class ThreadNote:
    """An internal note with the name of the colleague who wrote it."""

    kind: ClassVar[str] = "note"
    note: Note
    author: str

    @property
    def at(self) -> datetime:
        """When the note was written."""
        return self.note.created_at


@dataclass(frozen=True, slots=True)
class ContactPanel:
    """What the thread view shows about the person beside the thread."""

    profile_url: str | None
    earlier: list[Conversation]


@dataclass(frozen=True, slots=True)
class Thread:
    """A conversation with everything the thread view shows."""

    conversation: Conversation
    contact: Contact
    account: Account
    messages: list[ThreadMessage]
    notes: list[ThreadNote]
    timeline: list[ThreadMessage | ThreadNote]
    tags: list[str]
    assignee: User | None
    panel: ContactPanel


def load_thread(
    *, session: Session, conversation_id: int, accounts: Collection[int] | None = None
) -> Thread | None:
    """A conversation and its messages in the order they were written, or None; the contact
    panel lists earlier conversations only on `accounts` (None: all)."""
    found = session.exec(
        select(Conversation, Contact, Account)
        .join(Contact, col(Contact.id) == Conversation.contact_id)
        .join(Account, col(Account.id) == Conversation.account_id)
        .where(Conversation.id == conversation_id)
    ).first()
    if found is None:
        return None
    conversation, contact, account = found
    messages = session.exec(
        select(Message, User)
        .join(User, col(User.id) == Message.author_user_id, isouter=True)
        .where(Message.conversation_id == conversation_id)
        .order_by(col(Message.created_at), col(Message.id))
    ).all()
    contact_name = contact.display_name or contact.handle or contact.platform_user_id
    authors = [(m, agent.name if agent else contact_name) for m, agent in messages]
    by_external_id = {m.external_id: (m.id, name) for m, name in authors if m.external_id}
    thread_messages: list[ThreadMessage] = []
    for m, name in authors:
        reply_to_id, reply_to_author = by_external_id.get(m.in_reply_to or "", (None, None))
        thread_messages.append(
            ThreadMessage(
                message=m, author=name, reply_to_id=reply_to_id, reply_to_author=reply_to_author
            )
        )
    notes = [
        ThreadNote(note=note, author=author.name)
        for note, author in session.exec(
            select(Note, User)
            .join(User, col(User.id) == Note.author_user_id)
            .where(Note.conversation_id == conversation_id)
            .order_by(col(Note.created_at), col(Note.id))
        ).all()
    ]
    # Both lists are in time order already; a stable sort keeps a message before a note
    # written in the same instant.
    timeline: list[ThreadMessage | ThreadNote] = sorted(
        [*thread_messages, *notes], key=lambda entry: entry.at
    )
    assignee = session.get(User, conversation.assignee_id) if conversation.assignee_id else None
    return Thread(
        conversation=conversation,
        contact=contact,
        account=account,
        messages=thread_messages,
        notes=notes,
        timeline=timeline,
        tags=tags_of(session=session, conversation_id=conversation_id),
        assignee=assignee,
        panel=contact_panel(
            session=session, contact=contact, conversation=conversation, accounts=accounts
        ),
    )


def contact_panel(
    *,
    session: Session,
    contact: Contact,
    conversation: Conversation,
    accounts: Collection[int] | None = None,
) -> ContactPanel:
    """The contact's profile link and their other conversations on `accounts` (None: all),
    most recent first."""
    query = select(Conversation).where(
        Conversation.contact_id == contact.id, Conversation.id != conversation.id
    )
    if accounts is not None:
        query = query.where(col(Conversation.account_id).in_(sorted(accounts)))
    earlier = session.exec(
        query.order_by(col(Conversation.last_message_at).desc(), col(Conversation.id).desc()).limit(
            EARLIER_LIMIT
        )
    ).all()
    return ContactPanel(profile_url=profile_url(contact), earlier=list(earlier))


def profile_url(contact: Contact) -> str | None:
    """The public profile page of the contact's handle, where the platform has one."""
    pattern = _PROFILE_URLS.get(contact.platform)
    handle = (contact.handle or "").lstrip("@")
    if pattern is None or not handle:
        return None
    # Handles come from the platform, which we do not trust to keep them URL-safe.
    return pattern.format(quote(handle, safe=""))
