"""A polled batch is stored in a few statements, with the same rows as item by item."""

from __future__ import annotations

from datetime import timedelta

from cryptography.fernet import MultiFernet
from sqlmodel import Session, col, select

from connectors import Author
from inbox.ingest import ingest, ingest_batch
from inbox.models import Contact, Conversation, ConversationStatus, Message, ResearchOutbox
from tests.conftest import make_account, make_item


def test_a_batch_stores_what_the_items_one_by_one_would(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    known = make_item(external_id="dm-0", thread_key="t-known", text="Hallo zusammen, ich bin es")
    ingest(session=session, account=account, item=known)
    closed = session.exec(select(Conversation)).one()
    closed.status, closed.closed_at = ConversationStatus.closed, known.created_at
    session.add(closed)
    objecting = Contact(platform="demo", platform_user_id="7900", research_objection=True)
    session.add(objecting)
    session.commit()
    later = known.created_at + timedelta(minutes=1)
    zed = Author(platform_user_id="7300", handle="zed", display_name="Zed Old")
    amy = Author(platform_user_id="7200", handle="amy", display_name="Amy")
    items = [
        make_item(external_id="dm-1", thread_key="t-zed", author=zed, created_at=later),
        make_item(external_id="dm-2", thread_key="t-amy", author=amy, created_at=later),
        make_item(external_id="dm-0", thread_key="t-known"),  # stored already
        make_item(external_id="dm-1", thread_key="t-zed", author=zed),  # twice in the batch
        make_item(
            external_id="dm-3",
            thread_key="t-known",
            created_at=later + timedelta(minutes=1),
        ),
        make_item(
            external_id="dm-4",
            thread_key="t-zed",
            author=Author(platform_user_id="7300", handle=None, display_name="Zed New"),
            created_at=later + timedelta(minutes=2),
        ),
        make_item(
            external_id="dm-5",
            thread_key="t-objecting",
            author=Author(platform_user_id="7900", handle="no", display_name="No Research"),
        ),
    ]

    result = ingest_batch(session=session, account=account, items=items, failures=[], source="poll")
    session.commit()

    assert (result.new, result.duplicates, result.failed) == (5, 2, 0)
    assert result.kinds == {"dm": 5}
    messages = session.exec(select(Message).order_by(col(Message.id))).all()
    # Stored in the order they came, each once.
    assert [m.external_id for m in messages] == ["dm-0", "dm-1", "dm-2", "dm-3", "dm-4", "dm-5"]
    # New contacts are created in platform-id order (no deadlocks between two workers).
    new_contacts = session.exec(
        select(Contact.platform_user_id)
        .where(col(Contact.platform_user_id).in_(["7200", "7300"]))
        .order_by(col(Contact.id))
    ).all()
    assert new_contacts == ["7200", "7300"]
    renamed = session.exec(select(Contact).where(Contact.platform_user_id == "7300")).one()
    assert (renamed.handle, renamed.display_name) == ("zed", "Zed New")
    threads = {c.thread_key: c for c in session.exec(select(Conversation)).all()}
    assert threads["t-known"].status == ConversationStatus.open
    assert threads["t-known"].closed_at is None
    assert threads["t-known"].last_message_at == later + timedelta(minutes=1)
    assert threads["t-zed"].opened_at == later
    assert threads["t-zed"].last_message_at == later + timedelta(minutes=2)
    assert threads["t-zed"].contact_id == renamed.id
    assert threads["t-zed"].sla_due_at == later + timedelta(minutes=account.sla_minutes)
    assert threads["t-amy"].language == "de"
    by_id = {m.id: str(m.external_id) for m in messages}
    outbox = session.exec(select(ResearchOutbox.message_id)).all()
    # Whoever objected to research gets no outbox row; everyone else one per message.
    assert sorted(by_id[i] for i in outbox) == ["dm-0", "dm-1", "dm-2", "dm-3", "dm-4"]
