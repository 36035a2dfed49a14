"""The admin's account pages: per-account settings, connecting, reconnecting and removing
accounts, and the report privacy defaults."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.fernet import MultiFernet
from flask.testing import FlaskClient
from sqlmodel import Session, select

from connectors import Author
from inbox.ingest import ingest
from inbox.models import (
    Account,
    AccountStatus,
    Contact,
    Conversation,
    DeadLetter,
    Message,
    Role,
)
from inbox.privacy_models import ConsentRecord
from inbox.settings import report_privacy
from inbox.workflow_models import CannedReply
from tests.conftest import (
    audit_events,
    fresh,
    login,
    make_item,
    make_member,
    make_user,
    post_form,
)


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


# Connect, reconnect, remove -------------------------------------------------------------------


def test_an_admin_connects_the_demo_account_from_the_ui(
    client: FlaskClient, session: Session
) -> None:
    _admin(client, session)
    assert "/admin/accounts/connect" in client.get("/admin/accounts").get_data(as_text=True)
    assert "?platform=demo" in client.get("/admin/accounts/connect").get_data(as_text=True)
    form = {"platform": "demo", "poll_interval_seconds": "300", "sla_minutes": "15"}
    page = "/admin/accounts/connect?platform=demo"
    response = post_form(client, page, "/admin/accounts/connect", form)
    assert response.status_code == 302
    (account,) = fresh(session).exec(select(Account)).all()
    assert (account.platform, account.poll_interval_seconds, account.sla_minutes) == (
        "demo",
        300,
        15,
    )
    assert account.display_name in client.get("/admin/accounts").get_data(as_text=True)
    (event,) = audit_events(session, "account_connected")
    assert event.target_id == account.id and event.detail["platform"] == "demo"

    # The same account once more: refused, pointing at Reconnect, its settings untouched.
    again = post_form(client, page, "/admin/accounts/connect", {**form, "sla_minutes": "90"})
    assert again.status_code == 409
    assert "connected already" in again.get_data(as_text=True)
    assert fresh(session).get(Account, account.id).sla_minutes == 15  # type: ignore[union-attr]
    assert len(audit_events(session, "account_connected")) == 1


def test_the_empty_account_list_points_to_the_connect_form(
    client: FlaskClient, session: Session
) -> None:
    _admin(client, session)
    page = client.get("/admin/accounts").get_data(as_text=True)
    assert "No accounts connected yet" in page and "socialcare account connect" not in page


def test_a_refused_connection_shows_the_error_but_never_the_credentials(
    client: FlaskClient, session: Session
) -> None:
    _admin(client, session)
    page = "/admin/accounts/connect?platform=facebook"
    text = client.get(page).get_data(as_text=True)
    assert 'name="page_access_token" type="password"' in text
    token = "EAAG-geheimes-token-4711"
    form = {
        "platform": "facebook",
        "page_access_token": token,
        "page_id": "",
        "poll_interval_seconds": "60",
        "sla_minutes": "30",
    }
    response = post_form(client, page, "/admin/accounts/connect", form)
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Not connected" in text and "page_id" in text
    assert token not in text
    # A credential left empty is refused before the platform is asked.
    response = post_form(client, page, "/admin/accounts/connect", {**form, "page_access_token": ""})
    assert response.status_code == 422 and "every credential" in response.get_data(as_text=True)
    assert fresh(session).exec(select(Account)).all() == []
    assert audit_events(session, "account_connected") == []


def test_reconnecting_restores_polling_and_keeps_the_settings(
    client: FlaskClient, session: Session, account: Account
) -> None:
    _admin(client, session)
    account.status = AccountStatus.needs_reconnection
    account.last_error = "token revoked"
    account.settings = {**account.settings, "id_patterns": ["QP-\\d{6}"]}
    session.add(account)
    session.commit()
    page = f"/admin/accounts/{account.id}/reconnect"
    assert post_form(client, page, page, {}).status_code == 302
    saved = fresh(session).get(Account, account.id)
    assert saved is not None
    assert saved.status == AccountStatus.active and saved.last_error is None
    assert saved.settings["id_patterns"] == ["QP-\\d{6}"]
    (event,) = audit_events(session, "account_reconnected")
    assert event.target_id == account.id


def test_removing_an_account_says_what_goes_and_needs_its_name(
    client: FlaskClient, session: Session, fernet: MultiFernet, account: Account
) -> None:
    _admin(client, session)
    assert account.id is not None
    message = ingest(session=session, account=account, item=make_item()).message
    shared = make_item(
        external_id="dm-shared",
        thread_key="dm-7002",
        author=Author(platform_user_id="7002", handle="consenting", display_name="Kim Keep"),
    )
    keep = ingest(session=session, account=account, item=shared).message
    assert keep.author_contact_id is not None
    consent = ConsentRecord(
        contact_id=keep.author_contact_id,
        channel="dm",
        purpose="service",
        given_at=datetime.now(UTC),
        source="web form",
    )
    agent = make_user(session, role=Role.agent)
    make_member(session, agent, account)
    session.add_all(
        [
            consent,
            CannedReply(account_id=account.id, title="Hallo", text="Hallo"),
            DeadLetter(account_id=account.id, platform="demo", source="poll", error="x", raw="{}"),
        ]
    )
    session.commit()
    account_id, name = account.id, account.display_name
    gone_id, kept_id = message.author_contact_id, keep.author_contact_id
    page = f"/admin/accounts/{account_id}/remove"
    text = client.get(page).get_data(as_text=True)
    for line in (
        "Conversations: 2",
        "Messages: 2",
        "Contacts known only from this account: 1",
        "Dead letters: 1",
        "Canned replies of this account: 1",
        "memberships: 1",
    ):
        assert line in text, line
    wrong = post_form(client, page, page, {"confirm": "quendelmarkt"})
    assert wrong.status_code == 422
    assert fresh(session).get(Account, account_id) is not None
    response = post_form(client, page, page, {"confirm": name})
    assert response.status_code == 302
    session = fresh(session)
    assert session.exec(select(Account)).all() == []
    assert session.exec(select(Message)).all() == []
    assert session.get(Contact, gone_id) is None
    # The contact who consented stays with their consent record.
    assert session.get(Contact, kept_id) is not None
    assert session.exec(select(Conversation)).all() == []
    assert session.exec(select(DeadLetter)).all() == []
    assert session.exec(select(CannedReply)).all() == []
    (event,) = audit_events(session, "account_removed")
    assert event.detail == {
        "platform": "demo",
        "conversations": 2,
        "messages": 2,
        "contacts": 1,
        "dead_letters": 1,
        "canned_replies": 1,
        "memberships": 1,
    }
    assert name not in str(event.detail)


# Report privacy defaults ----------------------------------------------------------------------


def test_report_privacy_defaults_are_edited_validated_and_audited(
    client: FlaskClient, session: Session
) -> None:
    _admin(client, session)
    page = "/admin/report-privacy"
    assert page in client.get("/admin/accounts").get_data(as_text=True)
    assert 'name="k"' in client.get(page).get_data(as_text=True)
    for k, epsilon in (("1", ""), ("101", ""), ("x", ""), ("5", "0"), ("5", "11"), ("5", "nan")):
        response = post_form(client, page, page, {"k": k, "epsilon": epsilon})
        assert response.status_code == 422, (k, epsilon)
    assert report_privacy(session=fresh(session)) == (5, None)
    assert post_form(client, page, page, {"k": "10", "epsilon": "0,5"}).status_code == 302
    assert report_privacy(session=fresh(session)) == (10, 0.5)
    assert 'value="10"' in client.get(page).get_data(as_text=True)
    post_form(client, page, page, {"k": "10", "epsilon": ""})
    assert report_privacy(session=fresh(session)) == (10, None)
    events = audit_events(session, "report_privacy_changed")
    assert [e.detail["changes"] for e in events] == [
        {"k": {"old": 5, "new": 10}, "epsilon": {"old": None, "new": 0.5}},
        {"epsilon": {"old": 0.5, "new": None}},
    ]
