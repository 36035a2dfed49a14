"""Reading conversations for the agents' list: views, filters and the order of urgency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session, col, select

from inbox.models import Account, Contact, Conversation, ConversationStatus, Message

View = Literal["open", "closed"]
VIEWS: tuple[View, ...] = ("open", "closed")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the conversation list."""

    conversation: Conversation
    contact: Contact
    account: Account
    preview: str


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
