"""The admins' account page: states the worker leaves behind, pause and resume."""

from __future__ import annotations

from datetime import timedelta

from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from inbox.models import Account, AccountStatus, AuditEvent, Role
from inbox.types import utcnow
from tests.conftest import login, login_admin, make_account, make_user, post_form


def test_admins_see_each_accounts_state_and_last_error(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    account.status = AccountStatus.needs_reconnection
    account.last_error = "Error validating access token: <b>expired</b>"
    session.add(account)
    session.commit()
    login_admin(client, session)
    page = client.get("/admin/accounts").get_data(as_text=True)
    assert "Needs reconnection" in page
    assert "Error validating access token: &lt;b&gt;expired&lt;/b&gt;" in page

    account.status = AccountStatus.active
    account.rate_limited_until = utcnow() + timedelta(minutes=5)
    session.add(account)
    session.commit()
    assert "Rate-limited until" in client.get("/admin/accounts").get_data(as_text=True)


def test_pause_and_resume_are_audited(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    login_admin(client, session)
    action = f"/admin/accounts/{account.id}/status"
    response = post_form(client, "/admin/accounts", action, {"status": "paused"})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Account, account.id).status == AccountStatus.paused
    assert "Polling paused for Quendelmarkt." in client.get("/admin/accounts").get_data(
        as_text=True
    )
    post_form(client, "/admin/accounts", action, {"status": "active"})
    session.expire_all()
    assert session.get(Account, account.id).status == AccountStatus.active
    actions = session.exec(
        select(AuditEvent.action).where(AuditEvent.target_id == account.id)
    ).all()
    assert {"account_paused", "account_active"} <= set(actions)
    # Only an admin's reconnection can lift this state, never a button.
    bad = post_form(client, "/admin/accounts", action, {"status": "needs_reconnection"})
    assert bad.status_code == 400


def test_agents_and_marketing_may_not_see_accounts(app: Flask, session: Session) -> None:
    for role in (Role.agent, Role.marketing):
        client = app.test_client()
        login(client, make_user(session, role=role).email)
        assert client.get("/admin/accounts").status_code == 403
