"""The admin's account pages: per-account settings, connecting, reconnecting and removing
accounts, and the report privacy defaults."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlmodel import Session

from inbox.models import Account, Role
from inbox.settings import report_privacy
from tests.conftest import audit_events, fresh, login, make_user, post_form


def _admin(client: FlaskClient, session: Session) -> None:
    admin = make_user(session, role=Role.admin, name="Alex Admin")
    assert login(client, admin.email).status_code == 302


def _settings(account: Account, **overrides: str) -> dict[str, str]:
    form = {
        "poll_interval_seconds": "120",
        "sla_minutes": "45",
        "research_dms": "1",
        "id_patterns": "",
        "action": "save",
    }
    form.update(overrides)
    return form


# Per-account settings -----------------------------------------------------------------------


def test_settings_are_saved_and_audited_with_old_and_new_values(
    client: FlaskClient, session: Session, account: Account
) -> None:
    _admin(client, session)
    page = f"/admin/accounts/{account.id}/settings"
    assert page in client.get("/admin/accounts").get_data(as_text=True)
    form = _settings(account, id_patterns="QP-\\d{6}\r\nKD\\d{5}")
    del form["research_dms"]
    response = post_form(client, page, page, form)
    assert response.status_code == 302
    saved = fresh(session).get(Account, account.id)
    assert saved is not None
    assert (saved.poll_interval_seconds, saved.sla_minutes, saved.research_dms) == (120, 45, False)
    assert saved.settings["id_patterns"] == ["QP-\\d{6}", "KD\\d{5}"]
    # The connector's own settings survive.
    assert saved.settings["account_ref"] == account.settings["account_ref"]
    (event,) = audit_events(session, "account_settings_changed")
    assert event.detail["changes"]["sla_minutes"] == {"old": 30, "new": 45}
    assert event.detail["changes"]["research_dms"] == {"old": True, "new": False}
    assert "credentials" not in str(event.detail)
    page_text = client.get(page).get_data(as_text=True)
    assert 'value="120"' in page_text and "QP-\\d{6}" in page_text
    # The demo platform has no Messenger tag to offer.
    assert "human_agent_enabled" not in page_text


def test_out_of_range_figures_and_dangerous_patterns_are_refused(
    client: FlaskClient, session: Session, account: Account
) -> None:
    _admin(client, session)
    page = f"/admin/accounts/{account.id}/settings"
    for overrides, message in (
        ({"poll_interval_seconds": "29"}, "polling interval"),
        ({"poll_interval_seconds": "86401"}, "polling interval"),
        ({"sla_minutes": "0"}, "SLA target"),
        ({"sla_minutes": "10081"}, "SLA target"),
        ({"id_patterns": "QP-("}, "not a valid regular expression"),
        ({"id_patterns": "\\d*"}, "matches empty text"),
        ({"id_patterns": "(\\d+)+x"}, "repeats a repetition"),
        ({"id_patterns": "a" * 201}, "at most 200 characters"),
    ):
        response = post_form(client, page, page, _settings(account, **overrides))
        assert response.status_code == 422, overrides
        assert message in response.get_data(as_text=True), overrides
    saved = fresh(session).get(Account, account.id)
    assert saved is not None and saved.poll_interval_seconds == account.poll_interval_seconds
    assert "id_patterns" not in saved.settings
    assert audit_events(session, "account_settings_changed") == []


def test_the_pattern_check_shows_matches_in_the_sample_without_saving(
    client: FlaskClient, session: Session, account: Account
) -> None:
    _admin(client, session)
    page = f"/admin/accounts/{account.id}/settings"
    sample = "Bestellung QP-123456 und <b>QP-654321</b>, nicht QP-12"
    form = _settings(account, id_patterns="QP-\\d{6}", sample=sample, action="check")
    response = post_form(client, page, page, form)
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<mark>QP-123456</mark>, <mark>QP-654321</mark>" in text
    assert "<b>QP-654321</b>" not in text and "&lt;b&gt;" in text
    saved = fresh(session).get(Account, account.id)
    assert saved is not None and "id_patterns" not in saved.settings


def test_the_messenger_tag_is_offered_for_facebook_only(
    client: FlaskClient, session: Session, account: Account
) -> None:
    _admin(client, session)
    account.platform = "facebook"
    session.add(account)
    session.commit()
    page = f"/admin/accounts/{account.id}/settings"
    assert "human_agent_enabled" in client.get(page).get_data(as_text=True)
    post_form(client, page, page, _settings(account, human_agent_enabled="1"))
    saved = fresh(session).get(Account, account.id)
    assert saved is not None and saved.settings["human_agent_enabled"] is True
    (event,) = audit_events(session, "account_settings_changed")
    assert event.detail["changes"]["human_agent_enabled"] == {"old": False, "new": True}


def test_only_admins_open_the_settings(
    client: FlaskClient, session: Session, account: Account
) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)
    assert client.get(f"/admin/accounts/{account.id}/settings").status_code == 403
    assert report_privacy(session=session) == (5, None)
