"""The topic taxonomy editor: default set, validation, preview on anonymized records, saving."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask.testing import FlaskClient
from sqlmodel import Session

from anonymizer.store import ResearchRecord
from inbox.models import Account, Role
from inbox.research import taxonomy_of
from tests.conftest import audit_events, fresh, login, make_user, post_form


def _admin(client: FlaskClient, session: Session) -> None:
    admin = make_user(session, role=Role.admin, name="Alex Admin")
    assert login(client, admin.email).status_code == 302


def _record(label: str, text: str, hours_ago: int, topics: list[str]) -> ResearchRecord:
    return ResearchRecord(
        account_label=label,
        platform="demo",
        channel_kind="dm",
        time_bucket=datetime(2026, 11, 20, 12) - timedelta(hours=hours_ago),
        language="de",
        redacted_text=text,
        topics=topics,
        hashtags=[],
        author_pseudonym=f"p-{hours_ago}",
    )


def test_the_default_topics_are_shown_while_the_account_has_none(
    client: FlaskClient, session: Session, account: Account
) -> None:
    _admin(client, session)
    settings = client.get(f"/admin/accounts/{account.id}/settings").get_data(as_text=True)
    assert f"/admin/accounts/{account.id}/topics" in settings
    page = client.get(f"/admin/accounts/{account.id}/topics").get_data(as_text=True)
    assert "uses the default topics" in page
    assert "delivery: liefer* OR paket*" in page


def test_the_preview_shows_what_the_edited_rules_give_the_latest_records(
    client: FlaskClient, session: Session, research: Session, account: Account
) -> None:
    _admin(client, session)
    research.add_all(
        [
            _record(account.display_name, "Mein Paket ist weg <PHONE>", 1, ["delivery"]),
            _record(account.display_name, "<script>alert(1)</script> Gutschein kaputt", 2, []),
            _record("Other shop", "Gutschein von anderen", 0, []),
        ]
        + [_record(account.display_name, "alt", 10 + n, []) for n in range(120)]
    )
    research.commit()
    page = f"/admin/accounts/{account.id}/topics"
    rules = "delivery: paket*\nvoucher: gutschein*"
    response = post_form(client, page, page, {"rules": rules, "action": "preview"})
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Mein Paket ist weg &lt;PHONE&gt;" in text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text
    assert "voucher: 1" in text and "delivery: 1" in text
    # Only this account's records, and only the latest 100 of them.
    assert "Gutschein von anderen" not in text
    assert text.count('<td class="preview">') == 100
    # Previewing saves nothing.
    saved = fresh(session).get(Account, account.id)
    assert saved is not None and "topics" not in saved.settings


def test_invalid_rules_are_refused_with_the_reason(
    client: FlaskClient, session: Session, account: Account
) -> None:
    _admin(client, session)
    page = f"/admin/accounts/{account.id}/topics"
    for rules, reason in (
        ("delivery: (paket OR", "delivery"),
        ("no colon here", "write it as name: rule"),
        ("a: x\na: y", "comes twice"),
        ("", "at least one topic"),
    ):
        response = post_form(client, page, page, {"rules": rules, "action": "save"})
        assert response.status_code == 422, rules
        assert reason in response.get_data(as_text=True), rules
    saved = fresh(session).get(Account, account.id)
    assert saved is not None and "topics" not in saved.settings
    assert audit_events(session, "topics_changed") == []


def test_saved_topics_are_used_for_research_and_audited(
    client: FlaskClient, session: Session, account: Account
) -> None:
    _admin(client, session)
    page = f"/admin/accounts/{account.id}/topics"
    response = post_form(
        client, page, page, {"rules": "voucher: gutschein* OR coupon", "action": "save"}
    )
    assert response.status_code == 302
    saved = fresh(session).get(Account, account.id)
    assert saved is not None and saved.settings["topics"] == {"voucher": "gutschein* OR coupon"}
    assert taxonomy_of(saved).topics("Mein Gutschein geht nicht") == ["voucher"]
    assert "has its own topics" in client.get(page).get_data(as_text=True)
    post_form(client, page, page, {"action": "default"})
    saved = fresh(session).get(Account, account.id)
    assert saved is not None and "topics" not in saved.settings
    events = audit_events(session, "topics_changed")
    assert [e.detail for e in events] == [
        {"old": None, "new": ["voucher"]},
        {"old": ["voucher"], "new": None},
    ]


def test_only_admins_edit_topics(client: FlaskClient, session: Session, account: Account) -> None:
    login(client, make_user(session, role=Role.marketing).email)
    assert client.get(f"/admin/accounts/{account.id}/topics").status_code == 403
