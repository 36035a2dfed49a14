"""The outbox drain: demo traffic reaches the research store with no way back to a person."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import phonenumbers
from cryptography.fernet import MultiFernet
from flask import Flask
from sqlmodel import Session, func, select

from anonymizer.store import ResearchRecord
from connectors.demo_texts import BRAND_HANDLE
from inbox.models import Contact, Message, ResearchOutbox
from inbox.types import utcnow
from inbox.worker import context_from_app, drain, poll_account
from tests.conftest import make_account

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
HANDLE = re.compile(r"(?<![\w.@])@[A-Za-z0-9_]{2,}(?:@[\w.-]+)?")
PHONE_LIKE = re.compile(r"(?:\+|00)\d[\d \t()/-]{6,}\d|\b0\d{2,5}[ /-]?\d{4,}")


def _ingest_demo_traffic(app: Flask, session: Session, fernet: MultiFernet, items: int) -> None:
    start = (utcnow() - timedelta(days=1)).isoformat()
    account = make_account(session, fernet, seed=7, rate=120, start=start, backlog=0)
    ctx = context_from_app(app)
    assert account.id is not None
    while session.exec(select(func.count()).select_from(Message)).one() < items:
        assert poll_account(ctx, account.id).new > 0


def _drain_all(app: Flask) -> None:
    ctx = context_from_app(app)
    while drain(ctx).written:
        pass


def test_demo_texts_reach_the_store_without_emails_phones_or_handles(
    app: Flask, session: Session, research: Session, fernet: MultiFernet
) -> None:
    _ingest_demo_traffic(app, session, fernet, items=200)
    _drain_all(app)

    sources = session.exec(select(Message.text)).all()
    stored = research.exec(select(ResearchRecord.redacted_text)).all()
    assert len(stored) == len(sources) >= 200
    assert session.exec(select(func.count()).select_from(ResearchOutbox)).one() == 0

    emails = {m for text in sources for m in EMAIL.findall(text)}
    handles = {
        m for text in sources for m in HANDLE.findall(text) if m.lower() != f"@{BRAND_HANDLE}"
    }
    phones = {m.strip() for text in sources for m in PHONE_LIKE.findall(text)}
    phones |= {
        match.raw_string
        for text in sources
        for match in phonenumbers.PhoneNumberMatcher(text, "DE")
    }
    # The demo really contains personal data of each kind, or this test would prove nothing.
    assert len(emails) >= 5 and len(handles) >= 3 and len(phones) >= 3

    everything = "\n".join(stored)
    assert [e for e in emails if e in everything] == []
    assert [h for h in handles if re.search(re.escape(h) + r"\b", everything)] == []
    assert [p for p in phones if p in everything] == []
    assert "<EMAIL>" in everything and "<PHONE>" in everything
    # The company's own handle is not personal data and stays for the reports.
    assert f"@{BRAND_HANDLE}" in everything


def test_records_carry_a_stable_pseudonym_per_author_and_nothing_that_points_back(
    app: Flask, session: Session, research: Session, fernet: MultiFernet
) -> None:
    _ingest_demo_traffic(app, session, fernet, items=60)
    _drain_all(app)
    authors = session.exec(select(func.count(func.distinct(Message.author_contact_id)))).one()
    pseudonyms = research.exec(
        select(func.count(func.distinct(ResearchRecord.author_pseudonym)))
    ).one()
    assert pseudonyms == authors
    contacts = session.exec(select(Contact)).all()
    records = research.exec(select(ResearchRecord)).all()
    inbox_ids = {str(m.id) for m in session.exec(select(Message)).all()}
    inbox_ids |= {m.external_id for m in session.exec(select(Message)).all() if m.external_id}
    for record in records:
        assert record.id not in inbox_ids
        assert record.time_bucket.minute == record.time_bucket.second == 0
        assert record.language in {"de", "en", "und"}
        for contact in contacts:
            assert contact.platform_user_id != record.author_pseudonym
            assert contact.platform_user_id not in record.author_pseudonym


def test_an_objecting_contact_never_reaches_the_store(
    app: Flask, session: Session, research: Session, fernet: MultiFernet
) -> None:
    _ingest_demo_traffic(app, session, fernet, items=60)
    objector = session.exec(select(Contact).order_by(Contact.id)).first()
    assert objector is not None
    objector.research_objection = True
    session.add(objector)
    session.commit()
    theirs = session.exec(
        select(func.count()).where(Message.author_contact_id == objector.id)
    ).one()
    total = session.exec(select(func.count()).select_from(Message)).one()
    _drain_all(app)
    assert theirs > 0
    assert research.exec(select(func.count()).select_from(ResearchRecord)).one() == total - theirs
    assert session.exec(select(func.count()).select_from(ResearchOutbox)).one() == 0


def test_one_drain_run_works_off_a_backlog_of_several_batches(
    app: Flask, session: Session, research: Session, fernet: MultiFernet
) -> None:
    _ingest_demo_traffic(app, session, fernet, items=60)
    backlog = session.exec(select(func.count()).select_from(ResearchOutbox)).one()
    ctx = dataclasses.replace(context_from_app(app), drain_batch=7)

    result = drain(ctx)

    # Batch after batch of seven, all in one run: not one batch per interval.
    assert result.written + result.skipped == backlog
    assert session.exec(select(func.count()).select_from(ResearchOutbox)).one() == 0
    assert research.exec(select(func.count()).select_from(ResearchRecord)).one() == result.written
    assert drain(ctx).written == 0
