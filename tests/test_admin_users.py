"""The admin's user pages: invite, role, accounts, second factor, deactivation."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlmodel import Session, select

from inbox.models import Account, Role, User
from inbox.users import check_password
from inbox.workflow_models import AccountMember
from tests.conftest import audit_events, fresh, login, make_user, post_form

HOSTILE = "<script>alert(1)</script>"


def _admin(client: FlaskClient, session: Session) -> User:
    admin = make_user(session, role=Role.admin, name="Alex Admin")
    assert login(client, admin.email).status_code == 302
    return admin


def test_the_list_shows_each_user_with_role_factor_and_accounts_escaped(
    client: FlaskClient, session: Session, account: Account
) -> None:
    _admin(client, session)
    agent = make_user(session, role=Role.agent, name=HOSTILE, two_factor=False)
    session.add(AccountMember(account_id=account.id or 0, user_id=agent.id or 0))
    session.commit()
    page = client.get("/admin/users").get_data(as_text=True)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert agent.email in page and account.display_name in page
    assert 'href="/admin/users"' in client.get("/admin/accounts").get_data(as_text=True)


def test_an_invited_user_logs_in_with_the_password_shown_once(
    client: FlaskClient, session: Session, caplog: object
) -> None:
    _admin(client, session)
    form = {"name": "Nina Neu", "email": "Nina@Example.com", "role": "agent"}
    response = post_form(client, "/admin/users/invite", "/admin/users/invite", form)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    password = re.search(r'<code class="password">([^<]+)</code>', page)
    assert password is not None
    user = check_password(
        session=fresh(session), email="nina@example.com", password=password.group(1)
    )
    assert user is not None and user.role == Role.agent and user.name == "Nina Neu"
    # Shown only on that page: neither stored in clear nor audited nor on the list.
    assert password.group(1) not in user.password_hash
    (event,) = audit_events(session, "user_created")
    assert event.target_id == user.id and event.detail["role"] == "agent"
    assert password.group(1) not in str(event.detail)
    assert password.group(1) not in client.get("/admin/users").get_data(as_text=True)
    # The same e-mail again is refused, with the form kept.
    again = post_form(client, "/admin/users/invite", "/admin/users/invite", form)
    assert again.status_code == 422
    assert "exists already" in again.get_data(as_text=True)


def test_an_invite_needs_name_email_and_a_known_role(client: FlaskClient, session: Session) -> None:
    _admin(client, session)
    for form in (
        {"name": "", "email": "a@example.com", "role": "agent"},
        {"name": "A", "email": "nope", "role": "agent"},
        {"name": "A", "email": "a@example.com", "role": "root"},
    ):
        response = post_form(client, "/admin/users/invite", "/admin/users/invite", form)
        assert response.status_code == 422
    assert fresh(session).exec(select(User).where(User.email == "a@example.com")).first() is None


def test_role_changes_are_audited_and_the_last_admin_keeps_the_role(
    client: FlaskClient, session: Session, account: Account
) -> None:
    admin = _admin(client, session)
    agent = make_user(session, role=Role.agent)
    session.add(AccountMember(account_id=account.id or 0, user_id=agent.id or 0))
    session.commit()
    page = f"/admin/users/{agent.id}"
    post_form(client, page, f"/admin/users/{agent.id}/role", {"role": "marketing"})
    changed = fresh(session).get(User, agent.id)
    assert changed is not None and changed.role == Role.marketing
    # Marketing answers no one: the membership went with the old role.
    assert session.get(AccountMember, (account.id, agent.id)) is None
    (event,) = audit_events(session, "role_changed")
    assert event.detail["old"] == "agent" and event.detail["new"] == "marketing"
    # The only active admin cannot demote themselves.
    page = f"/admin/users/{admin.id}"
    response = post_form(client, page, f"/admin/users/{admin.id}/role", {"role": "agent"})
    assert response.status_code == 302
    assert "last active admin" in client.get(page).get_data(as_text=True)
    me = fresh(session).get(User, admin.id)
    assert me is not None and me.role == Role.admin
    assert len(audit_events(session, "role_changed")) == 1
    # With a second admin, they can.
    make_user(session, role=Role.admin)
    post_form(client, page, f"/admin/users/{admin.id}/role", {"role": "agent"})
    me = fresh(session).get(User, admin.id)
    assert me is not None and me.role == Role.agent
    assert client.get("/admin/users").status_code == 403


def test_account_checkboxes_add_and_remove_memberships(
    client: FlaskClient, session: Session, account: Account
) -> None:
    _admin(client, session)
    agent = make_user(session, role=Role.agent)
    page = f"/admin/users/{agent.id}"
    action = f"/admin/users/{agent.id}/accounts"
    post_form(client, page, action, {"account_id": str(account.id)})
    assert fresh(session).get(AccountMember, (account.id, agent.id)) is not None
    assert "checked" in client.get(page).get_data(as_text=True)
    post_form(client, page, action, {})
    assert fresh(session).get(AccountMember, (account.id, agent.id)) is None
    events = audit_events(session, "user_accounts_changed")
    assert [e.detail for e in events] == [
        {"added": [account.id], "removed": []},
        {"added": [], "removed": [account.id]},
    ]


def test_resetting_the_second_factor_logs_the_user_out(
    app: object, client: FlaskClient, session: Session
) -> None:
    dpo = make_user(session, role=Role.dpo)
    other = client.application.test_client()
    assert login(other, dpo.email).status_code == 302
    assert other.get("/audit").status_code == 200
    _admin(client, session)
    post_form(client, f"/admin/users/{dpo.id}", f"/admin/users/{dpo.id}/reset-2fa", {})
    user = fresh(session).get(User, dpo.id)
    assert user is not None and user.totp_secret_encrypted is None and user.recovery_codes == []
    assert other.get("/audit").status_code == 302
    (event,) = audit_events(session, "2fa_reset")
    assert event.target_id == dpo.id


def test_a_deactivated_user_is_logged_out_and_cannot_log_in_until_reactivated(
    client: FlaskClient, session: Session
) -> None:
    agent = make_user(session, role=Role.agent)
    other = client.application.test_client()
    assert login(other, agent.email).status_code == 302
    assert other.get("/conversations").status_code == 200
    admin = _admin(client, session)
    page = f"/admin/users/{agent.id}"
    post_form(client, page, f"/admin/users/{agent.id}/active", {"active": "0"})
    assert other.get("/conversations").status_code == 302
    assert login(other, agent.email).status_code != 302
    assert "Deactivated" in client.get("/admin/users").get_data(as_text=True)
    post_form(client, page, f"/admin/users/{agent.id}/active", {"active": "1"})
    assert login(other, agent.email).status_code == 302
    assert [len(audit_events(session, a)) for a in ("user_deactivated", "user_reactivated")] == [
        1,
        1,
    ]
    # The last active admin cannot be deactivated, not even by themselves.
    page = f"/admin/users/{admin.id}"
    post_form(client, page, f"/admin/users/{admin.id}/active", {"active": "0"})
    me = fresh(session).get(User, admin.id)
    assert me is not None and me.active
