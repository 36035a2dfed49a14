"""Draining the research outbox: anonymize inbound messages into the separate statistics store."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from anonymizer.pipeline import SourceMessage, anonymize_message
from anonymizer.store import ResearchRecord
from inbox.models import Account, Contact, Conversation, Message, ResearchOutbox, User

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DrainResult:
    """How many outbox rows became records, were skipped for an objection, or failed."""

    written: int
    skipped: int
    failed: int


def drain_outbox(
    *, session: Session, research_session: Session, pseudonym_key: bytes, limit: int = 200
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
    ).all()
    if not rows:
        return DrainResult(0, 0, 0)
    # Staff names turn up in customers' texts ("thanks to Jana"): redact them as well.
    staff_names = [name for name in session.exec(select(User.name)).all() if name]
    records: list[ResearchRecord] = []
    done: list[ResearchOutbox] = []
    skipped = failed = 0
    for outbox, message, conversation, account, contact in rows:
        if contact.research_objection:
            done.append(outbox)
            skipped += 1
            continue
        source = SourceMessage(
            text=message.text,
            platform=account.platform,
            channel_kind=conversation.kind,
            account_label=account.display_name,
            created_at=message.created_at,
            author_key=f"{contact.platform}:{contact.platform_user_id}",
            author_names=[n for n in (contact.display_name, contact.handle) if n] + staff_names,
            keep_handles=[account.handle] if account.handle else [],
        )
        try:
            records.append(anonymize_message(source, pseudonym_key=pseudonym_key))
        except Exception as exc:  # one bad message must not stop the rest of the batch
            log.exception("anonymizing outbox row %s failed", outbox.id)
            outbox.attempts += 1
            outbox.last_error = f"{type(exc).__name__}: {exc}"
            session.add(outbox)
            failed += 1
            continue
        done.append(outbox)
    # Research first, outbox second: a crash in between repeats a record, it never loses one.
    research_session.add_all(records)
    research_session.commit()
    for outbox in done:
        session.delete(outbox)
    session.commit()
    return DrainResult(written=len(records), skipped=skipped, failed=failed)
