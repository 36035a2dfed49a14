"""Reconnecting an official account with new credentials, and removing one with its data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.fernet import MultiFernet
from sqlalchemy import or_
from sqlmodel import Session, col, select

from connectors import ConnectorError, get_connector
from inbox.crypto import encrypt_credentials
from inbox.models import (
    Account,
    AccountStatus,
    Contact,
    Conversation,
    DeadLetter,
    Message,
    PollRun,
    ResearchOutbox,
)
from inbox.retention_queries import count, delete_where, unused_contacts
from inbox.workflow_models import AccountMember, CannedReply, ConversationTag, Note, Presence

# Contacts are deleted in chunks of this many ids: NOT IN over the messages once per chunk.
CONTACT_CHUNK = 5000


class WrongAccount(ConnectorError):
    """The new credentials belong to another account than the one being reconnected."""


@dataclass(frozen=True, slots=True)
class RemovalCounts:
    """What removing an account deletes."""

    conversations: int
    messages: int
    contacts: int
    dead_letters: int
    canned_replies: int
    memberships: int

    def detail(self) -> dict[str, int]:
        """The counts for the audit trail."""
        return asdict(self)


def reconnect_account(
    *,
    session: Session,
    fernet: MultiFernet,
    account: Account,
    credentials: Mapping[str, str],
    settings: Mapping[str, Any],
) -> Account:
    """Store new credentials after the platform confirms they are this account's; polling
    resumes at once. Other settings (topics, ID patterns, policies) stay. The caller commits."""
    merged = {**account.settings, **settings}
    identity = get_connector(account.platform, credentials, merged).identity()
    if identity.account_ref != account.platform_account_id:
        raise WrongAccount(
            f"These credentials belong to {identity.display_name}, not to {account.display_name}"
        )
    account.credentials_encrypted = encrypt_credentials(fernet, credentials)
    account.settings = {**merged, "account_ref": identity.account_ref}
    account.display_name, account.handle = identity.display_name, identity.handle
    account.status = AccountStatus.active
    account.last_error = None
    account.rate_limited_until = account.backoff_until = None
    account.consecutive_failures = 0
    session.add(account)
    return account


def _conversations(account_id: int) -> Any:
    return select(Conversation.id).where(col(Conversation.account_id) == account_id)


def _candidate_contacts(account_id: int) -> Any:
    """Everyone with a conversation on the account or a message in one of its threads."""
    return (
        select(Conversation.contact_id)
        .where(col(Conversation.account_id) == account_id)
        .union(
            select(Message.author_contact_id).where(
                col(Message.account_id) == account_id, col(Message.author_contact_id).is_not(None)
            )
        )
    )


def removal_counts(*, session: Session, account_id: int) -> RemovalCounts:
    """What removing the account would delete: its conversations and messages, the contacts
    known only from it (and without a consent record), dead letters, canned replies and
    memberships."""
    mine = _conversations(account_id)
    candidates = _candidate_contacts(account_id)
    return RemovalCounts(
        conversations=count(session, Conversation, col(Conversation.account_id) == account_id),
        messages=count(
            session,
            Message,
            or_(col(Message.conversation_id).in_(mine), col(Message.account_id) == account_id),
        ),
        contacts=count(session, Contact, *unused_contacts(candidates, excluding=mine)),
        dead_letters=count(session, DeadLetter, col(DeadLetter.account_id) == account_id),
        canned_replies=count(session, CannedReply, col(CannedReply.account_id) == account_id),
        memberships=count(session, AccountMember, col(AccountMember.account_id) == account_id),
    )


def remove_account(*, session: Session, account: Account) -> RemovalCounts:
    """Delete the account and everything that is only its, in bulk statements in one
    transaction (the caller audits and commits). Consent records and the contacts they
    belong to stay, as do the anonymized research records."""
    assert account.id is not None
    account_id = account.id
    # A UNION yields rows, not scalars.
    candidates = sorted({int(row[0]) for row in session.exec(_candidate_contacts(account_id))})
    mine = _conversations(account_id)
    # Messages of the account in another account's thread should not exist; if one did, its
    # foreign key would stop the account's deletion.
    in_mine = or_(col(Message.conversation_id).in_(mine), col(Message.account_id) == account_id)
    delete_where(session, Presence, col(Presence.conversation_id).in_(mine))
    delete_where(
        session,
        ResearchOutbox,
        col(ResearchOutbox.message_id).in_(select(Message.id).where(in_mine)),
    )
    delete_where(session, ConversationTag, col(ConversationTag.conversation_id).in_(mine))
    delete_where(session, Note, col(Note.conversation_id).in_(mine))
    messages = delete_where(session, Message, in_mine)
    conversations = delete_where(session, Conversation, col(Conversation.account_id) == account_id)
    contacts = 0
    for start in range(0, len(candidates), CONTACT_CHUNK):
        chunk = candidates[start : start + CONTACT_CHUNK]
        contacts += delete_where(session, Contact, *unused_contacts(chunk, excluding=None))
    counts = RemovalCounts(
        conversations=conversations,
        messages=messages,
        contacts=contacts,
        dead_letters=delete_where(session, DeadLetter, col(DeadLetter.account_id) == account_id),
        canned_replies=delete_where(
            session, CannedReply, col(CannedReply.account_id) == account_id
        ),
        memberships=delete_where(
            session, AccountMember, col(AccountMember.account_id) == account_id
        ),
    )
    delete_where(session, PollRun, col(PollRun.account_id) == account_id)
    delete_where(session, Account, col(Account.id) == account_id)
    session.expunge(account)
    return counts
