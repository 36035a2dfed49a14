"""Retention: what the daily run will delete, previewed first, then applied in bounded batches.

Per account (admins set the three figures on /admin/retention):

- Closed conversations are deleted `retention_days` after they were closed, with their
  messages, notes, tags, presence rows and pending research outbox rows. Open and pending
  conversations are never deleted, however old. Contacts left with no conversation, no message
  and no consent record go with them; consent belongs to the person, so a contact with a consent
  record stays (an erasure request removes it).
- Raw platform payloads are emptied `raw_retention_days` after they arrived; the messages stay.
  `Account.raw_purged_before` records how far that went, so each run reads only new rows.
- Dead letters hold raw payloads too. Resolved ones are deleted after `raw_retention_days`;
  unresolved ones are kept for someone to fix until `retention_days`, then deleted unfixed.
  Letters that belong to no account follow the strictest account.
- A month's research pseudonym key is destroyed `pseudonym_key_days` after the month ends.
  Keys are shared by all accounts, so the strictest (smallest) figure wins; without any
  account the configured PSEUDONYM_KEY_RETENTION_DAYS applies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CompoundSelect, CursorResult, or_, union
from sqlalchemy import update as sa_update
from sqlmodel import Session, col, func, select

from inbox import audit
from inbox.models import (
    Account,
    Contact,
    Conversation,
    DeadLetter,
    Message,
    ResearchOutbox,
)
from inbox.pseudonyms import destroy_expired, expired_months
from inbox.retention_queries import (
    all_accounts,
    count,
    delete_where,
    due_letters,
    expired,
    raw_range,
    unused_contacts,
)
from inbox.workflow_models import ConversationTag, Note, Presence

ACTION = "retention_applied"
BATCH = 500
# Contacts checked per statement; their ids are bound four times, within SQLite's 32766.
ORPHAN_CHUNK = 2000
# Emptying payloads loads no rows and is cheap per row; fewer, larger commits are faster.
RAW_BATCH = 5000


@dataclass(frozen=True, slots=True)
class AccountCounts:
    """What one account's part of a run deletes (a plan) or deleted (a report)."""

    account_id: int
    name: str
    conversations: int = 0
    messages: int = 0
    notes: int = 0
    raw_payloads: int = 0
    dead_letters: int = 0

    @property
    def empty(self) -> bool:
        """Whether this account's part deletes nothing."""
        return not (self.conversations or self.raw_payloads or self.dead_letters)


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """What the next run will delete: counts per account, orphaned contacts, key months."""

    accounts: list[AccountCounts]
    key_days: int
    key_months: list[str] = field(default_factory=list)
    contacts: int = 0
    unassigned_dead_letters: int = 0

    def detail(self) -> dict[str, Any]:
        """The counts as JSON for the audit trail: ids and numbers, no names."""
        return {
            "accounts": [
                {k: v for k, v in asdict(a).items() if k != "name"} for a in self.accounts
            ],
            "contacts": self.contacts,
            "unassigned_dead_letters": self.unassigned_dead_letters,
            "key_days": self.key_days,
            "key_months": self.key_months,
        }


class RetentionReport(RetentionPlan):
    """What a run deleted: the same counts as its plan, after the fact."""

    __slots__ = ()


def key_days(*, session: Session, default: int) -> int:
    """Days after a month's end until its pseudonym key goes: the strictest account decides."""
    smallest = session.exec(select(func.min(Account.pseudonym_key_days))).one()
    return default if smallest is None else int(smallest)


def plan(*, session: Session, now: datetime, default_key_days: int = 30) -> RetentionPlan:
    """Count what `apply` would delete at `now`, with cheap counting queries only."""
    accounts = all_accounts(session)
    rows = []
    for account in accounts:
        assert account.id is not None
        gone = select(Conversation.id).where(expired(account, now))
        raw = raw_range(account, now)
        rows.append(
            AccountCounts(
                account_id=account.id,
                name=account.display_name,
                conversations=count(session, Conversation, expired(account, now)),
                messages=count(session, Message, col(Message.conversation_id).in_(gone)),
                notes=count(session, Note, col(Note.conversation_id).in_(gone)),
                # Messages of conversations that go anyway are deleted, not emptied.
                raw_payloads=0
                if raw is None
                else count(session, Message, raw, col(Message.conversation_id).not_in(gone)),
                dead_letters=count(session, DeadLetter, due_letters(account.id, account, now)),
            )
        )
    contacts = 0
    if accounts:
        doomed = select(Conversation.id).where(or_(*(expired(a, now) for a in accounts)))
        candidates: CompoundSelect[Any] = union(
            select(Conversation.contact_id).where(col(Conversation.id).in_(doomed)),
            select(Message.author_contact_id).where(col(Message.conversation_id).in_(doomed)),
        )
        contacts = count(session, Contact, *unused_contacts(candidates, excluding=doomed))
    days = key_days(session=session, default=default_key_days)
    return RetentionPlan(
        accounts=rows,
        key_days=days,
        key_months=expired_months(session=session, retention_days=days, now=now),
        contacts=contacts,
        unassigned_dead_letters=count(session, DeadLetter, due_letters(None, accounts, now)),
    )


def apply(
    *,
    session: Session,
    now: datetime,
    default_key_days: int = 30,
    via: str = "worker",
    batch: int = BATCH,
    raw_batch: int = RAW_BATCH,
) -> RetentionReport:
    """Delete what the policies say is due at `now`, in committed batches; audit the run."""
    accounts = all_accounts(session)
    rows = []
    candidates: set[int] = set()
    for account in accounts:
        assert account.id is not None
        conversations, messages, notes = _delete_conversations(
            session, account, now, batch, candidates
        )
        rows.append(
            AccountCounts(
                account_id=account.id,
                name=account.display_name,
                conversations=conversations,
                messages=messages,
                notes=notes,
                raw_payloads=_empty_raw(session, account, now, raw_batch),
                dead_letters=delete_where(
                    session, DeadLetter, due_letters(account.id, account, now)
                ),
            )
        )
        session.commit()
    unassigned = delete_where(session, DeadLetter, due_letters(None, accounts, now))
    contacts = 0
    ordered = sorted(candidates)
    # Each chunk reads the messages once (see unused_contacts): large chunks, few reads.
    for start in range(0, len(ordered), ORPHAN_CHUNK):
        chunk = ordered[start : start + ORPHAN_CHUNK]
        contacts += delete_where(session, Contact, *unused_contacts(chunk, excluding=None))
        session.commit()
    days = key_days(session=session, default=default_key_days)
    months = destroy_expired(session=session, retention_days=days, now=now)
    report = RetentionReport(
        accounts=rows,
        key_days=days,
        key_months=months,
        contacts=contacts,
        unassigned_dead_letters=unassigned,
    )
    audit.record(
        session=session, action=ACTION, user_id=None, detail={**report.detail(), "via": via}
    )
    session.commit()
    return report


def _delete_conversations(
    session: Session, account: Account, now: datetime, batch: int, candidates: set[int]
) -> tuple[int, int, int]:
    """Delete the account's expired conversations, `batch` at a time, each batch committed."""
    conversations = messages = notes = 0
    while True:
        # Locked on PostgreSQL: a customer writing again now waits, then finds it gone.
        found = session.exec(
            select(Conversation.id, Conversation.contact_id)
            .where(expired(account, now))
            .order_by(col(Conversation.id))
            .limit(batch)
            .with_for_update()
        ).all()
        if not found:
            return conversations, messages, notes
        candidates.update(contact_id for _, contact_id in found)
        chosen = [conversation_id for conversation_id, _ in found]
        # Harmless for a conversation reopened meanwhile, and on SQLite this first write takes
        # the write lock: from here on nobody can reopen one until the batch commits.
        delete_where(session, Presence, col(Presence.conversation_id).in_(chosen))
        ids = session.exec(
            select(Conversation.id).where(col(Conversation.id).in_(chosen), expired(account, now))
        ).all()
        in_batch = col(Message.conversation_id).in_(ids)
        outbox = col(ResearchOutbox.message_id).in_(select(Message.id).where(in_batch))
        delete_where(session, ResearchOutbox, outbox)
        # Commenters in someone else's thread are contacts of their own: they may be orphaned too.
        candidates.update(
            author
            for author in session.exec(
                select(Message.author_contact_id).where(in_batch).distinct()
            ).all()
            if author is not None
        )
        delete_where(session, ConversationTag, col(ConversationTag.conversation_id).in_(ids))
        notes += delete_where(session, Note, col(Note.conversation_id).in_(ids))
        messages += delete_where(session, Message, in_batch)
        conversations += delete_where(session, Conversation, col(Conversation.id).in_(ids))
        session.commit()


def _empty_raw(session: Session, account: Account, now: datetime, batch: int) -> int:
    """Empty due raw payloads in arrival order, moving the watermark with every batch."""
    if raw_range(account, now) is None:
        return 0
    cutoff = now - timedelta(days=account.raw_retention_days)
    mine = col(Message.account_id) == account.id
    received = col(Message.received_at)
    # Exactly one lower and one upper bound per statement: the index can seek on one of each,
    # and a bound it cannot seek on would make each batch read everything before it again.
    after = received >= account.raw_purged_before if account.raw_purged_before else None
    emptied = 0
    while True:
        lower = [] if after is None else [after]
        # The arrival time `batch` rows on: everything up to it is one batch, ties included.
        last = session.exec(
            select(Message.received_at)
            .where(mine, *lower, received < cutoff)
            .order_by(received)
            .offset(batch - 1)
            .limit(1)
        ).first()
        upper = received < cutoff if last is None else received <= last
        statement = (
            sa_update(Message)
            .where(mine, *lower, upper)
            .values(raw={})
            .execution_options(synchronize_session=False)
        )
        emptied += int(cast(CursorResult[Any], session.execute(statement)).rowcount)
        # Same transaction as the batch: after a crash the next run starts where this one was.
        account.raw_purged_before = cutoff if last is None else last
        session.add(account)
        session.commit()
        if last is None:
            return emptied
        after = received > last
