"""Upgrading from the first release: both databases at their 0001 schema, filled as that
release wrote them, then `migrate.upgrade` to head. The data must come through intact and
usable: agents list and read the conversation, search finds the message, credentials still
decrypt, the audit trail verifies, the worker anonymizes the waiting outbox row, and reports
read the old research records.

The first release is commit 9bb7214: inbox 0001_inbox and research 0001_research.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet, MultiFernet
from flask import Flask
from sqlalchemy import Engine, MetaData, func
from sqlmodel import Session, col, select

from anonymizer.store import ResearchRecord, RollupDay
from connectors import Author
from inbox import create_app, migrate
from inbox.crypto import decrypt_credentials
from inbox.db import databases, make_engine
from inbox.dsr import erase_contact
from inbox.ingest import ingest
from inbox.models import Account, AccountStatus, Message, User
from inbox.worker import context_from_app, drain
from tests.conftest import (
    PASSWORD,
    DatabaseUrls,
    app_config,
    login,
    make_item,
    make_member,
)

# Hostile text as customers write it: markup, quotes, SQL, emoji, a right-to-left override.
HOSTILE = (
    "Hallo <script>alert('x')</script> wo bleibt mein Paket? \"; DROP TABLE message;-- "
    "Grüße 🙈 \u202egnirts\u202c & <b>danke</b>"
)
CONTACT_NAME = 'Jo Doe <img src=x onerror="alert(1)">'
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def _insert(engine: Engine, rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[int]]:
    """Insert rows into the tables as the database holds them now (reflected, not our models)."""
    tables = MetaData()
    tables.reflect(bind=engine)
    ids: dict[str, list[int]] = {}
    with engine.begin() as connection:
        for name, values in rows.items():
            for value in values:
                result = connection.execute(tables.tables[name].insert().values(**value))
                key = result.inserted_primary_key
                ids.setdefault(name, []).append(key[0] if key else 0)
    return ids


@pytest.fixture
def engines(database_urls: DatabaseUrls) -> Iterator[tuple[Engine, Engine]]:
    """The inbox and research engines of this test's databases."""
    inbox_engine, research_engine = (
        make_engine(database_urls.inbox),
        make_engine(database_urls.research),
    )
    yield inbox_engine, research_engine
    inbox_engine.dispose()
    research_engine.dispose()


def _fill_first_release(inbox_engine: Engine, key: str) -> dict[str, list[int]]:
    """The rows of an inbox in use with the first release: users, account, two conversations."""
    fernet = MultiFernet([Fernet(key)])
    hasher = PasswordHasher()
    ids = _insert(
        inbox_engine,
        {
            "user": [
                {
                    "email": "agent@example.com",
                    "name": "Jana Schneider",
                    "role": "agent",
                    "password_hash": hasher.hash(PASSWORD),
                    "active": True,
                    "created_at": T0 - timedelta(days=30),
                    "last_login_at": T0,
                }
            ],
            "account": [
                {
                    "platform": "demo",
                    "display_name": "Quendelmarkt",
                    "platform_account_id": "demo-quendelmarkt",
                    "handle": "quendelmarkt",
                    "credentials_encrypted": fernet.encrypt(
                        json.dumps({"token": "demo-token"}, sort_keys=True).encode()
                    ),
                    "settings": {"seed": 7, "rate": 6.0},
                    "status": "active",
                    "poll_interval_seconds": 60,
                    "retention_days": 90,
                    "sla_minutes": 30,
                    "cursor": {"position": 41},
                    "last_polled_at": T0,
                    "last_error": None,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "created_at": T0 - timedelta(days=30),
                }
            ],
            "contact": [
                {
                    "platform": "demo",
                    "platform_user_id": "7001",
                    "handle": "jodoe",
                    "display_name": CONTACT_NAME,
                    "first_seen_at": T0,
                    "research_objection": False,
                }
            ],
        },
    )
    account_id, contact_id, agent_id = ids["account"][0], ids["contact"][0], ids["user"][0]
    conversation = _insert(
        inbox_engine,
        {
            "conversation": [
                {
                    "account_id": account_id,
                    "contact_id": contact_id,
                    "kind": "dm",
                    "thread_key": "dm-7001",
                    "status": "open",
                    "assignee_id": agent_id,
                    "tags": [],
                    "opened_at": T0,
                    "last_message_at": T0 + timedelta(minutes=5),
                    "sla_due_at": T0 + timedelta(minutes=30),
                    "first_response_at": T0 + timedelta(minutes=5),
                    "closed_at": None,
                }
            ]
        },
    )
    conversation_id = conversation["conversation"][0]
    message: dict[str, Any] = {
        "conversation_id": conversation_id,
        "account_id": account_id,
        "in_reply_to": None,
        "context": {},
        "attempts": 0,
        "delivery_error": None,
    }
    more = _insert(
        inbox_engine,
        {
            "message": [
                {
                    **message,
                    "external_id": "dm-0001",
                    "direction": "in",
                    "text": HOSTILE,
                    "author_contact_id": contact_id,
                    "author_user_id": None,
                    "created_at": T0,
                    "received_at": T0 + timedelta(seconds=3),
                    "raw": {"id": "dm-0001", "text": HOSTILE},
                    "delivery": None,
                },
                {
                    **message,
                    "external_id": "dm-0002",
                    "direction": "out",
                    "text": "Hallo Jo, das Paket ist unterwegs. ^JS",
                    "author_contact_id": None,
                    "author_user_id": agent_id,
                    "created_at": T0 + timedelta(minutes=5),
                    "received_at": T0 + timedelta(minutes=5),
                    "raw": {},
                    "delivery": "sent",
                    "attempts": 1,
                },
            ],
            "auditevent": [
                {
                    "at": T0 - timedelta(minutes=1),
                    "user_id": agent_id,
                    "action": "login",
                    "target_type": None,
                    "target_id": None,
                    "ip": "192.0.2.7",
                    "detail": {},
                },
                {
                    "at": T0 + timedelta(minutes=4),
                    "user_id": agent_id,
                    "action": "conversation_viewed",
                    "target_type": "conversation",
                    "target_id": conversation_id,
                    "ip": "192.0.2.7",
                    "detail": {},
                },
            ],
            "deadletter": [
                {
                    "account_id": account_id,
                    "platform": "demo",
                    "source": "poll",
                    "error": "missing field 'text'",
                    "raw": '{"id": "broken-1"}',
                    "received_at": T0,
                    "resolved_at": None,
                }
            ],
        },
    )
    _insert(
        inbox_engine,
        {
            "researchoutbox": [
                {
                    "message_id": more["message"][0],
                    "created_at": T0,
                    "attempts": 0,
                    "last_error": None,
                }
            ]
        },
    )
    return {**ids, **conversation, **more}


def _fill_research(research_engine: Engine) -> None:
    """Anonymized records of the first release (no sentiment or hashtags yet)."""
    day = datetime(2026, 11, 2, 9)  # naive: the first release stored the hour bucket so
    records = [
        {
            "id": f"r{n:031d}",
            "account_label": "Quendelmarkt",
            "platform": "demo",
            "channel_kind": "dm" if n % 2 else "mention",
            "time_bucket": day + timedelta(hours=n % 3),
            "language": "de",
            "redacted_text": f"Paket {n} kam nicht an, <PERSON> ist sauer",
            "topics": ["delivery"],
            "author_pseudonym": f"{n:064x}",
        }
        for n in range(6)
    ]
    _insert(research_engine, {"research_record": records})


@pytest.fixture
def upgraded(
    database_urls: DatabaseUrls, tmp_path: Path, engines: tuple[Engine, Engine]
) -> Iterator[tuple[Flask, dict[str, list[int]]]]:
    """Databases filled by the first release and upgraded to head, with an app on them."""
    inbox_engine, research_engine = engines
    migrate.upgrade(inbox_engine, "inbox", "0001_inbox")
    migrate.upgrade(research_engine, "research", "0001_research")
    key = Fernet.generate_key().decode()
    ids = _fill_first_release(inbox_engine, key)
    _fill_research(research_engine)

    migrate.upgrade(inbox_engine, "inbox")
    migrate.upgrade(research_engine, "research")

    app = create_app(app_config(database_urls, tmp_path, ENCRYPTION_KEYS=key))
    yield app, ids
    databases(app).inbox.dispose()
    databases(app).research.dispose()


def test_rows_and_credentials_come_through_unchanged(
    upgraded: tuple[Flask, dict[str, list[int]]],
) -> None:
    app, ids = upgraded
    assert migrate.pending(databases(app).inbox, "inbox") == []
    assert migrate.pending(databases(app).research, "research") == []
    with Session(databases(app).inbox) as session:
        message = session.get(Message, ids["message"][0])
        assert message is not None and message.text == HOSTILE
        account = session.get(Account, ids["account"][0])
        assert account is not None
        assert account.status == AccountStatus.active
        keys = MultiFernet([Fernet(app.config["ENCRYPTION_KEYS"])])
        assert decrypt_credentials(keys, account.credentials_encrypted) == {"token": "demo-token"}
        # Columns added since then got their defaults, not NULLs the code would trip over.
        assert account.consecutive_failures == 0
        assert account.research_dms is True
        assert account.raw_retention_days == 7
        user = session.get(User, ids["user"][0])
        assert user is not None and user.active and user.session_version == 0


def test_an_agent_lists_reads_and_finds_the_old_conversation_escaped(
    upgraded: tuple[Flask, dict[str, list[int]]],
) -> None:
    app, ids = upgraded
    conversation_id = ids["conversation"][0]
    with Session(databases(app).inbox, expire_on_commit=False) as session:
        agent = session.get(User, ids["user"][0])
        account = session.get(Account, ids["account"][0])
        assert agent is not None and account is not None
        # Memberships came later (0005): the admin adds the agent to the account once.
        make_member(session, agent, account)
    client = app.test_client()
    assert login(client, "agent@example.com").status_code == 302

    listing = client.get("/conversations?view=all").get_data(as_text=True)
    assert f"/conversations/{conversation_id}" in listing
    assert "Jo Doe &lt;img" in listing and "<img src=x" not in listing

    thread = client.get(f"/conversations/{conversation_id}")
    page = thread.get_data(as_text=True)
    assert thread.status_code == 200
    assert "&lt;script&gt;alert(" in page and "<script>alert(" not in page
    assert "das Paket ist unterwegs" in page

    found = client.get("/conversations/search?q=Paket").get_data(as_text=True)
    assert f"/conversations/{conversation_id}" in found


def test_the_old_audit_trail_verifies_and_new_events_are_sealed(
    upgraded: tuple[Flask, dict[str, list[int]]],
) -> None:
    app, ids = upgraded
    with Session(databases(app).inbox, expire_on_commit=False) as session:
        agent = session.get(User, ids["user"][0])
        account = session.get(Account, ids["account"][0])
        assert agent is not None and account is not None
        make_member(session, agent, account)
    client = app.test_client()
    assert login(client, "agent@example.com").status_code == 302
    assert client.get(f"/conversations/{ids['conversation'][0]}").status_code == 200

    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output


def test_the_worker_anonymizes_the_waiting_outbox_row_and_reports_read_old_records(
    upgraded: tuple[Flask, dict[str, list[int]]],
) -> None:
    app, _ = upgraded
    research = databases(app).research
    with Session(research) as session:
        old = session.exec(select(ResearchRecord)).all()
        assert len(old) == 6
        assert {record.sentiment_label for record in old} == {"neutral"}
        assert all(record.hashtags == [] for record in old)
        # The rollups the reports read were built from the old records by the migration.
        counted = session.exec(select(func.sum(col(RollupDay.count)))).one()
        assert counted == 6

    result = drain(context_from_app(app))

    assert result.written == 1
    with Session(research) as session:
        texts = session.exec(select(ResearchRecord.redacted_text)).all()
        assert len(texts) == 7
        new = [text for text in texts if "Paket" in text and "kam nicht an" not in text]
        assert len(new) == 1 and "Jo Doe" not in new[0]


def test_after_the_upgrade_an_erased_persons_ids_are_never_handed_out_again(
    upgraded: tuple[Flask, dict[str, list[int]]],
) -> None:
    app, ids = upgraded
    with Session(databases(app).inbox, expire_on_commit=False) as session:
        account = session.get(Account, ids["account"][0])
        assert account is not None
        newest = session.exec(
            select(Message)
            .where(col(Message.author_contact_id).is_not(None))
            .order_by(col(Message.id).desc())
            .limit(1)
        ).one()
        erased = (newest.author_contact_id, newest.conversation_id, newest.id)
        assert erased[0] is not None and erased[2] is not None
        session.expunge_all()
        erase_contact(session=session, contact_id=erased[0], by_user_id=None, ip=None)

        later = make_item(
            author=Author(platform_user_id="after-upgrade", handle="neu", display_name="Neu"),
            external_id="after-upgrade-1",
            thread_key="after-upgrade",
        )
        message = ingest(session=session, account=account, item=later).message
        session.commit()
        assert message.id is not None and message.author_contact_id is not None
        assert message.author_contact_id > erased[0]
        assert message.conversation_id > erased[1]
        assert message.id > erased[2]
    # The rebuilt tables kept their full-text search.
    client = app.test_client()
    with Session(databases(app).inbox, expire_on_commit=False) as session:
        agent = session.get(User, ids["user"][0])
        assert agent is not None
        make_member(session, agent, account)
    assert login(client, "agent@example.com").status_code == 302
    found = client.get("/conversations/search?q=neu").get_data(as_text=True)
    assert f"/conversations/{message.conversation_id}" in found
