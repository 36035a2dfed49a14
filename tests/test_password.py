"""The user's own password: required after an invitation, changed on the security page."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from inbox.models import Role
from inbox.users import check_password, find_user
from tests.conftest import PASSWORD, audit_events, fresh, login, make_user, post_form

NEW = "a long new passphrase 42"


def _change(client: FlaskClient, current: str, new: str, repeat: str | None = None) -> object:
    form = {"current": current, "new": new, "repeat": new if repeat is None else repeat}
    return post_form(client, "/security/password", "/security/password", form)


def _invite(client: FlaskClient, session: Session) -> tuple[str, str]:
    admin = make_user(session, role=Role.admin, name="Alex Admin")
    assert login(client, admin.email).status_code == 302
    form = {"name": "Nina Neu", "email": "nina.neu@example.com", "role": "agent"}
    page = post_form(client, "/admin/users/invite", "/admin/users/invite", form)
    found = re.search(r'<code class="password">([^<]+)</code>', page.get_data(as_text=True))
    assert found is not None
    assert "choose a password of their own" in page.get_data(as_text=True)
    return "nina.neu@example.com", found.group(1)


def test_an_invited_user_must_choose_a_password_before_anything_else(
    app: Flask, session: Session
) -> None:
    email, first = _invite(app.test_client(), session)
    client = app.test_client()
    assert login(client, email, first).status_code == 302

    for path in ("/conversations", "/security", "/conversations/rows?view=mine"):
        response = client.get(path)
        assert response.status_code in (302, 401), path
        if response.status_code == 302:
            assert response.headers["Location"].endswith("/security/password")
    page = client.get("/security/password").get_data(as_text=True)
    assert "has seen its first password" in page

    refused = _change(client, "not the password", NEW)
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert "current password is wrong" in refused.get_data(as_text=True)  # type: ignore[attr-defined]
    assert client.get("/conversations").status_code == 302

    done = _change(client, first, NEW)
    assert done.status_code == 302  # type: ignore[attr-defined]
    assert done.headers["Location"].endswith("/conversations")  # type: ignore[attr-defined]
    assert client.get("/conversations").status_code == 200

    user = find_user(session=fresh(session), email=email)
    assert user is not None and not user.password_change_required
    assert check_password(session=fresh(session), email=email, password=first) is None
    assert check_password(session=fresh(session), email=email, password=NEW) is not None
    (event,) = audit_events(session, "password_changed")
    assert event.detail == {"required": True}
    assert first not in str(event.detail) and NEW not in str(event.detail)


def test_a_weak_or_mistyped_new_password_is_refused_with_the_reason(
    client: FlaskClient, session: Session
) -> None:
    user = make_user(session, role=Role.agent, email="jana.schneider@example.com")
    assert login(client, user.email).status_code == 302
    cases = {
        "short one": "at least 12 characters",
        "jana.schneider-2026!": "must not contain your e-mail address",
        PASSWORD: "must differ from the current one",
    }
    for new, reason in cases.items():
        response = _change(client, PASSWORD, new)
        assert response.status_code == 422, new  # type: ignore[attr-defined]
        assert reason in response.get_data(as_text=True)  # type: ignore[attr-defined]
    mistyped = _change(client, PASSWORD, NEW, NEW + "x")
    assert "two new passwords differ" in mistyped.get_data(as_text=True)  # type: ignore[attr-defined]
    assert check_password(session=fresh(session), email=user.email, password=PASSWORD)
    assert audit_events(session, "password_changed") == []


def test_a_change_ends_the_other_sessions_and_keeps_this_one(app: Flask, session: Session) -> None:
    user = make_user(session, role=Role.agent)
    here, elsewhere = app.test_client(), app.test_client()
    assert login(here, user.email).status_code == 302
    assert login(elsewhere, user.email).status_code == 302
    assert "Change password" in here.get("/security").get_data(as_text=True)

    response = _change(here, PASSWORD, NEW)

    assert response.headers["Location"].endswith("/security")  # type: ignore[attr-defined]
    assert here.get("/conversations").status_code == 200
    gone = elsewhere.get("/conversations")
    assert gone.status_code == 302 and "/login" in gone.headers["Location"]
    assert login(elsewhere, user.email, NEW).status_code == 302
