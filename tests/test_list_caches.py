"""What the list view remembers between requests, and how soon it notices changes: the
"two factors for everyone" setting and the filter form's choices."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

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
from tests.conftest import login, make_account, make_member, make_user, post_form


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


def open_conversation(session: Session, account: Account, name: str | None) -> Conversation:
    """An open conversation of a customer called `name` on the account."""
    contact = Contact(platform=account.platform, platform_user_id=uuid.uuid4().hex)
    contact.display_name = name
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
    session.commit()
    return conversation


def tag_conversation(session: Session, account: Account, tag: str) -> None:
    """A conversation on the account carrying the tag."""
    conversation = open_conversation(session, account, None)
    assert conversation.id is not None
    session.add(ConversationTag(conversation_id=conversation.id, tag=tag))
    session.commit()


def instagram_account(session: Session) -> Account:
    """A second official account, which the `agent` is no member of."""
    other = Account(
        platform="instagram",
        display_name="Quendel Insta",
        platform_account_id="ig-4711",
        credentials_encrypted=b"",
    )
    session.add(other)
    session.commit()
    return other


def seconds_until(shown: Callable[[], bool], *, limit: float = 5) -> float:
    """How long until `shown()` holds, asking every tenth of a second; `limit` at the most."""
    started = time.monotonic()
    while not shown() and time.monotonic() - started < limit:
        time.sleep(0.1)
    return time.monotonic() - started


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
    assert 0.3 <= seconds_until(lambda: offers_tag(agent_client, "neu")) < 5


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
    other = instagram_account(session)
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


# The rows: shared for a moment, never across accounts, never hiding the user's own change ----


def listed(client: FlaskClient, view: str = "open") -> str:
    return client.get(f"/conversations?view={view}").get_data(as_text=True)


def test_a_change_by_someone_else_shows_after_the_rows_lifetime(
    app: Flask, agent_client: FlaskClient, session: Session, account: Account
) -> None:
    app.config["CONVERSATION_ROWS_TTL"] = 0.5
    assert "Ludwig Lehmann" not in listed(agent_client)
    open_conversation(session, account, "Ludwig Lehmann")
    assert 0.3 <= seconds_until(lambda: "Ludwig Lehmann" in listed(agent_client)) < 5


def test_the_users_own_change_shows_at_once_however_long_rows_are_shared(
    app: Flask, agent_client: FlaskClient, session: Session, account: Account
) -> None:
    app.config["CONVERSATION_ROWS_TTL"] = 600
    conversation = open_conversation(session, account, "Greta Groß")
    assert "Greta Groß" in listed(agent_client)

    page = f"/conversations/{conversation.id}"
    closed = post_form(agent_client, page, f"{page}/status", {"status": "closed"})
    assert closed.status_code == 302
    assert "Greta Groß" not in listed(agent_client)
    assert "Greta Groß" in listed(agent_client, "closed")


def test_rows_shared_between_agents_never_cross_accounts_or_anothers_mine(
    app: Flask, client: FlaskClient, session: Session, agent: User, account: Account
) -> None:
    app.config["CONVERSATION_ROWS_TTL"] = 600
    other = instagram_account(session)
    both = make_user(session, role=Role.agent, name="Olaf Anders")
    make_member(session, both, account)
    make_member(session, both, other)
    # Same accounts as `agent`: the shared rows are the same, but not the "mine" view.
    colleague = make_user(session, role=Role.agent, name="Paula Peters")
    make_member(session, colleague, account)
    theirs = open_conversation(session, other, "Nur Quendel")
    assigned = open_conversation(session, account, "Für Paula")
    assigned.assignee_id = colleague.id
    session.add(assigned)
    session.commit()
    assert theirs.id is not None

    assert login(client, both.email).status_code == 302
    assert "Nur Quendel" in listed(client)
    assert login(client, colleague.email).status_code == 302
    assert "Für Paula" in listed(client, "mine")

    assert login(client, agent.email).status_code == 302
    assert "Nur Quendel" not in listed(client)
    assert "Für Paula" not in listed(client, "mine")
    assert "Für Paula" in listed(client, "open")
    assert client.get(f"/conversations/{theirs.id}").status_code == 404


def test_remembered_rows_stay_escaped_and_follow_the_language(
    app: Flask, agent_client: FlaskClient, session: Session, account: Account
) -> None:
    app.config["CONVERSATION_ROWS_TTL"] = 600
    open_conversation(session, account, "<img src=x onerror=alert(1)>")
    for _ in range(2):  # rendered, then remembered
        body = listed(agent_client)
        assert "&lt;img src=x onerror=alert(1)&gt;" in body and "<img src=x" not in body
        assert "nobody" in body

    german = agent_client.get(
        "/conversations?view=open", headers={"Accept-Language": "de"}
    ).get_data(as_text=True)
    assert "niemand" in german and "nobody" not in german


def test_a_remembered_row_turns_overdue_when_its_time_comes(
    app: Flask, agent_client: FlaskClient, session: Session, account: Account
) -> None:
    app.config["CONVERSATION_ROWS_TTL"] = 600
    conversation = open_conversation(session, account, "Fast Fällig")
    conversation.sla_due_at = utcnow() + timedelta(seconds=1)
    session.add(conversation)
    session.commit()
    row = re.compile(r'<tr class="conversation-row([^"]*)"')

    assert row.findall(listed(agent_client)) == [" due-soon"]
    time.sleep(1.2)
    assert row.findall(listed(agent_client)) == [" overdue"]


def test_agents_on_the_same_accounts_share_counts_but_not_mine(
    client: FlaskClient, session: Session, agent: User, account: Account
) -> None:
    colleague = make_user(session, role=Role.agent, name="Paula Peters")
    make_member(session, colleague, account)
    for name in ("Eins", "Zwei"):
        conversation = open_conversation(session, account, name)
    conversation.assignee_id = colleague.id
    session.add(conversation)
    session.commit()
    count = re.compile(r'view=(\w+)"[^>]*>[^<]*<span class="count">(\d+)</span>')

    assert login(client, colleague.email).status_code == 302
    theirs = dict(count.findall(listed(client)))
    assert login(client, agent.email).status_code == 302
    open_conversation(session, account, "Drei")  # counted by neither: the counts are shared
    mine = dict(count.findall(listed(client)))

    assert (theirs["open"], theirs["unassigned"], theirs["mine"]) == ("2", "1", "1")
    assert (mine["open"], mine["unassigned"], mine["mine"]) == ("2", "1", "0")
