"""The admins' account page: states the worker leaves behind, pause and resume."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from inbox.ingest import ingest
from inbox.models import Account, AccountStatus, AuditEvent, Message, Role
from inbox.types import utcnow
from tests.conftest import login, login_admin, make_account, make_item, make_user, post_form


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


def test_accounts_show_items_received_today_in_the_teams_time_zone(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    other = Account(
        platform="demo",
        display_name="Quendel Style",
        platform_account_id="demo-style",
        credentials_encrypted=b"",
    )
    session.add(other)
    session.commit()
    zone = ZoneInfo("Europe/Berlin")
    midnight = datetime.combine(utcnow().astimezone(zone).date(), time(), tzinfo=zone)
    arrivals = {
        "today-1": (account, midnight + timedelta(seconds=1)),
        "today-2": (account, utcnow()),
        "yesterday": (account, midnight - timedelta(seconds=1)),
        "other": (other, utcnow()),
    }
    for external_id, (owner, received_at) in arrivals.items():
        ingest(session=session, account=owner, item=make_item(external_id=external_id))
        message = session.exec(select(Message).where(Message.external_id == external_id)).one()
        message.received_at = received_at
        session.add(message)
    session.commit()
    login_admin(client, session)

    page = client.get("/admin/accounts").get_data(as_text=True)

    assert "Items today" in page
    counts = re.findall(r'<td class="today">(\d+)</td>', page)
    assert counts == ["2", "1"]
