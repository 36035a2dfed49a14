"""Idempotent ingestion: one platform item becomes one stored message, however often it arrives."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.exc import DataError, IntegrityError
from sqlmodel import Session, col, select

from anonymizer.enrich import language as detect_language
from connectors import FailedPayload, InboundItem
from inbox import metrics
from inbox.models import (
    Account,
    Contact,
    Conversation,
    ConversationStatus,
    DeadLetter,
    Direction,
    Message,
    ResearchOutbox,
)
from inbox.tombstones import buried_items
from inbox.types import utcnow

_T = TypeVar("_T")
NAME_LENGTH = 200

# A concurrent writer can win the race for the same contact, conversation or message; after a
# rollback the next attempt finds its row. Three attempts cover all three unique keys.
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Ingested:
    """The stored message and whether this call created it."""

    message: Message
    created: bool


@dataclass(frozen=True, slots=True)
class BatchResult:
    """How many items of a batch were new, already stored, or kept as dead letters."""

    new: int
    duplicates: int
    failed: int
    # New items per kind (mention, comment, dm), for the metrics.
    kinds: Mapping[str, int] = field(default_factory=dict)


def ingest(*, session: Session, account: Account, item: InboundItem) -> Ingested:
    """Store an item with its contact, conversation and research-outbox row in one transaction."""
    for attempt in range(_ATTEMPTS):
        try:
            staged = stage(session=session, account=account, item=item)
            session.commit()
            kinds: dict[str, int] = {item.kind: 1} if staged.created else {}
            metrics.count_ingested(
                account_id=account.id,
                platform=account.platform,
                source="single",
                kinds=kinds,
                failed=0,
            )
            return staged
        except IntegrityError:
            session.rollback()
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def ingest_batch(
    *,
    session: Session,
    account: Account,
    items: Sequence[InboundItem],
    failures: Sequence[FailedPayload],
    source: str,
) -> BatchResult:
    """Stage a whole batch and its dead letters without committing.

    The caller commits once, together with the cursor that covers the batch, so a crash
    leaves either all of it or none of it; `commit_batch` does both and retries on conflict.
    """
    # pysqlite opens its transaction lazily, so a SAVEPOINT taken before the first write would
    # commit on its own; SQLite has one writer at a time anyway, and a conflict (a webhook
    # storing the same item in between) makes commit_batch redo the whole batch instead.
    savepoints = session.get_bind().dialect.name != "sqlite"
    # Erased items never come back (counted as already seen). An erased person who writes to us
    # again is a new contact: they contacted us anew, so only their new messages are stored.
    erased = buried_items(
        session=session, platform=account.platform, external_ids=[i.external_id for i in items]
    )
    fresh = [item for item in items if item.external_id not in erased]
    stored = _stored(session, account, fresh)
    contacts = _contacts_in_order(session, account, fresh, stored, savepoints=savepoints)
    outcomes: list[bool | FailedPayload] | None = None
    # The whole batch in a few statements; should the database refuse any of it (another
    # writer came first, a value it cannot store), item by item instead.
    needed = {(i.platform, i.author.platform_user_id) for i in fresh if i.external_id not in stored}
    if needed <= contacts.keys():
        savepoint = session.begin_nested() if savepoints else None
        try:
            outcomes = _stage_all(session, account, fresh, stored, contacts)
            if savepoint is not None:
                savepoint.commit()
        except (IntegrityError, DataError):
            if savepoint is None:
                raise
            savepoint.rollback()
            outcomes = None
    if outcomes is None:
        outcomes = [_stage_one(session, account, item) for item in fresh]
    new, duplicates = 0, len(items) - len(fresh)
    kinds: Counter[str] = Counter()
    refused: list[FailedPayload] = []
    for item, outcome in zip(fresh, outcomes, strict=True):
        if isinstance(outcome, FailedPayload):
            refused.append(outcome)
            continue
        new += outcome
        duplicates += not outcome
        kinds[item.kind] += outcome
    for failure in [*failures, *refused]:
        session.add(_dead_letter(account, failure, source))
    failed = len(failures) + len(refused)
    return BatchResult(new=new, duplicates=duplicates, failed=failed, kinds=dict(kinds))


def _stage_one(session: Session, account: Account, item: InboundItem) -> bool | FailedPayload:
    """Stage one item in a savepoint of its own: created or not, or the database's refusal."""
    savepoint = session.begin_nested()
    try:
        created = stage(session=session, account=account, item=item).created
        savepoint.commit()
    except IntegrityError:
        # Another writer stored a row first: roll back this item alone and find its row.
        savepoint.rollback()
        created = stage(session=session, account=account, item=item).created
    except DataError as exc:
        # A value the database refuses would fail this batch on every retry: keep the
        # item as a dead letter instead and let the rest through.
        savepoint.rollback()
        return refusal(item, exc)
    return created


def _stage_all(
    session: Session,
    account: Account,
    items: Sequence[InboundItem],
    stored: set[str],
    contacts: dict[tuple[str, str], Contact],
) -> list[bool | FailedPayload]:
    """Stage items as `stage` does one by one, with one statement per table and batch."""
    assert account.id is not None
    conversations = {
        conversation.thread_key: conversation
        for conversation in session.exec(
            select(Conversation).where(
                Conversation.account_id == account.id,
                col(Conversation.thread_key).in_({item.thread_key for item in items}),
            )
        )
    }
    seen = set(stored)
    created: list[bool] = []
    staged: list[tuple[InboundItem, Contact, Conversation]] = []
    for item in items:
        if item.external_id in seen:
            created.append(False)
            continue
        seen.add(item.external_id)
        created.append(True)
        contact = contacts[(item.platform, item.author.platform_user_id)]
        _rename(contact, item)
        conversation = conversations.get(item.thread_key)
        if conversation is None:
            assert contact.id is not None
            conversation = conversations[item.thread_key] = _new_conversation(
                account, contact.id, item
            )
        else:
            _wake(conversation, item, _due(account, item))
        session.add(conversation)
        staged.append((item, contact, conversation))
    session.flush()
    if not staged:
        return list(created)
    # Plain rows, not objects: nothing reads these messages in this session again.
    rows = [
        _message_row(account, contact, conversation, item) for item, contact, conversation in staged
    ]
    ids = session.scalars(
        insert(Message).returning(col(Message.id), sort_by_parameter_order=True), rows
    ).all()
    outbox = [
        {"message_id": message_id, "created_at": utcnow(), "attempts": 0}
        for message_id, (_, contact, _) in zip(ids, staged, strict=True)
        if not contact.research_objection
    ]
    if outbox:
        session.execute(insert(ResearchOutbox), outbox)
    return list(created)


def commit_batch(
    *,
    session: Session,
    account: Account,
    items: Sequence[InboundItem],
    failures: Sequence[FailedPayload],
    source: str,
    with_batch: Callable[[BatchResult], None] | None = None,
) -> BatchResult:
    """Stage a batch, let `with_batch` add what must commit with it (a cursor), and commit."""
    for attempt in range(_ATTEMPTS):
        try:
            result = ingest_batch(
                session=session, account=account, items=items, failures=failures, source=source
            )
            if with_batch is not None:
                with_batch(result)
            session.commit()
            metrics.count_ingested(
                account_id=account.id,
                platform=account.platform,
                source=source,
                kinds=result.kinds,
                failed=result.failed,
            )
            return result
        except IntegrityError:
            session.rollback()
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def refusal(item: InboundItem, exc: DataError) -> FailedPayload:
    """The dead letter for an item the database refused to store."""
    reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
    raw = json.dumps({"external_id": item.external_id, "raw": dict(item.raw)}, default=str)
    return FailedPayload(raw=raw, error=f"The database refused the item: {reason}")


def stage(*, session: Session, account: Account, item: InboundItem) -> Ingested:
    """Add an item and what it needs to the session (flushed, not committed)."""
    assert account.id is not None
    existing = session.exec(
        select(Message).where(
            Message.account_id == account.id, Message.external_id == item.external_id
        )
    ).first()
    if existing is not None:
        return Ingested(message=existing, created=False)

    contact = _contact(session, item)
    conversation = _conversation(session, account, contact, item)
    message = _message(account, contact, conversation, item)
    session.add(message)
    session.flush()
    assert message.id is not None
    if not contact.research_objection:
        session.add(ResearchOutbox(message_id=message.id))
    session.flush()
    return Ingested(message=message, created=True)


def _message(
    account: Account, contact: Contact, conversation: Conversation, item: InboundItem
) -> Message:
    return Message(**_message_row(account, contact, conversation, item))


def _message_row(
    account: Account, contact: Contact, conversation: Conversation, item: InboundItem
) -> dict[str, Any]:
    """The column values of an inbound item's message, the defaults included."""
    assert conversation.id is not None and account.id is not None
    return {
        "conversation_id": conversation.id,
        "account_id": account.id,
        "external_id": item.external_id,
        "direction": Direction.inbound,
        "text": without_nul(item.text),
        "author_contact_id": contact.id,
        "in_reply_to": item.in_reply_to,
        "created_at": item.created_at,
        "received_at": utcnow(),
        "context": without_nul(dict(item.context)),
        "raw": without_nul(dict(item.raw)),
        "attempts": 0,
    }


def _stored(session: Session, account: Account, items: Sequence[InboundItem]) -> set[str]:
    """The external ids of these items that the account has stored already."""
    if not items:
        return set()
    found = session.exec(
        select(Message.external_id).where(
            Message.account_id == account.id,
            col(Message.external_id).in_([item.external_id for item in items]),
        )
    )
    return {external_id for external_id in found if external_id is not None}


def _contacts_of(
    session: Session, authors: Collection[tuple[str, str]]
) -> dict[tuple[str, str], Contact]:
    if not authors:
        return {}
    found = session.exec(
        select(Contact).where(
            col(Contact.platform).in_({platform for platform, _ in authors}),
            col(Contact.platform_user_id).in_({user for _, user in authors}),
        )
    )
    return {(c.platform, c.platform_user_id): c for c in found}


def _contacts_in_order(
    session: Session,
    account: Account,
    items: Sequence[InboundItem],
    stored: set[str],
    *,
    savepoints: bool,
) -> dict[tuple[str, str], Contact]:
    """Store the new items' new contacts first, ordered by platform id; all their contacts.

    Two workers storing two accounts' batches that share new customers would otherwise insert
    those contacts in different orders, each waiting on a row the other holds: a deadlock.
    In one order, the second waits for the first to commit and then finds the rows.
    """
    authors = {
        (item.platform, item.author.platform_user_id): item
        for item in items
        if item.external_id not in stored
    }
    contacts = _contacts_of(session, authors)
    missing = sorted(authors.keys() - contacts.keys())
    if not missing:
        return contacts
    # All in one INSERT, its rows in that order; one by one if the database refuses any.
    savepoint = session.begin_nested() if savepoints else None
    try:
        fresh = [_new_contact(authors[key]) for key in missing]
        session.add_all(fresh)
        session.flush()
        if savepoint is not None:
            savepoint.commit()
        return contacts | {(c.platform, c.platform_user_id): c for c in fresh}
    except (IntegrityError, DataError):
        if savepoint is None:
            raise
        savepoint.rollback()
    for key in missing:
        savepoint = session.begin_nested()
        try:
            _contact(session, authors[key])
            savepoint.commit()
        except (IntegrityError, DataError):
            # Stored by another writer meanwhile (stage() finds it), or a value the database
            # refuses (stage() keeps that item as a dead letter).
            savepoint.rollback()
    return _contacts_of(session, authors)


def _new_contact(item: InboundItem) -> Contact:
    contact = Contact(
        platform=item.platform,
        platform_user_id=item.author.platform_user_id,
        first_seen_at=item.created_at,
    )
    _rename(contact, item)
    return contact


def _rename(contact: Contact, item: InboundItem) -> None:
    # People rename themselves; keep what the platform shows now.
    contact.handle = _fit(item.author.handle) or contact.handle
    contact.display_name = _fit(item.author.display_name) or contact.display_name


def _contact(session: Session, item: InboundItem) -> Contact:
    author = item.author
    contact = session.exec(
        select(Contact).where(
            Contact.platform == item.platform, Contact.platform_user_id == author.platform_user_id
        )
    ).first()
    if contact is None:
        contact = _new_contact(item)
    _rename(contact, item)
    session.add(contact)
    session.flush()
    return contact


def _due(account: Account, item: InboundItem) -> datetime:
    return item.created_at + timedelta(minutes=account.sla_minutes)


def _new_conversation(account: Account, contact_id: int, item: InboundItem) -> Conversation:
    assert account.id is not None
    return Conversation(
        account_id=account.id,
        contact_id=contact_id,
        kind=item.kind,
        thread_key=item.thread_key,
        opened_at=item.created_at,
        last_message_at=item.created_at,
        sla_due_at=_due(account, item),
        language=_language(item.text),
    )


def _wake(conversation: Conversation, item: InboundItem, due: datetime) -> None:
    # A customer writing again reopens a closed or pending conversation and wakes a
    # snoozed one: whoever snoozed it was waiting for exactly this.
    conversation.status = ConversationStatus.open
    conversation.closed_at = None
    conversation.snoozed_until = None
    # The customer waits again: the next answer is due, unless one already is earlier.
    if conversation.sla_due_at is None:
        conversation.sla_due_at = due
    conversation.last_message_at = max(conversation.last_message_at, item.created_at)


def _conversation(
    session: Session, account: Account, contact: Contact, item: InboundItem
) -> Conversation:
    assert account.id is not None and contact.id is not None
    conversation = session.exec(
        select(Conversation).where(
            Conversation.account_id == account.id, Conversation.thread_key == item.thread_key
        )
    ).first()
    if conversation is None:
        conversation = _new_conversation(account, contact.id, item)
    else:
        _wake(conversation, item, _due(account, item))
    session.add(conversation)
    session.flush()
    return conversation


def _language(text: str) -> str | None:
    # Offline detection (no text leaves the machine); "und" means too little text to tell.
    code = detect_language(without_nul(text))
    return None if code == "und" else code


def _fit(name: str | None) -> str | None:
    # Names are free text on every platform; the column is not.
    return without_nul(name)[:NAME_LENGTH] if name else name


def without_nul(value: _T) -> _T:
    """Drop NUL characters, which PostgreSQL cannot store in text or JSON, from strings within."""
    if isinstance(value, str):
        return value.replace("\x00", "")  # type: ignore[return-value]
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [without_nul(v) for v in value]  # type: ignore[return-value]
    return value


def keep_failed(
    *, session: Session, account: Account, failure: FailedPayload, source: str
) -> DeadLetter:
    """Keep a payload that could not be parsed, with its error, for an admin to look at."""
    letter = _dead_letter(account, failure, source)
    session.add(letter)
    session.commit()
    return letter


def _dead_letter(account: Account, failure: FailedPayload, source: str) -> DeadLetter:
    return DeadLetter(
        account_id=account.id,
        platform=account.platform,
        source=source,
        error=failure.error,
        raw=failure.raw,
    )
