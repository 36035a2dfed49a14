"""Draining the research outbox: anonymize inbound messages into the separate statistics store."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import MultiFernet
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from anonymizer.pipeline import Identifier, LeakDetected, SourceMessage, anonymize_message
from anonymizer.rollups import add_records, forget
from anonymizer.store import ResearchRecord
from anonymizer.topics import DEFAULT, Taxonomy, TaxonomyError
from inbox import audit, metrics
from inbox.models import Account, Contact, Conversation, Message, ResearchOutbox, User
from inbox.pseudonyms import key_for, month_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What became of a batch of outbox rows."""

    written: int
    skipped: int
    failed: int
    rejected: int = 0


def identifiers(contact: Contact) -> list[Identifier]:
    """Everything that identifies a contact, for the leak guard."""
    found = [Identifier("handle", contact.handle)] if contact.handle else []
    if contact.display_name:
        found.append(Identifier("name", contact.display_name))
        found += [
            Identifier("name", part) for part in contact.display_name.split() if len(part) > 2
        ]
    found += [
        Identifier(kind, value)
        for kind, value in (("email", contact.email), ("phone", contact.phone))
        if value
    ]
    return found


def taxonomy_of(account: Account) -> Taxonomy:
    """The account's topic taxonomy, or the default one while it has none that parses."""
    rules = account.settings.get("topics")
    if not isinstance(rules, dict) or not rules:
        return DEFAULT
    try:
        return _parsed(tuple(sorted((str(k), str(v)) for k, v in rules.items())))
    except TaxonomyError:
        # Rules are checked when an admin saves them; one broken by hand must not stop research.
        log.warning("account %s has an invalid topic taxonomy; using the default", account.id)
        return DEFAULT


@lru_cache(maxsize=64)
def _parsed(rules: tuple[tuple[str, str], ...]) -> Taxonomy:
    return Taxonomy.parse(dict(rules))


def drain_outbox(
    *, session: Session, research_session: Session, fernet: MultiFernet, limit: int = 200
) -> DrainResult:
    """Anonymize up to `limit` outbox rows into the research store, then drop them."""
    # SQLAlchemy's select: SQLModel's typed overloads stop at four entities.
    rows = session.execute(
        sa_select(ResearchOutbox, Message, Conversation, Account, Contact)
        .join(Message, col(Message.id) == ResearchOutbox.message_id)
        .join(Conversation, col(Conversation.id) == Message.conversation_id)
        .join(Account, col(Account.id) == Message.account_id)
        .join(Contact, col(Contact.id) == Message.author_contact_id)
        .order_by(col(ResearchOutbox.id))
        .limit(limit)
        # Claimed until this transaction ends: a second worker draining at the same time
        # takes the next rows instead of anonymizing these again (PostgreSQL; SQLite has one
        # writer at a time anyway).
        .with_for_update(of=ResearchOutbox, skip_locked=True)
    ).all()
    if not rows:
        return DrainResult(0, 0, 0)
    # Staff names turn up in customers' texts ("thanks to Jana"): redact them as well.
    staff_names = [name for name in session.exec(select(User.name)).all() if name]
    keys: dict[str, bytes | None] = {}
    records: list[ResearchRecord] = []
    done: list[ResearchOutbox] = []
    skipped = failed = rejected = 0
    for outbox, message, conversation, account, contact in rows:
        if contact.research_objection or (conversation.kind == "dm" and not account.research_dms):
            done.append(outbox)
            skipped += 1
            continue
        month = month_of(message.created_at)
        if month not in keys:
            keys[month] = key_for(session=session, fernet=fernet, moment=message.created_at)
        source = SourceMessage(
            text=message.text,
            platform=account.platform,
            channel_kind=conversation.kind,
            account_label=account.display_name,
            created_at=message.created_at,
            author_key=f"{contact.platform}:{contact.platform_user_id}",
            author_names=[n for n in (contact.display_name, contact.handle) if n],
            keep_handles=[account.handle] if account.handle else [],
            known_names=staff_names,
            identifiers=identifiers(contact),
            taxonomy=taxonomy_of(account),
            id_patterns=[str(p) for p in account.settings.get("id_patterns", [])],
        )
        try:
            records.append(anonymize_message(source, pseudonym_key=keys[month]))
        except LeakDetected as exc:
            # Never stored, only counted: the audit trail says which message and what kind.
            metrics.count_leak(exc.kinds)
            audit.record(
                session=session,
                action="research_leak_rejected",
                user_id=None,
                target_type="message",
                target_id=message.id,
                detail={"kinds": list(exc.kinds)},
            )
            done.append(outbox)
            rejected += 1
        except Exception as exc:  # one bad message must not stop the rest of the batch
            log.exception("anonymizing outbox row %s failed", outbox.id)
            outbox.attempts += 1
            outbox.last_error = f"{type(exc).__name__}: {exc}"
            session.add(outbox)
            failed += 1
        else:
            done.append(outbox)
    # Research first, outbox second: a crash in between repeats a record, it never loses one.
    research_session.add_all(records)
    try:
        # Same transaction: the reports' rollups never disagree with the records they summarize.
        add_records(session=research_session, records=records)
        research_session.commit()
    except BaseException:
        # What the rollups remember of their days did not reach the store.
        forget(session=research_session)
        raise
    for outbox in done:
        session.delete(outbox)
    session.commit()
    return DrainResult(written=len(records), skipped=skipped, failed=failed, rejected=rejected)


def object_to_research(*, session: Session, contact: Contact) -> int:
    """Record a contact's objection to research use and drop their pending outbox rows."""
    contact.research_objection = True
    session.add(contact)
    pending = session.exec(
        select(ResearchOutbox)
        .join(Message, col(Message.id) == ResearchOutbox.message_id)
        .where(Message.author_contact_id == contact.id)
    ).all()
    for row in pending:
        session.delete(row)
    session.commit()
    return len(pending)
