"""The contact page: who may see it, consent forms, the research objection, writing first,
and the consent texts admins keep."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, func, select

from connectors import Author
from inbox.ingest import ingest
from inbox.models import (
    Account,
    Contact,
    Conversation,
    Delivery,
    Direction,
    Message,
    ResearchOutbox,
    Role,
    User,
)
from inbox.privacy_models import ConsentRecord, ConsentText
from inbox.workflow_models import AccountMember
from tests.conftest import audit_events, fresh, login, make_item, make_user, post_form

SCRIPT = "<script>alert(1)</script>"
JO = Author(platform_user_id="7001", handle="jodoe", display_name="Jo Doe")


def write_in(session: Session, account: Account, author: Author = JO, **overrides: Any) -> Message:
    item = make_item(
        author=author,
        created_at=datetime.now(UTC) - timedelta(minutes=3),
        thread_key=f"conv-7-{author.platform_user_id}",
        **overrides,
    )
    return ingest(session=session, account=account, item=item).message


def contact_id_of(session: Session, message: Message) -> int:
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation is not None
    return conversation.contact_id


def member(session: Session, account: Account, user: User) -> None:
    assert account.id is not None and user.id is not None
    session.add(AccountMember(account_id=account.id, user_id=user.id))
    session.commit()


def flashes(body: str) -> list[str]:
    found = re.findall(r'<p class="flash (\w+)" role="status">(.*?)</p>', body, re.S)
    return [f"{kind}: {html.unescape(text)}" for kind, text in found]


def page_url(contact_id: int) -> str:
    return f"/conversations/contacts/{contact_id}"


def browser(app: Flask, user: User) -> FlaskClient:
    client = app.test_client()
    assert login(client, user.email).status_code == 302
    return client


def count(session: Session, table: type[Any]) -> int:
    return int(fresh(session).exec(select(func.count()).select_from(table)).one())


@pytest.fixture
def agent(session: Session) -> User:
    """Jana; `agent_client` makes her a member of the demo account."""
    return make_user(session, role=Role.agent, name="Jana Schneider")


@pytest.fixture
def jo(session: Session, account: Account) -> int:
    """Jo's contact id: Jo wrote a DM to the demo account."""
    return contact_id_of(session, write_in(session, account))


# Who sees the page ---------------------------------------------------------------------


def test_agent_sees_profile_consents_and_the_view_is_audited(
    agent_client: FlaskClient, session: Session, jo: int, agent: User
) -> None:
    response = agent_client.get(page_url(jo))

    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200
    assert "Jo Doe" in body and "@jodoe" in body
    assert "No consent recorded" in body
    assert "Record objection to research use" in body
    assert "Write a direct message" in body
    (event,) = audit_events(session, "view_contact")
    assert (event.user_id, event.target_type, event.target_id) == (agent.id, "contact", jo)
    assert event.contact_id == jo


def test_roles_and_membership_decide_who_sees_a_contact(
    app: Flask, session: Session, fernet: MultiFernet, account: Account, jo: int
) -> None:
    stranger = make_user(session, role=Role.agent)  # member of no account
    other = Account(
        platform="demo", display_name="Andere", platform_account_id="o", credentials_encrypted=b""
    )
    session.add(other)
    session.commit()
    member(session, other, stranger)
    marketing = make_user(session, role=Role.marketing)
    admin = make_user(session, role=Role.admin)
    dpo = make_user(session, role=Role.dpo)

    assert browser(app, stranger).get(page_url(jo)).status_code == 404
    assert browser(app, marketing).get(page_url(jo)).status_code == 403
    assert browser(app, admin).get(page_url(jo)).status_code == 200
    dpo_page = browser(app, dpo).get(page_url(jo))
    assert dpo_page.status_code == 200
    # The data-protection officer handles consent, but writes to no one.
    assert "Write a direct message" not in dpo_page.get_data(as_text=True)
    assert browser(app, admin).get(page_url(9999)).status_code == 404


def test_marketing_cannot_touch_consent_or_objection(app: Flask, session: Session, jo: int) -> None:
    marketing = browser(app, make_user(session, role=Role.marketing))
    token = re.search(
        r'name="csrf_token" value="([^"]+)"', marketing.get("/login").get_data(as_text=True)
    )
    data = {"csrf_token": token.group(1) if token else "", "channel": "dm", "purpose": "service"}

    assert marketing.post(page_url(jo) + "/consents", data=data).status_code == 403
    assert marketing.post(page_url(jo) + "/objection", data=data).status_code == 403
    assert marketing.post(page_url(jo) + "/write", data=data).status_code == 403
    assert count(session, ConsentRecord) == 0


def test_hostile_names_are_escaped_on_the_contact_page(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    hostile = Author(platform_user_id="666", handle=SCRIPT, display_name=SCRIPT)
    contact_id = contact_id_of(session, write_in(session, account, hostile))
    post_form(
        agent_client,
        page_url(contact_id),
        page_url(contact_id) + "/consents",
        {"channel": "dm", "purpose": "service", "source": SCRIPT},
    )

    body = agent_client.get(page_url(contact_id)).get_data(as_text=True)

    assert SCRIPT not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


# Consent forms -------------------------------------------------------------------------


def test_recording_and_withdrawing_consent_in_the_browser(
    agent_client: FlaskClient, session: Session, jo: int, agent: User
) -> None:
    text = ConsentText(purpose="marketing", language="de", version=3, text="Ja, Angebote per DM.")
    session.add(text)
    session.commit()

    recorded = post_form(
        agent_client,
        page_url(jo),
        page_url(jo) + "/consents",
        {"channel": "dm", "purpose": "marketing", "text_id": str(text.id), "given_at": ""},
    )

    assert recorded.status_code == 302
    (record,) = fresh(session).exec(select(ConsentRecord)).all()
    assert record.source == "agent recorded with text version 3 (marketing, de)"
    assert record.recorded_by_user_id == agent.id and record.contact_id == jo
    (event,) = audit_events(session, "consent_recorded")
    assert event.contact_id == jo and event.detail["purpose"] == "marketing"
    body = html.unescape(agent_client.get(page_url(jo)).get_data(as_text=True))
    assert "agent recorded with text version 3" in body and "Jana Schneider" in body

    withdrawn = post_form(
        agent_client, page_url(jo), page_url(jo) + f"/consents/{record.id}/withdraw", {}
    )

    assert withdrawn.status_code == 302
    kept = fresh(session).get(ConsentRecord, record.id)
    assert kept is not None and kept.withdrawn_at is not None
    assert kept.withdrawn_by_user_id == agent.id
    assert [e.detail["consent_id"] for e in audit_events(session, "consent_withdrawn")] == [
        record.id
    ]
    body = html.unescape(agent_client.get(page_url(jo)).get_data(as_text=True))
    assert "withdrawn" in body and "No consent recorded" not in body


def test_a_consent_form_with_mistakes_is_shown_again(
    agent_client: FlaskClient, session: Session, jo: int
) -> None:
    response = post_form(
        agent_client,
        page_url(jo),
        page_url(jo) + "/consents",
        {"channel": "dm", "purpose": "service", "source": "", "given_at": "2999-01-01T10:00"},
    )

    assert response.status_code == 422
    assert flashes(response.get_data(as_text=True)) == [
        "error: The time of consent must be a valid time, not in the future."
    ]
    assert count(session, ConsentRecord) == 0


def test_contact_panel_beside_the_thread_sums_up_consent_and_links_the_page(
    agent_client: FlaskClient, session: Session, account: Account, jo: int
) -> None:
    conversation_id = session.exec(select(Conversation.id)).one()
    session.add(
        ConsentRecord(
            contact_id=jo,
            channel="dm",
            purpose="marketing",
            given_at=datetime.now(UTC),
            source="web form",
        )
    )
    session.commit()

    body = agent_client.get(f"/conversations/{conversation_id}").get_data(as_text=True)

    panel = re.search(r'<dd class="consent">(.*?)</dd>', body, re.S)
    assert panel and "Direct message: marketing" in html.unescape(panel.group(1))
    assert f'href="{page_url(jo)}"' in panel.group(1)


# Research objection --------------------------------------------------------------------


def test_objection_drops_pending_outbox_rows_and_only_the_dpo_lifts_it(
    app: Flask, agent_client: FlaskClient, session: Session, account: Account, jo: int
) -> None:
    write_in(session, account, text="Noch eine Frage")
    assert count(session, ResearchOutbox) == 2

    objected = post_form(agent_client, page_url(jo), page_url(jo) + "/objection", {})

    assert objected.status_code == 302
    assert count(session, ResearchOutbox) == 0
    contact = fresh(session).get(Contact, jo)
    assert contact is not None and contact.research_objection
    (event,) = audit_events(session, "research_objection")
    assert event.contact_id == jo and event.detail == {"dropped": 2}
    lifted = post_form(agent_client, page_url(jo), page_url(jo) + "/objection", {"clear": "1"})
    assert lifted.status_code == 403

    dpo = browser(app, make_user(session, role=Role.dpo))
    assert (
        post_form(dpo, page_url(jo), page_url(jo) + "/objection", {"clear": "1"}).status_code == 302
    )
    contact = fresh(session).get(Contact, jo)
    assert contact is not None and not contact.research_objection
    assert len(audit_events(session, "research_objection_cleared")) == 1


# Writing first -------------------------------------------------------------------------


def _newcomer(session: Session) -> int:
    """A contact the inbox knows from a public comment only (no DM conversation yet)."""
    contact = Contact(platform="demo", platform_user_id="8002", handle="kim", display_name="Kim")
    session.add(contact)
    session.commit()
    assert contact.id is not None
    return contact.id


def _comment_from(session: Session, account: Account, contact_id: int) -> None:
    item = make_item(
        kind="comment",
        author=Author(platform_user_id="8002", handle="kim", display_name="Kim"),
        thread_key="cm-1",
        external_id="cm-1",
        created_at=datetime.now(UTC) - timedelta(hours=1),
    )
    ingest(session=session, account=account, item=item)


def test_writing_first_without_consent_is_refused_and_nothing_is_stored(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    kim = _newcomer(session)
    _comment_from(session, account, kim)
    before = count(session, Conversation)

    response = post_form(
        agent_client,
        page_url(kim),
        page_url(kim) + "/write",
        {"account_id": str(account.id), "purpose": "service", "text": "Hallo Kim, kurze Frage"},
    )

    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert flashes(body) == [
        "error: Not sent: this person has not consented to be written to first on this channel."
    ]
    found = re.search(r'<textarea id="write-text"[^>]*>(.*?)</textarea>', body, re.S)
    assert found and html.unescape(found.group(1)) == "Hallo Kim, kurze Frage"
    assert count(session, Conversation) == before
    assert (
        fresh(session).exec(select(Message).where(Message.direction == Direction.outbound)).all()
        == []
    )
    (event,) = audit_events(session, "reply_refused")
    assert event.contact_id == kim and event.detail["reason"] == "no_consent"


def test_writing_first_with_consent_sends_through_the_official_account(
    agent_client: FlaskClient, session: Session, account: Account, agent: User
) -> None:
    kim = _newcomer(session)
    _comment_from(session, account, kim)
    post_form(
        agent_client,
        page_url(kim),
        page_url(kim) + "/consents",
        {"channel": "dm", "purpose": "service", "source": "Telefonat mit Kim"},
    )

    response = post_form(
        agent_client,
        page_url(kim),
        page_url(kim) + "/write",
        {"account_id": str(account.id), "purpose": "service", "text": "Hallo Kim!"},
    )

    assert response.status_code == 302
    conversation = (
        fresh(session)
        .exec(select(Conversation).where(Conversation.kind == "dm", Conversation.contact_id == kim))
        .one()
    )
    assert conversation.initiated_by_agent and conversation.thread_key == "conv-7-8002"
    assert response.headers["Location"].endswith(f"/conversations/{conversation.id}")
    (sent,) = session.exec(select(Message).where(Message.direction == Direction.outbound)).all()
    assert sent.delivery == Delivery.sent and sent.author_user_id == agent.id
    assert sent.text == "Hallo Kim!"
    # Kim's answer arrives in the same conversation.
    answer = write_in(
        session, account, Author(platform_user_id="8002", handle="kim", display_name="Kim")
    )
    assert answer.conversation_id == conversation.id


def test_writing_first_only_from_accounts_the_agent_works_on(
    agent_client: FlaskClient, session: Session, fernet: MultiFernet, account: Account, jo: int
) -> None:
    other = Account(
        platform="demo", display_name="Andere", platform_account_id="o", credentials_encrypted=b""
    )
    session.add(other)
    session.commit()

    response = post_form(
        agent_client,
        page_url(jo),
        page_url(jo) + "/write",
        {"account_id": str(other.id), "purpose": "service", "text": "Hallo"},
    )

    assert response.status_code == 404
    assert count(session, Message) == 1


# Consent texts (admin) -----------------------------------------------------------------


def test_admin_adds_consent_text_versions_and_it_is_audited(app: Flask, session: Session) -> None:
    admin = browser(app, make_user(session, role=Role.admin))
    url = "/admin/consent-texts"
    for text in ("Ich willige ein, Angebote zu erhalten.", "Ich willige ein (neu)."):
        response = post_form(
            admin, url, url, {"purpose": "marketing", "language": "de", "text": text}
        )
        assert response.status_code == 302

    versions = fresh(session).exec(select(ConsentText).order_by(col(ConsentText.version))).all()
    assert [(t.version, t.text) for t in versions] == [
        (1, "Ich willige ein, Angebote zu erhalten."),
        (2, "Ich willige ein (neu)."),
    ]
    assert [e.detail["version"] for e in audit_events(session, "consent_text_created")] == [1, 2]
    body = html.unescape(admin.get(url).get_data(as_text=True))
    assert "Ich willige ein (neu)." in body
    prefilled = admin.get(f"{url}?from={versions[0].id}").get_data(as_text=True)
    assert "Ich willige ein, Angebote zu erhalten.</textarea>" in html.unescape(prefilled)
    empty = post_form(admin, url, url, {"purpose": "marketing", "language": "de", "text": " "})
    assert empty.status_code == 422


def test_only_admins_manage_consent_texts(app: Flask, session: Session) -> None:
    for role in (Role.agent, Role.marketing, Role.dpo):
        assert (
            browser(app, make_user(session, role=role)).get("/admin/consent-texts").status_code
            == 403
        )
