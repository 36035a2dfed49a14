"""Security headers on every response, nothing personal left in the browser's cache, and CSRF
protection on every state-changing route except the signed webhooks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from connectors import Author
from inbox.canned import save_canned
from inbox.ingest import ingest
from inbox.models import Role
from inbox.security import CONTENT_SECURITY_POLICY
from tests.conftest import login, make_account, make_item, make_user

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def admin_client(client: FlaskClient, session: Session) -> FlaskClient:
    """A browser with a logged-in admin (second factor and all)."""
    admin = make_user(session, role=Role.admin, name="Ada Admin")
    assert login(client, admin.email).status_code == 302
    return client


@pytest.fixture
def conversation_id(session: Session, fernet: MultiFernet) -> int:
    """A conversation with a customer."""
    account = make_account(session, fernet)
    item = make_item(
        author=Author(platform_user_id="9001", handle="mvogel", display_name="Margarethe Vogel"),
        created_at=datetime.now(UTC) - timedelta(minutes=5),
    )
    return ingest(session=session, account=account, item=item).message.conversation_id


def test_every_page_carries_the_security_headers(client: FlaskClient) -> None:
    headers = client.get("/login").headers

    assert headers["Content-Security-Policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    assert "Strict-Transport-Security" not in headers


def test_hsts_only_over_tls(client: FlaskClient) -> None:
    response = client.get("/login", base_url="https://inbox.example")

    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_a_conversation_page_is_not_cached(admin_client: FlaskClient, conversation_id: int) -> None:
    response = admin_client.get(f"/conversations/{conversation_id}")

    assert response.status_code == 200
    assert "Margarethe Vogel" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_pages_follow_the_policy_no_inline_script_or_style(
    admin_client: FlaskClient, conversation_id: int
) -> None:
    for path in (
        "/conversations",
        f"/conversations/{conversation_id}",
        "/admin/accounts",
        "/admin/security",
        "/security",
        "/security/enrol",
        "/reports",
    ):
        page = admin_client.get(path).get_data(as_text=True)
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page) is None, path
        assert "<style" not in page and " style=" not in page, path
        assert re.search(r"\son[a-z]+=", page) is None, path


def test_a_json_answer_is_not_cached(
    admin_client: FlaskClient, session: Session, conversation_id: int
) -> None:
    canned = save_canned(
        session=session,
        reply=None,
        account_id=None,
        language="",
        title="Hi",
        text="Hallo {first_name}",
    )
    session.commit()

    response = admin_client.get(f"/conversations/{conversation_id}/canned.json?canned={canned.id}")

    assert response.status_code == 200
    assert response.json == {"text": "Hallo Margarethe"}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/no-such-page", "/reports"])
def test_error_pages_are_not_cached(client: FlaskClient, session: Session, path: str) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)

    response = client.get(path)

    assert response.status_code in (403, 404)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_static_files_stay_cacheable(client: FlaskClient) -> None:
    response = client.get("/static/app.css")
    response.close()

    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# CSRF ---------------------------------------------------------------------------------------


def _state_changing_urls(app: Flask) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted(STATE_CHANGING & (rule.methods or set())):
            url = rule.build(dict.fromkeys(rule.arguments, 1), append_unknown=False)
            assert url is not None
            found.append((rule.endpoint, method, url[1]))
    return found


def test_every_state_changing_route_wants_a_csrf_token(
    app: Flask, admin_client: FlaskClient, conversation_id: int
) -> None:
    routes = _state_changing_urls(app)
    checked = [route for route in routes if not route[0].startswith("webhooks.")]
    assert len(checked) >= 20  # the walk found the app's forms, not nothing

    refused = {
        endpoint: admin_client.open(url, method=method).status_code
        for endpoint, method, url in checked
    }

    assert {endpoint: code for endpoint, code in refused.items() if code != 400} == {}
    # None of those requests logged the admin out or changed anything visible.
    assert admin_client.get(f"/conversations/{conversation_id}").status_code == 200


def test_only_the_signed_webhooks_are_exempt(app: Flask, client: FlaskClient) -> None:
    webhooks = [route for route in _state_changing_urls(app) if route[0].startswith("webhooks.")]
    assert {endpoint for endpoint, _method, _url in webhooks} == {
        "webhooks.meta_delivery",
        "webhooks.x_delivery",
    }
    app.config["META_APP_SECRET"] = "meta-secret"
    app.config["X_CONSUMER_SECRET"] = "x-secret"

    for _endpoint, method, url in webhooks:
        # No CSRF token, no signature: refused by the signature check (403), not by CSRF (400).
        assert client.open(url, method=method, json={}).status_code == 403


def test_the_presence_heartbeat_sends_its_token_in_a_header(
    admin_client: FlaskClient, conversation_id: int
) -> None:
    page = admin_client.get(f"/conversations/{conversation_id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', page)
    assert token is not None
    url = f"/conversations/{conversation_id}/presence"

    assert admin_client.post(url, data={"typing": "0"}).status_code == 400
    answer = admin_client.post(
        url,
        data={"typing": "0"},
        headers={"X-CSRFToken": token.group(1), "Accept": "application/json"},
    )
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
