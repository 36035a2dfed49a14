"""The research store's privacy guarantees, through the real drain on both databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import inspect, text
from sqlmodel import Session, func, select

from anonymizer.store import ResearchRecord
from connectors import Author
from inbox.db import databases
from inbox.ingest import ingest
from inbox.models import AuditEvent, Contact, Conversation, Message, PseudonymKey, ResearchOutbox
from inbox.pseudonyms import destroy_expired
from inbox.research import object_to_research
from inbox.types import utcnow
from inbox.worker import context_from_app, drain, poll_account
from tests.conftest import make_account, make_item

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE_LIKE = re.compile(r"(?:\+|00)\d[\d \t()/-]{6,}\d|\b0\d{2,5}[ /-]?\d{4,}")


def _drain_all(app: Flask) -> None:
    ctx = context_from_app(app)
    while drain(ctx).written:
        pass


def _records(research: Session) -> list[ResearchRecord]:
    research.expire_all()
    return list(research.exec(select(ResearchRecord)).all())


def test_no_identifier_of_the_demo_traffic_is_anywhere_in_the_research_store(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    start = (utcnow() - timedelta(days=1)).isoformat()
    account = make_account(session, fernet, seed=11, rate=120, start=start, backlog=0)
    ctx = context_from_app(app)
    while session.exec(select(func.count()).select_from(Message)).one() < 300:
        assert poll_account(ctx, account.id or 0).new > 0
    _drain_all(app)

    identifiers: set[str] = set()
    for contact in session.exec(select(Contact)).all():
        identifiers |= {v for v in (contact.display_name, contact.handle) if v}
        identifiers.add(contact.platform_user_id)
    for message in session.exec(select(Message)).all():
        identifiers.add(message.external_id or "")
        identifiers |= set(EMAIL.findall(message.text))
        identifiers |= {p.strip() for p in PHONE_LIKE.findall(message.text)}
    for conversation in session.exec(select(Conversation)).all():
        identifiers.add(conversation.thread_key)
    for key in session.exec(select(PseudonymKey)).all():
        assert key.key_encrypted is not None
        identifiers.add(fernet.decrypt(key.key_encrypted).hex())
    identifiers = {i for i in identifiers if len(i) >= 4}
    assert len(identifiers) > 100

    # Every column of every table of the research store, as text.
    engine = databases(app).research
    cells: list[str] = []
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608
                cells += [str(value) for value in row]
    assert len(cells) > 300
    everything = "\n".join(cells).lower()
    leaked = sorted(i for i in identifiers if i.lower() in everything)
    assert leaked == []


def test_a_known_identifier_left_in_the_text_rejects_the_record_and_counts_it(
    app: Flask, session: Session, research: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    author = Author(platform_user_id="9001", handle="amadeus_z", display_name="Amadeus Zylinski")
    first = make_item(external_id="dm-1", author=author, text="Hallo, bitte um Rückruf.")
    ingest(session=session, account=account, item=first)
    contact = session.exec(select(Contact)).one()
    contact.phone = "+49 171 5550123"  # told to an agent earlier
    session.add(contact)
    session.commit()
    # The customer mentions part of that number in a form no phone detector can recognise.
    leaky = make_item(external_id="dm-2", author=author, text="Die alte Durchwahl war 5550123.")
    ingest(session=session, account=account, item=leaky)

    result = drain(context_from_app(app))
    assert (result.written, result.rejected) == (1, 1)
    assert [r.redacted_text for r in _records(research)] == ["Hallo, bitte um Rückruf."]
    event = session.exec(
        select(AuditEvent).where(AuditEvent.action == "research_leak_rejected")
    ).one()
    assert event.detail == {"kinds": ["phone"]}
    assert "5550123" not in str(event.detail)
    assert session.exec(select(func.count()).select_from(ResearchOutbox)).one() == 0


def test_an_account_can_keep_direct_messages_out_of_research(
    app: Flask, session: Session, research: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    account.research_dms = False
    session.add(account)
    session.commit()
    ingest(session=session, account=account, item=make_item(kind="dm", thread_key="dm-1"))
    comment = make_item(external_id="c-1", kind="comment", thread_key="comment:1")
    ingest(session=session, account=account, item=comment)
    result = drain(context_from_app(app))
    assert (result.written, result.skipped) == (1, 1)
    assert [r.channel_kind for r in _records(research)] == ["comment"]


def test_an_objection_drops_the_contacts_pending_rows(
    app: Flask, session: Session, research: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    for n in range(3):
        ingest(session=session, account=account, item=make_item(external_id=f"dm-{n}"))
    contact = session.exec(select(Contact)).one()
    assert object_to_research(session=session, contact=contact) == 3
    assert session.exec(select(func.count()).select_from(ResearchOutbox)).one() == 0
    ingest(session=session, account=account, item=make_item(external_id="dm-later"))
    drain(context_from_app(app))
    assert _records(research) == []


def test_pseudonyms_count_authors_per_month_until_the_months_key_is_destroyed(
    app: Flask, session: Session, research: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    october = datetime(2026, 10, 5, 9, tzinfo=UTC)
    november = datetime(2026, 11, 5, 9, tzinfo=UTC)
    for n, when in enumerate((october, october + timedelta(days=3), november)):
        ingest(
            session=session, account=account, item=make_item(external_id=f"m-{n}", created_at=when)
        )
    drain(context_from_app(app))
    by_month = {r.time_bucket.month: r.author_pseudonym for r in _records(research)}
    same_october = {r.author_pseudonym for r in _records(research) if r.time_bucket.month == 10}
    assert len(same_october) == 1  # one author, one pseudonym within the month
    assert by_month[10] != by_month[11]  # months cannot be joined on the pseudonym

    # October ends on 1 November; 30 days later its key is destroyed, November's stays.
    assert (
        destroy_expired(session=session, retention_days=30, now=datetime(2026, 11, 30, tzinfo=UTC))
        == []
    )
    assert destroy_expired(
        session=session, retention_days=30, now=datetime(2026, 12, 1, tzinfo=UTC)
    ) == ["2026-10"]
    october_key = session.get(PseudonymKey, "2026-10")
    assert october_key is not None and october_key.key_encrypted is None
    assert october_key.destroyed_at is not None

    # A late October message can no longer be linked to the earlier ones.
    late = make_item(external_id="m-late", created_at=october + timedelta(days=10))
    ingest(session=session, account=account, item=late)
    drain(context_from_app(app))
    october_pseudonyms = {
        r.author_pseudonym for r in _records(research) if r.time_bucket.month == 10
    }
    assert len(october_pseudonyms) == 2


def test_records_carry_sentiment_hashtags_and_the_accounts_own_topics(
    app: Flask, session: Session, research: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    account.settings = {
        **account.settings,
        "topics": {"lieferung": "Paket OR Lieferung", "lob": "danke*"},
    }
    session.add(account)
    session.commit()
    text = "Danke, das Paket kam pünktlich und gut verpackt! Super Service 😊 #top"
    ingest(session=session, account=account, item=make_item(text=text))
    drain(context_from_app(app))
    (record,) = _records(research)
    assert sorted(record.topics) == ["lieferung", "lob"]
    assert record.hashtags == ["top"]
    assert record.sentiment_label == "positive" and record.sentiment_score > 0


def test_a_broken_taxonomy_falls_back_to_the_default_topics(
    app: Flask, session: Session, research: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    account.settings = {**account.settings, "topics": {"kaputt": "(Paket AND"}}
    session.add(account)
    session.commit()
    ingest(
        session=session,
        account=account,
        item=make_item(text="Wo bleibt mein Paket? Lieferung seit Tagen überfällig"),
    )
    drain(context_from_app(app))
    (record,) = _records(research)
    assert "delivery" in record.topics


def test_an_accounts_own_id_format_is_redacted_in_research(
    app: Flask, runner: FlaskCliRunner, session: Session, research: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    result = runner.invoke(
        args=["account", "research", str(account.id), "--id-pattern", r"QP-\d{6}"]
    )
    assert result.exit_code == 0, result.output
    bad = runner.invoke(args=["account", "research", str(account.id), "--id-pattern", "QP-(\\d"])
    assert bad.exit_code != 0 and "not saved" in bad.output
    text = "Bitte QP-483920 prüfen, doppelt abgebucht"  # no cue word: only the pattern knows
    ingest(session=session, account=account, item=make_item(text=text))
    drain(context_from_app(app))
    (record,) = _records(research)
    assert "483920" not in record.redacted_text
    assert "<ID_NUMBER>" in record.redacted_text
