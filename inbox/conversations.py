"""Reading one conversation for the thread view."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from inbox.models import Account, Contact, Conversation, Message, User


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
