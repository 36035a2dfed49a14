"""Logging in and out, who may see which page, and CSRF protection, as a user meets them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import MultiFernet
from flask.testing import FlaskClient
from sqlmodel import Session, select

from connectors import Author
from inbox.ingest import ingest
from inbox.models import AuditEvent, Direction, Message, Role, User
from tests.conftest import PASSWORD, login, make_account, make_item, make_user, post_form

WRONG_LOGIN = "E-mail or password is wrong, or too many attempts — try again in a few minutes."
CUSTOMER_NAME = "Margarethe Vogelsang"
CUSTOMER_TEXT = "Meine Bestellnummer 4711 ist seit drei Wochen unterwegs"


def path_of(response: object) -> str:
    """The path a redirect points to."""
    location = response.headers["Location"]  # type: ignore[attr-defined]
    return urlsplit(location).path


def flashes(body: str) -> list[str]:
    """The flash messages shown on a page."""
    return re.findall(r'<p class="flash (?:\w+)" role="status">(.*?)</p>', body, re.S)


def fresh_events(session: Session, action: str) -> list[AuditEvent]:
    """Audit events with an action, as the database holds them now."""
    session.commit()
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def customer_conversation(session: Session, fernet: MultiFernet) -> int:
    """A conversation with a customer whose name and words must not leak; returns its id."""
    account = make_account(session, fernet)
    item = make_item(
        author=Author(platform_user_id="9001", handle="mvogel", display_name=CUSTOMER_NAME),
        text=CUSTOMER_TEXT,
        thread_key="dm-9001",
        created_at=datetime.now(UTC) - timedelta(minutes=5),
    )
    message = ingest(session=session, account=account, item=item).message
    return message.conversation_id


# Anonymous visitors --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/conversations", "/reports", "/conversations/rows", "/"])
def test_anonymous_visitor_is_sent_to_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert path_of(response) == "/login"


def test_anonymous_visitor_returns_to_the_page_after_the_login_prompt(client: FlaskClient) -> None:
    response = client.get("/conversations")

    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query.get("next") == ["/conversations"]
    page = client.get("/login").get_data(as_text=True)
    assert "Please log in to continue." in flashes(page)


def test_anonymous_visitor_cannot_open_a_thread(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    conversation_id = customer_conversation(session, fernet)

    response = client.get(f"/conversations/{conversation_id}")

    assert response.status_code == 302
    assert path_of(response) == "/login"
    assert CUSTOMER_NAME not in response.get_data(as_text=True)


# Logging in ----------------------------------------------------------------------------


def test_agent_logs_in_and_lands_in_the_inbox(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent, name="Jana Schneider")

    response = login(client, agent.email)

    assert response.status_code == 302
    assert path_of(response) == "/conversations"
    inbox = client.get("/conversations")
    assert inbox.status_code == 200
    page = inbox.get_data(as_text=True)
    assert "<h1>Inbox</h1>" in page
    assert "Jana Schneider" in page


def test_marketing_logs_in_and_lands_on_reports(client: FlaskClient, session: Session) -> None:
    marketing = make_user(session, role=Role.marketing, name="Mia Marketing")

    response = login(client, marketing.email)

    assert response.status_code == 302
    assert path_of(response) == "/reports"
    reports = client.get("/reports")
    assert reports.status_code == 200
    assert "<h1>Trend report</h1>" in reports.get_data(as_text=True)


def test_start_page_sends_a_logged_in_user_to_their_role_home(
    client: FlaskClient, session: Session
) -> None:
    marketing = make_user(session, role=Role.marketing)
    login(client, marketing.email)

    response = client.get("/")

    assert response.status_code == 302
    assert path_of(response) == "/reports"


def test_login_ignores_case_and_spaces_in_the_email(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent, email="jana.schneider@example.com")

    response = login(client, "  Jana.Schneider@Example.COM ")

    assert response.status_code == 302
    assert path_of(response) == "/conversations"
    assert agent.id is not None


def test_wrong_password_and_unknown_email_look_the_same(
    client: FlaskClient, session: Session
) -> None:
    agent = make_user(session, role=Role.agent)

    wrong_password = login(client, agent.email, password="not the password at all")
    unknown_email = login(client, "nobody-here@example.com", password=PASSWORD)

    assert wrong_password.status_code == unknown_email.status_code == 200
    wrong_flashes = flashes(wrong_password.get_data(as_text=True))
    unknown_flashes = flashes(unknown_email.get_data(as_text=True))
    assert wrong_flashes == unknown_flashes == [WRONG_LOGIN]
    # Neither attempt got in.
    assert path_of(client.get("/conversations")) == "/login"


def test_successful_login_is_audited(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)

    login(client, agent.email)

    events = fresh_events(session, "login")
    assert [event.user_id for event in events] == [agent.id]
    assert fresh_events(session, "login_failed") == []
    stored = session.get(User, agent.id)
    assert stored is not None and stored.last_login_at is not None


def test_failed_logins_are_audited_without_naming_a_user(
    client: FlaskClient, session: Session
) -> None:
    agent = make_user(session, role=Role.agent)

    login(client, agent.email, password="not the password at all")
    login(client, "nobody-here@example.com")

    failed = fresh_events(session, "login_failed")
    assert len(failed) == 2
    assert all(event.user_id is None for event in failed)
    assert fresh_events(session, "login") == []


def test_deactivated_user_cannot_log_in(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    agent.active = False
    session.add(agent)
    session.commit()

    response = login(client, agent.email)

    assert response.status_code == 200
    assert flashes(response.get_data(as_text=True)) == [WRONG_LOGIN]
    assert path_of(client.get("/conversations")) == "/login"
    assert len(fresh_events(session, "login_failed")) == 1


def test_deactivating_a_logged_in_user_ends_their_access(
    client: FlaskClient, session: Session
) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)
    assert client.get("/conversations").status_code == 200

    agent.active = False
    session.add(agent)
    session.commit()

    response = client.get("/conversations")
    assert response.status_code == 302
    assert path_of(response) == "/login"


# Logging out and CSRF ------------------------------------------------------------------


def test_logout_ends_the_session(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)

    response = post_form(client, "/conversations", "/logout", {})

    assert response.status_code == 302
    assert path_of(response) == "/login"
    after = client.get("/conversations")
    assert after.status_code == 302
    assert path_of(after) == "/login"


def test_logout_without_csrf_token_is_rejected_and_keeps_the_session(
    client: FlaskClient, session: Session
) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)

    response = client.post("/logout")

    assert response.status_code == 400
    assert "Request not accepted" in response.get_data(as_text=True)
    assert client.get("/conversations").status_code == 200


def test_logout_with_a_forged_csrf_token_is_rejected(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)

    response = client.post("/logout", data={"csrf_token": "forged-token"})

    assert response.status_code == 400
    assert client.get("/conversations").status_code == 200


def test_login_without_csrf_token_is_rejected(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)

    response = client.post("/login", data={"email": agent.email, "password": PASSWORD})

    assert response.status_code == 400
    assert path_of(client.get("/conversations")) == "/login"
    assert fresh_events(session, "login") == []


def test_reply_without_csrf_token_is_rejected_and_nothing_is_sent(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    conversation_id = customer_conversation(session, fernet)
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)

    response = client.post(
        f"/conversations/{conversation_id}/reply", data={"text": "Wir kümmern uns darum."}
    )

    assert response.status_code == 400
    session.expire_all()
    outbound = session.exec(select(Message).where(Message.direction == Direction.outbound)).all()
    assert outbound == []
    assert fresh_events(session, "reply") == []


# Roles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["", "/{id}", "/rows", "/rows?view=closed", "?view=closed"])
def test_marketing_cannot_see_conversations(
    client: FlaskClient, session: Session, fernet: MultiFernet, page: str
) -> None:
    conversation_id = customer_conversation(session, fernet)
    marketing = make_user(session, role=Role.marketing)
    login(client, marketing.email)

    response = client.get("/conversations" + page.format(id=conversation_id))

    assert response.status_code == 403
    body = response.get_data(as_text=True)
    assert "Not allowed" in body
    assert CUSTOMER_NAME not in body
    assert CUSTOMER_TEXT not in body
    assert "mvogel" not in body
    assert fresh_events(session, "view_conversation") == []


def test_marketing_cannot_reply(client: FlaskClient, session: Session, fernet: MultiFernet) -> None:
    conversation_id = customer_conversation(session, fernet)
    marketing = make_user(session, role=Role.marketing)
    login(client, marketing.email)

    response = post_form(
        client,
        "/reports",
        f"/conversations/{conversation_id}/reply",
        {"text": "Marketing sagt hallo"},
    )

    assert response.status_code == 403
    body = response.get_data(as_text=True)
    assert CUSTOMER_NAME not in body
    assert CUSTOMER_TEXT not in body
    session.expire_all()
    outbound = session.exec(select(Message).where(Message.direction == Direction.outbound)).all()
    assert outbound == []


def test_marketing_cannot_close_a_conversation(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    conversation_id = customer_conversation(session, fernet)
    marketing = make_user(session, role=Role.marketing)
    login(client, marketing.email)

    response = post_form(
        client, "/reports", f"/conversations/{conversation_id}/status", {"status": "closed"}
    )

    assert response.status_code == 403
    assert fresh_events(session, "status_closed") == []


def test_agent_cannot_see_reports(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)

    response = client.get("/reports")

    assert response.status_code == 403
    assert "Your role does not give access to this page." in response.get_data(as_text=True)


def test_navigation_offers_only_what_the_role_may_open(
    client: FlaskClient, session: Session
) -> None:
    marketing = make_user(session, role=Role.marketing)
    login(client, marketing.email)

    page = client.get("/reports").get_data(as_text=True)

    assert 'href="/reports"' in page
    assert 'href="/conversations"' not in page


def test_dpo_starts_on_the_data_subject_requests(client: FlaskClient, session: Session) -> None:
    dpo = make_user(session, role=Role.dpo)

    response = login(client, dpo.email)

    assert response.status_code == 302
    assert path_of(response) == "/privacy/"
    assert client.get("/privacy/").status_code == 200
