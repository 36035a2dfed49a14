"""The queries retention's preview and run share, so the preview counts what the run deletes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Select, and_, delete, or_
from sqlmodel import Session, col, func, select

from inbox.models import Account, Contact, Conversation, ConversationStatus, DeadLetter, Message
from inbox.privacy_models import ConsentRecord


def all_accounts(session: Session) -> Sequence[Account]:
    """Every account, in id order."""
    return session.exec(select(Account).order_by(col(Account.id))).all()


def expired(account: Account, now: datetime) -> ColumnElement[bool]:
    """The account's closed conversations past its limit."""
    return and_(
        col(Conversation.account_id) == account.id,
        col(Conversation.status) == ConversationStatus.closed,
        col(Conversation.closed_at) < now - timedelta(days=account.retention_days),
    )


def raw_range(account: Account, now: datetime) -> ColumnElement[bool] | None:
    """Messages of the account whose raw payload is due and not emptied yet; None if none."""
    cutoff = now - timedelta(days=account.raw_retention_days)
    start = account.raw_purged_before
    if start is not None and start >= cutoff:
        return None
    where = [col(Message.account_id) == account.id, col(Message.received_at) < cutoff]
    if start is not None:
        where.append(col(Message.received_at) >= start)
    return and_(*where)


def due_letters(
    account_id: int | None, policy: Account | Sequence[Account], now: datetime
) -> ColumnElement[bool]:
    """Dead letters due: resolved after the raw figure, unresolved after the conversation one."""
    if isinstance(policy, Account):
        raw_days, days = policy.raw_retention_days, policy.retention_days
    elif policy:
        raw_days = min(a.raw_retention_days for a in policy)
        days = min(a.retention_days for a in policy)
    else:
        raw_days = Account.model_fields["raw_retention_days"].default
        days = Account.model_fields["retention_days"].default
    owner = (
        col(DeadLetter.account_id) == account_id
        if account_id is not None
        else col(DeadLetter.account_id).is_(None)
    )
    resolved = col(DeadLetter.resolved_at).is_not(None)
    return and_(
        owner,
        or_(
            and_(resolved, col(DeadLetter.received_at) < now - timedelta(days=raw_days)),
            and_(~resolved, col(DeadLetter.received_at) < now - timedelta(days=days)),
        ),
    )


def unused_contacts(candidates: Any, *, excluding: Select[Any] | None) -> list[ColumnElement[bool]]:
    """Of the candidate contacts, those nothing refers to once the `excluding` ones are gone.

    Uncorrelated NOT IN, each subquery evaluated once: messages have no index on their author,
    and a correlated check would scan them once per contact.
    """
    conversations = select(Conversation.contact_id).where(
        col(Conversation.contact_id).in_(candidates)
    )
    authored = select(Message.author_contact_id).where(
        col(Message.author_contact_id).in_(candidates)  # never NULL, which NOT IN can't take
    )
    if excluding is not None:
        conversations = conversations.where(col(Conversation.id).not_in(excluding))
        authored = authored.where(col(Message.conversation_id).not_in(excluding))
    consented = select(ConsentRecord.contact_id).where(
        col(ConsentRecord.contact_id).in_(candidates)
    )
    return [
        col(Contact.id).in_(candidates),
        col(Contact.id).not_in(conversations),
        col(Contact.id).not_in(authored),
        col(Contact.id).not_in(consented),
    ]


def count(session: Session, table: Any, *where: ColumnElement[bool]) -> int:
    """How many rows of a table match."""
    return int(session.exec(select(func.count()).select_from(table).where(*where)).one())


def delete_where(session: Session, table: Any, *where: ColumnElement[bool]) -> int:
    """Delete the matching rows in one statement, loading none; say how many."""
    statement = delete(table).where(*where).execution_options(synchronize_session=False)
    return int(cast(CursorResult[Any], session.execute(statement)).rowcount)
