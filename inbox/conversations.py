"""Reading conversations for the agents' list and thread views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session, col, select

from inbox.models import Account, Contact, Conversation, ConversationStatus, Message, User

View = Literal["open", "closed"]
VIEWS: tuple[View, ...] = ("open", "closed")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the conversation list."""

    conversation: Conversation
    contact: Contact
    account: Account
    preview: str


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """A message with the name of whoever wrote it."""

    message: Message
    author: str


@dataclass(frozen=True, slots=True)
class Thread:
    """A conversation with everything the thread view shows."""

    conversation: Conversation
    contact: Contact
    account: Account
    messages: list[ThreadMessage]


def list_conversations(*, session: Session, view: View, limit: int = 100) -> list[Row]:
    """Conversations of a view, the most urgent first (earliest due, then latest activity)."""
    statuses = (
        [ConversationStatus.open, ConversationStatus.pending]
        if view == "open"
        else [ConversationStatus.closed]
    )
    rows = session.exec(
        select(Conversation, Contact, Account)
        .join(Contact, col(Contact.id) == Conversation.contact_id)
        .join(Account, col(Account.id) == Conversation.account_id)
        .where(col(Conversation.status).in_(statuses))
        .order_by(
            col(Conversation.sla_due_at).is_(None),
            col(Conversation.sla_due_at),
            col(Conversation.last_message_at).desc(),
        )
        .limit(limit)
    ).all()
    ids = [conversation.id for conversation, _, _ in rows]
    previews: dict[int, str] = {}
    if ids:
        for conversation_id, text in session.exec(
            select(Message.conversation_id, Message.text)
            .where(col(Message.conversation_id).in_(ids))
            .order_by(col(Message.created_at), col(Message.id))
        ).all():
            previews[conversation_id] = text
    return [
        Row(conversation=c, contact=p, account=a, preview=previews.get(c.id or 0, ""))
        for c, p, a in rows
    ]


def load_thread(*, session: Session, conversation_id: int) -> Thread | None:
    """A conversation and its messages in the order they were written, or None."""
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
    return Thread(
        conversation=conversation,
        contact=contact,
        account=account,
        messages=[
            ThreadMessage(message=m, author=agent.name if agent else contact_name)
            for m, agent in messages
        ],
    )
