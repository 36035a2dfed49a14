"""Ingestion: idempotent, one transaction, threads grouped, nothing lost."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from sqlmodel import Session, func, select

from connectors import Author, FailedPayload
from inbox.db import databases
from inbox.ingest import ingest, ingest_batch, keep_failed
from inbox.models import (
    Contact,
    Conversation,
    ConversationStatus,
    DeadLetter,
    Message,
    ResearchOutbox,
)
from tests.conftest import make_account, make_item


def _count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_the_same_item_twice_is_stored_once(session: Session, fernet: MultiFernet) -> None:
    account = make_account(session, fernet)
    item = make_item(text="Meine Bestellung fehlt")
    first = ingest(session=session, account=account, item=item)
    second = ingest(session=session, account=account, item=item)
    assert first.created and not second.created
    assert second.message.id == first.message.id
    for model in (Message, Contact, Conversation, ResearchOutbox):
        assert _count(session, model) == 1, model.__name__


def test_a_follow_up_joins_the_customers_conversation(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    first = make_item(external_id="dm-1", text="Hallo?")
    ingest(session=session, account=account, item=first)
    later = make_item(
        external_id="dm-2", text="Noch da?", created_at=first.created_at + timedelta(minutes=5)
    )
    ingest(session=session, account=account, item=later)
    conversation = session.exec(select(Conversation)).one()
    assert conversation.last_message_at == later.created_at
    assert conversation.opened_at == first.created_at
    assert _count(session, Message) == 2
    assert _count(session, ResearchOutbox) == 2


def test_a_new_conversation_is_due_within_the_accounts_service_level(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    item = make_item()
    ingest(session=session, account=account, item=item)
    conversation = session.exec(select(Conversation)).one()
    assert conversation.status == ConversationStatus.open
    assert conversation.sla_due_at == item.created_at + timedelta(minutes=account.sla_minutes)
    assert conversation.sla_due_at.tzinfo is not None


def test_a_customer_writing_again_reopens_a_closed_conversation(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    ingest(session=session, account=account, item=make_item(external_id="dm-1"))
    conversation = session.exec(select(Conversation)).one()
    conversation.status = ConversationStatus.closed
    conversation.sla_due_at = None
    session.add(conversation)
    session.commit()
    ingest(session=session, account=account, item=make_item(external_id="dm-2"))
    session.refresh(conversation)
    assert conversation.status == ConversationStatus.open
    assert conversation.closed_at is None
    assert conversation.sla_due_at is not None


def test_a_renamed_customer_is_shown_with_the_new_name(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    ingest(session=session, account=account, item=make_item(external_id="dm-1"))
    renamed = Author(platform_user_id="7001", handle="jo_new", display_name="Jo Neu")
    ingest(session=session, account=account, item=make_item(external_id="dm-2", author=renamed))
    contact = session.exec(select(Contact)).one()
    assert (contact.handle, contact.display_name) == ("jo_new", "Jo Neu")


def test_a_contact_who_objected_to_research_gets_no_outbox_row(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    ingest(session=session, account=account, item=make_item(external_id="dm-1"))
    contact = session.exec(select(Contact)).one()
    contact.research_objection = True
    session.add(contact)
    session.commit()
    ingest(session=session, account=account, item=make_item(external_id="dm-2"))
    assert _count(session, Message) == 2
    assert _count(session, ResearchOutbox) == 1


def test_an_unparseable_payload_is_kept_with_its_error(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    failure = FailedPayload(raw='{"id": "x", "text": null}', error="the text is missing")
    keep_failed(session=session, account=account, failure=failure, source="poll")
    letter = session.exec(select(DeadLetter)).one()
    assert letter.raw == failure.raw
    assert letter.error == "the text is missing"
    assert letter.account_id == account.id


@pytest.mark.postgres_only
def test_concurrent_ingest_of_the_same_item_stores_it_once(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    item = make_item(text="race")
    workers = 8
    barrier = threading.Barrier(workers)
    created: list[bool] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with Session(databases(app).inbox, expire_on_commit=False) as own:
                barrier.wait()
                created.append(ingest(session=own, account=account, item=item).created)
        except BaseException as exc:  # report in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert created.count(True) == 1 and len(created) == workers
    for model in (Message, Contact, Conversation, ResearchOutbox):
        assert _count(session, model) == 1, model.__name__


def test_nul_characters_are_dropped_so_every_database_can_store_the_item(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    author = Author(platform_user_id="7002", handle="nu\x00ll", display_name="Nu\x00ll")
    item = make_item(text="Hallo\x00 Welt", author=author, raw={"text": "Hallo\x00 Welt"})
    ingest(session=session, account=account, item=item)
    message = session.exec(select(Message)).one()
    assert message.text == "Hallo Welt" and message.raw == {"text": "Hallo Welt"}
    assert session.exec(select(Contact)).one().handle == "null"


def test_a_batch_keeps_going_past_an_item_the_database_refuses(
    session: Session, fernet: MultiFernet, backend: str
) -> None:
    account = make_account(session, fernet)
    long_name = Author(platform_user_id="7003", handle="h" * 300, display_name="N" * 300)
    items = [
        make_item(external_id="x" * 300, thread_key="dm-a"),  # longer than the column
        make_item(external_id="ok-1", thread_key="dm-b", author=long_name),
    ]
    result = ingest_batch(session=session, account=account, items=items, failures=[], source="poll")
    session.commit()
    contact = session.exec(select(Contact).where(Contact.platform_user_id == "7003")).one()
    assert len(contact.display_name or "") == len(contact.handle or "") == 200
    if backend == "postgresql":
        assert (result.new, result.failed) == (1, 1)
        letter = session.exec(select(DeadLetter)).one()
        assert "refused" in letter.error and "x" * 300 in letter.raw
    else:  # SQLite does not enforce VARCHAR lengths: nothing to refuse
        assert (result.new, result.failed) == (2, 0)
