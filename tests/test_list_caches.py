"""What the list view remembers between requests, and how soon it notices changes: the
"two factors for everyone" setting and the filter form's choices."""

from __future__ import annotations

import time
import uuid

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlmodel import Session

from inbox import settings, twofactor
from inbox.models import Account, Contact, Conversation, Role, User
from inbox.types import utcnow
from inbox.workflow_models import ConversationTag
from tests.conftest import login, make_account, make_member, make_user


@pytest.fixture
def agent(session: Session) -> User:
    return make_user(session, role=Role.agent, name="Jana Schneider")


@pytest.fixture
def account(session: Session, fernet: MultiFernet, agent: User) -> Account:
    account = make_account(session, fernet)
    make_member(session, agent, account)
    return account


@pytest.fixture
def agent_client(client: FlaskClient, agent: User, account: Account) -> FlaskClient:
    assert login(client, agent.email).status_code == 302
    return client


def tag_conversation(session: Session, account: Account, tag: str) -> None:
    """A conversation on the account carrying the tag."""
    contact = Contact(platform=account.platform, platform_user_id=uuid.uuid4().hex)
    session.add(contact)
    session.flush()
    assert contact.id is not None and account.id is not None
    now = utcnow()
    conversation = Conversation(
        account_id=account.id,
        contact_id=contact.id,
        kind="dm",
        thread_key=uuid.uuid4().hex,
        opened_at=now,
        last_message_at=now,
    )
    session.add(conversation)
    session.flush()
    assert conversation.id is not None
    session.add(ConversationTag(conversation_id=conversation.id, tag=tag))
    session.commit()


def offers_tag(client: FlaskClient, tag: str) -> bool:
    body = client.get("/conversations").get_data(as_text=True)
    return f'<option value="{tag}">{tag}</option>' in body


def test_requiring_two_factors_for_everyone_applies_to_the_next_request(
    agent_client: FlaskClient, session: Session
) -> None:
    assert agent_client.get("/conversations").status_code == 200

    twofactor.set_require_for_all(session=session, value=True)
    session.commit()
    required = agent_client.get("/conversations")
    assert required.status_code == 302
    assert required.headers["Location"].endswith("/security/enrol")

    twofactor.set_require_for_all(session=session, value=False)
    session.commit()
    assert agent_client.get("/conversations").status_code == 200


def test_a_setting_changed_by_another_process_applies_within_the_lifetime(
    agent_client: FlaskClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "SETTING_TTL_SECONDS", 0.5)
    twofactor.set_require_for_all(session=session, value=False)
    session.commit()
    assert agent_client.get("/conversations").status_code == 200
    # Written past this process's ORM, as another web worker's would be.
    session.connection().execute(
        text("UPDATE setting SET value = 'true' WHERE key = :key"),
        {"key": twofactor.REQUIRE_ALL_SETTING},
    )
    session.commit()

    time.sleep(0.6)
    assert agent_client.get("/conversations").status_code == 302


def test_the_filter_form_offers_a_new_tag_after_its_lifetime(
    app: Flask, agent_client: FlaskClient, session: Session, account: Account
) -> None:
    app.config["CONVERSATION_FILTERS_TTL"] = 0.5
    tag_conversation(session, account, "alt")
    assert offers_tag(agent_client, "alt")
    tag_conversation(session, account, "neu")
    started = time.monotonic()
    while not offers_tag(agent_client, "neu"):
        assert time.monotonic() - started < 5
        time.sleep(0.1)
    assert time.monotonic() - started >= 0.3


def test_without_a_lifetime_the_filter_form_is_read_fresh(
    app: Flask, agent_client: FlaskClient, session: Session, account: Account
) -> None:
    app.config["CONVERSATION_FILTERS_TTL"] = 0
    tag_conversation(session, account, "alt")
    assert offers_tag(agent_client, "alt")
    tag_conversation(session, account, "neu")
    assert offers_tag(agent_client, "neu")


def test_agents_of_different_accounts_never_see_each_others_remembered_accounts(
    client: FlaskClient, session: Session, fernet: MultiFernet, agent: User, account: Account
) -> None:
    other = Account(
        platform="instagram",
        display_name="Quendel Insta",
        platform_account_id="ig-4711",
        credentials_encrypted=b"",
    )
    session.add(other)
    session.commit()
    stranger = make_user(session, role=Role.agent, name="Olaf Anders")
    make_member(session, stranger, other)

    assert login(client, agent.email).status_code == 302
    mine = client.get("/conversations").get_data(as_text=True)
    assert login(client, stranger.email).status_code == 302
    theirs = client.get("/conversations").get_data(as_text=True)

    assert f'<option value="{account.id}">' in mine
    assert "Quendel Insta" not in mine
    assert "Quendel Insta (instagram)" in theirs
    assert f'<option value="{account.id}">' not in theirs
