"""Sessions: cookie flags, the idle timeout and the absolute lifetime, a fresh session at each
login, and logging out everywhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlmodel import Session, SQLModel, select

from inbox import create_app
from inbox.db import databases
from inbox.models import AuditEvent, Role
from tests.conftest import DatabaseUrls, app_config, csrf_token, login, make_user, post_form

ENDED = "Your session has ended. Please log in again."


def path_of(response: object) -> str:
    """The path a redirect points to."""
    return urlsplit(response.headers["Location"]).path  # type: ignore[attr-defined]


def flashes(body: str) -> list[str]:
    """The flash messages shown on a page."""
    return re.findall(r'<p class="flash (?:\w+)" role="status">(.*?)</p>', body, re.S)


def ago(**delta: float) -> float:
    """A moment in the past, as the session stores it."""
    return (datetime.now(UTC) - timedelta(**delta)).timestamp()


def set_times(client: FlaskClient, *, seen: float, started: float | None = None) -> None:
    """Move the session's clock: when it last saw the user and when they logged in."""
    with client.session_transaction() as cookie:
        cookie["auth_seen"] = seen
        if started is not None:
            cookie["auth_started"] = started


@pytest.fixture
def agent_client(client: FlaskClient, session: Session) -> FlaskClient:
    """A browser with a logged-in agent."""
    agent = make_user(session, role=Role.agent, email="jana@example.com")
    assert login(client, agent.email).status_code == 302
    return client


# Cookie flags -------------------------------------------------------------------------------


def _set_cookie(app: Flask, name: str = "session") -> str:
    page = app.test_client().get("/login")  # the login form's CSRF token opens a session
    [cookie] = [c for c in page.headers.getlist("Set-Cookie") if c.startswith(name + "=")]
    return cookie


@pytest.fixture
def production_app(database_urls: DatabaseUrls, tmp_path: Path) -> Iterator[Flask]:
    """An app configured as in production (no TESTING, no DEMO)."""
    app = create_app(app_config(database_urls, tmp_path, TESTING=False))
    SQLModel.metadata.create_all(databases(app).inbox)
    yield app
    databases(app).inbox.dispose()
    databases(app).research.dispose()


def test_production_cookies_are_secure_httponly_and_same_site(production_app: Flask) -> None:
    cookie = _set_cookie(production_app)

    assert "; Secure" in cookie
    assert "; HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_demo_and_tests_send_the_cookie_over_plain_http(
    app: Flask, database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    assert "; Secure" not in _set_cookie(app)
    demo = create_app(app_config(database_urls, tmp_path, TESTING=False, DEMO=True))
    assert demo.config["SESSION_COOKIE_SECURE"] is False
    explicit = create_app(app_config(database_urls, tmp_path, SESSION_COOKIE_SECURE=True))
    assert explicit.config["SESSION_COOKIE_SECURE"] is True


# Idle timeout and lifetime ------------------------------------------------------------------


def test_thirty_idle_minutes_end_the_session(agent_client: FlaskClient) -> None:
    set_times(agent_client, seen=ago(minutes=31))

    response = agent_client.get("/conversations?view=closed")

    assert path_of(response) == "/login"
    assert "next=/conversations?view%3Dclosed" in response.headers["Location"]
    assert ENDED in flashes(agent_client.get("/login").get_data(as_text=True))
    assert path_of(agent_client.get("/conversations")) == "/login"


def test_activity_keeps_the_session_alive(agent_client: FlaskClient) -> None:
    set_times(agent_client, seen=ago(minutes=29))

    assert agent_client.get("/conversations").status_code == 200

    with agent_client.session_transaction() as cookie:
        assert cookie["auth_seen"] > ago(minutes=1)
    assert agent_client.get("/conversations").status_code == 200


def test_busy_pages_do_not_send_a_new_cookie_every_time(agent_client: FlaskClient) -> None:
    set_times(agent_client, seen=ago(minutes=5))
    noted = agent_client.get("/conversations")
    assert "Set-Cookie" in noted.headers  # five minutes on: the activity is noted

    # Within the half minute after, nothing changes in the session: no cookie is sent.
    again = agent_client.get("/conversations")
    assert again.status_code == 200 and "Set-Cookie" not in again.headers


def test_background_refreshes_do_not_count_as_activity(agent_client: FlaskClient) -> None:
    set_times(agent_client, seen=ago(minutes=20))

    assert agent_client.get("/conversations/rows").status_code == 200

    with agent_client.session_transaction() as cookie:
        assert cookie["auth_seen"] < ago(minutes=19)
    set_times(agent_client, seen=ago(minutes=31))
    # An expired background refresh gets no page to paste into the list, just a refusal.
    assert agent_client.get("/conversations/rows").status_code == 401


def test_twelve_hours_end_even_a_busy_session(agent_client: FlaskClient) -> None:
    set_times(agent_client, seen=ago(minutes=1), started=ago(hours=12, minutes=1))

    assert path_of(agent_client.get("/conversations")) == "/login"


def test_the_idle_time_is_configurable(app: Flask, agent_client: FlaskClient) -> None:
    app.config["SESSION_IDLE_MINUTES"] = 5
    set_times(agent_client, seen=ago(minutes=6))

    assert path_of(agent_client.get("/conversations")) == "/login"


def test_after_an_idle_logout_the_user_returns_to_the_page(
    agent_client: FlaskClient, session: Session
) -> None:
    set_times(agent_client, seen=ago(minutes=31))
    target = agent_client.get("/conversations?view=closed").headers["Location"]

    login_page = agent_client.get(target).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page)
    assert token is not None
    response = agent_client.post(
        target,
        data={
            "email": "jana@example.com",
            "password": "correct horse battery",
            "csrf_token": token.group(1),
        },
    )

    assert response.headers["Location"] == "/conversations?view=closed"


def test_the_next_page_must_be_local(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    token = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"',
        client.get("/login").get_data(as_text=True),
    )
    assert token is not None

    response = client.post(
        "/login?next=//evil.example/steal",
        data={"email": agent.email, "password": "correct horse battery", "csrf_token": token[1]},
    )

    assert response.headers["Location"] == "/conversations"


# A fresh session at each login --------------------------------------------------------------


def test_login_starts_a_fresh_session_but_keeps_the_language(
    client: FlaskClient, session: Session
) -> None:
    agent = make_user(session, role=Role.agent)
    post_form(client, "/login", "/language", {"lang": "de", "next": "/login"})
    with client.session_transaction() as cookie:
        cookie["planted"] = "by an attacker"
        token_before = cookie.get("csrf_token")

    login(client, agent.email)

    with client.session_transaction() as cookie:
        assert "planted" not in cookie
        assert cookie.get("csrf_token") != token_before
        assert cookie["lang"] == "de"
    assert "<h1>Posteingang</h1>" in client.get("/conversations").get_data(as_text=True)


def test_logout_keeps_only_the_language(agent_client: FlaskClient) -> None:
    post_form(agent_client, "/conversations", "/language", {"lang": "de", "next": "/"})

    post_form(agent_client, "/conversations", "/logout", {})

    with agent_client.session_transaction() as cookie:
        assert set(cookie.keys()) <= {"lang", "_flashes", "csrf_token"}
        assert cookie["lang"] == "de"


# Logging out everywhere ---------------------------------------------------------------------


def test_logout_everywhere_ends_the_other_sessions(app: Flask, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    here, elsewhere = app.test_client(), app.test_client()
    login(here, agent.email)
    login(elsewhere, agent.email)

    response = post_form(here, "/security", "/security/logout-everywhere", {})

    assert path_of(response) == "/security"
    assert here.get("/conversations").status_code == 200
    assert path_of(elsewhere.get("/conversations")) == "/login"
    session.expire_all()
    [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "logout_everywhere"))
    assert event.user_id == agent.id and event.target_id == agent.id


def test_cli_logout_everywhere_ends_every_session(
    app: Flask, runner: FlaskCliRunner, session: Session
) -> None:
    agent = make_user(session, role=Role.agent, email="jana@example.com")
    browser = app.test_client()
    login(browser, agent.email)

    result = runner.invoke(args=["user", "logout-everywhere", "--email", "jana@example.com"])

    assert result.exit_code == 0, result.output
    assert path_of(browser.get("/conversations")) == "/login"
    assert login(browser, agent.email).status_code == 302
    assert browser.get("/conversations").status_code == 200


def test_a_form_sent_after_the_timeout_leads_to_the_login_page(
    agent_client: FlaskClient,
) -> None:
    token = csrf_token(agent_client, "/security")
    set_times(agent_client, seen=ago(minutes=45))

    response = agent_client.post("/security/hint", data={"next": "/", "csrf_token": token})

    assert path_of(response) == "/login"
    assert ENDED in flashes(agent_client.get("/login").get_data(as_text=True))
