"""Consent records and texts, and the outbound gate every send and every retry passes."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import MultiFernet
from flask.testing import FlaskClient
from sqlmodel import Session, select

from connectors import Author
from inbox.consent import (
    ConsentError,
    OutboundRefused,
    add_consent_text,
    check_outbound,
    consents_of,
    has_consent,
    open_direct_conversation,
    record_consent,
    withdraw_consent,
)
from inbox.crypto import encrypt_credentials
from inbox.ingest import ingest
from inbox.models import (
    Account,
    Contact,
    Conversation,
    Delivery,
    Message,
    Role,
    User,
)
from inbox.replies import ReplyError, deliver, send_reply
from inbox.workflow_models import AccountMember
from tests.conftest import (
    audit_events,
    csrf_token,
    fresh,
    login,
    make_account,
    make_item,
    make_user,
    outbound_messages,
)

JO = Author(platform_user_id="7001", handle="jodoe", display_name="Jo Doe")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MARKETING_REFUSAL = "Not sent: this person has not consented to marketing messages on this channel."


# Helpers -------------------------------------------------------------------------------


def write_in(
    session: Session, account: Account, *, minutes_ago: float = 3, **overrides: Any
) -> Message:
    """A customer's DM arriving in the inbox."""
    fields: dict[str, Any] = {
        "author": JO,
        "created_at": datetime.now(UTC) - timedelta(minutes=minutes_ago),
        **overrides,
    }
    return ingest(session=session, account=account, item=make_item(**fields)).message


def contact_of(session: Session, conversation: Conversation) -> Contact:
    found = session.get(Contact, conversation.contact_id)
    assert found is not None
    return found


def consent(
    session: Session, contact: Contact, *, channel: str = "dm", purpose: str = "service"
) -> None:
    record_consent(
        session=session,
        contact=contact,
        channel=channel,
        purpose=purpose,
        source="web form",
        recorded_by=None,
        given_at=datetime.now(UTC) - timedelta(days=1),
        now=datetime.now(UTC),
    )
    session.commit()


def agent_conversation(session: Session, account: Account) -> Conversation:
    """A DM conversation an agent started with Jo: nobody has answered yet."""
    contact = Contact(platform="demo", platform_user_id="7001", handle="jodoe")
    session.add(contact)
    session.commit()
    assert account.id is not None and contact.id is not None
    conversation = Conversation(
        account_id=account.id,
        contact_id=contact.id,
        kind="dm",
        thread_key="conv-7-7001",
        opened_at=NOW,
        last_message_at=NOW,
        initiated_by_agent=True,
    )
    session.add(conversation)
    session.commit()
    return conversation


def reply(
    session: Session,
    fernet: MultiFernet,
    conversation: Conversation,
    agent: User,
    *,
    purpose: str = "service",
) -> Message:
    return send_reply(
        session=session,
        fernet=fernet,
        conversation=conversation,
        agent=agent,
        text="Guten Tag!",
        purpose=purpose,
    )


def refusal(
    session: Session,
    fernet: MultiFernet,
    conversation: Conversation,
    agent: User,
    *,
    purpose: str = "service",
) -> str:
    with pytest.raises(ReplyError) as refused:
        reply(session, fernet, conversation, agent, purpose=purpose)
    return refused.value.reason


def facebook_account(session: Session, fernet: MultiFernet, **settings: Any) -> Account:
    """A Facebook Page account stored as connecting would store it, without the network."""
    account = Account(
        platform="facebook",
        display_name="Quendelmarkt",
        platform_account_id="1234567890",
        handle="quendelmarkt",
        credentials_encrypted=encrypt_credentials(fernet, {"page_access_token": "EAAB-test"}),
        settings={"page_id": "1234567890", "account_ref": "1234567890", **settings},
    )
    session.add(account)
    session.commit()
    return account


def messenger_dm(session: Session, account: Account, *, hours_ago: float) -> Conversation:
    message = write_in(
        session,
        account,
        minutes_ago=hours_ago * 60,
        platform="facebook",
        account_ref="1234567890",
        author=Author(platform_user_id="psid-1", display_name="Jo Doe"),
        thread_key="dm:t_1",
    )
    found = session.get(Conversation, message.conversation_id)
    assert found is not None
    return found


@pytest.fixture
def agent(session: Session) -> User:
    return make_user(session, role=Role.agent, name="Jana Schneider")


# Customer wrote first ------------------------------------------------------------------


def test_answering_a_customer_who_wrote_first_needs_no_record(
    session: Session, fernet: MultiFernet, account: Account, agent: User
) -> None:
    conversation_id = write_in(session, account).conversation_id
    conversation = session.get(Conversation, conversation_id)
    assert conversation is not None

    sent = reply(session, fernet, conversation, agent)

    assert sent.delivery == Delivery.sent
    assert fresh(session).exec(select(Message)).all()  # and no consent row was made for it
    assert consents_of(session=session, contact_id=conversation.contact_id) == []


def test_marketing_needs_explicit_marketing_consent_for_the_channel(
    session: Session, fernet: MultiFernet, account: Account, agent: User
) -> None:
    conversation = session.get(Conversation, write_in(session, account).conversation_id)
    assert conversation is not None
    contact = contact_of(session, conversation)

    assert refusal(session, fernet, conversation, agent, purpose="marketing") == (
        "no_marketing_consent"
    )
    consent(session, contact, channel="comment", purpose="marketing")  # not this channel
    consent(session, contact, channel="dm", purpose="service")  # not this purpose
    assert refusal(session, fernet, conversation, agent, purpose="marketing") == (
        "no_marketing_consent"
    )
    assert outbound_messages(session) == []
    refused = audit_events(session, "reply_refused")
    assert [e.detail for e in refused] == [
        {"reason": "no_marketing_consent", "purpose": "marketing"}
    ] * 2
    assert refused[0].target_id == conversation.id and refused[0].contact_id == contact.id

    consent(session, contact, channel="dm", purpose="marketing")
    sent = reply(session, fernet, conversation, agent, purpose="marketing")

    assert sent.delivery == Delivery.sent and sent.context["purpose"] == "marketing"


# Agent wrote first ---------------------------------------------------------------------


def test_writing_first_needs_consent_for_channel_and_purpose(
    session: Session, fernet: MultiFernet, account: Account, agent: User
) -> None:
    conversation = agent_conversation(session, account)
    contact = contact_of(session, conversation)

    assert refusal(session, fernet, conversation, agent) == "no_consent"
    consent(session, contact, channel="mention")
    assert refusal(session, fernet, conversation, agent) == "no_consent"
    assert outbound_messages(session) == []

    consent(session, contact, channel="dm")
    assert reply(session, fernet, conversation, agent).delivery == Delivery.sent


def test_withdrawn_consent_stops_writing_first(
    session: Session, fernet: MultiFernet, account: Account, agent: User
) -> None:
    conversation = agent_conversation(session, account)
    contact = contact_of(session, conversation)
    consent(session, contact)
    (row,) = consents_of(session=session, contact_id=conversation.contact_id)
    withdraw_consent(
        session=session, record=row.record, withdrawn_by=agent.id, now=datetime.now(UTC)
    )
    session.commit()

    assert refusal(session, fernet, conversation, agent) == "no_consent"
    (kept,) = consents_of(session=session, contact_id=conversation.contact_id)
    assert not kept.active and kept.withdrawn_by == "Jana Schneider"


def test_once_the_customer_answers_replying_is_service(
    session: Session, fernet: MultiFernet, account: Account, agent: User
) -> None:
    conversation = agent_conversation(session, account)
    write_in(session, account, thread_key="conv-7-7001")

    assert reply(session, fernet, conversation, agent).delivery == Delivery.sent
    # Marketing still needs its own consent, whoever wrote first.
    assert refusal(session, fernet, conversation, agent, purpose="marketing") == (
        "no_marketing_consent"
    )


def test_a_retry_after_withdrawal_is_refused_and_stays_failed(
    session: Session, fernet: MultiFernet, agent: User
) -> None:
    account = make_account(session, fernet, fail_replies=True)
    conversation = agent_conversation(session, account)
    contact = contact_of(session, conversation)
    consent(session, contact)
    failed = reply(session, fernet, conversation, agent)
    assert failed.delivery == Delivery.failed  # the platform was down
    (row,) = consents_of(session=session, contact_id=contact.id)
    withdraw_consent(session=session, record=row.record, withdrawn_by=None, now=datetime.now(UTC))
    account.settings = {**account.settings, "fail_replies": False}  # the platform is back
    session.add(account)
    session.commit()

    retried = deliver(session=session, fernet=fernet, message=failed, user_id=agent.id)

    assert retried.delivery == Delivery.failed and retried.external_id is None
    assert retried.attempts == 1  # not posted again
    assert "not consented" in (retried.delivery_error or "")
    assert retried.context["refused"] == "no_consent"
    (event,) = audit_events(session, "reply_refused")
    assert event.user_id == agent.id and event.detail["reason"] == "no_consent"


def test_consent_counts_from_when_it_was_given_until_it_was_withdrawn(
    session: Session, account: Account
) -> None:
    contact = contact_of(session, agent_conversation(session, account))
    assert contact.id is not None
    record = record_consent(
        session=session,
        contact=contact,
        channel="dm",
        purpose="marketing",
        source="Gewinnspiel-Formular",
        recorded_by=None,
        given_at=NOW - timedelta(days=2),
        now=NOW,
    )
    withdraw_consent(session=session, record=record, withdrawn_by=None, now=NOW)
    session.commit()

    def holds(at: datetime) -> bool:
        return has_consent(
            session=session, contact_id=contact.id or 0, channel="dm", purpose="marketing", now=at
        )

    assert not holds(NOW - timedelta(days=3))
    assert holds(NOW - timedelta(days=1))
    assert not holds(NOW)


def test_recording_validates_the_form(session: Session, account: Account) -> None:
    contact = contact_of(session, agent_conversation(session, account))
    marketing_text = add_consent_text(
        session=session, purpose="marketing", language="de", text="Ja, Angebote.", created_by=None
    )
    base: dict[str, Any] = {
        "session": session,
        "contact": contact,
        "channel": "dm",
        "purpose": "service",
        "source": "Telefonat",
        "recorded_by": None,
        "given_at": NOW,
        "now": NOW,
    }
    for change, reason in [
        ({"channel": "email"}, "channel"),
        ({"purpose": "sales"}, "purpose"),
        ({"given_at": NOW + timedelta(hours=1)}, "given_at"),
        ({"source": "  "}, "source"),
        ({"text_id": marketing_text.id}, "text"),  # a marketing text for a service consent
        ({"text_id": 9999}, "text"),
    ]:
        with pytest.raises(ConsentError) as error:
            record_consent(**{**base, **change})
        assert error.value.reason == reason


def test_texts_are_versioned_and_records_name_the_version(
    session: Session, account: Account
) -> None:
    contact = contact_of(session, agent_conversation(session, account))
    first = add_consent_text(
        session=session, purpose="marketing", language="de", text="Version eins", created_by=None
    )
    second = add_consent_text(
        session=session, purpose="marketing", language="de", text="Version zwei", created_by=None
    )
    english = add_consent_text(
        session=session, purpose="marketing", language="en", text="Version one", created_by=None
    )
    assert (first.version, second.version, english.version) == (1, 2, 1)

    record = record_consent(
        session=session,
        contact=contact,
        channel="dm",
        purpose="marketing",
        text_id=second.id,
        recorded_by=None,
        given_at=NOW,
        now=NOW,
    )
    session.commit()

    assert record.source == "agent recorded with text version 2 (marketing, de)"
    (row,) = consents_of(session=session, contact_id=contact.id or 0)
    assert row.text_version == 2
    assert fresh(session).get(type(first), first.id).text == "Version eins"  # type: ignore[union-attr]


# Messenger and Instagram ---------------------------------------------------------------


def test_messenger_window_is_refused_early_without_the_network(
    session: Session, fernet: MultiFernet, agent: User
) -> None:
    account = facebook_account(session, fernet)
    conversation = messenger_dm(session, account, hours_ago=25)

    assert refusal(session, fernet, conversation, agent) == "window_closed"
    assert outbound_messages(session) == []
    (event,) = audit_events(session, "reply_refused")
    assert event.detail == {"reason": "window_closed", "purpose": "service"}


def test_messenger_window_is_24_hours_or_7_days_with_the_human_agent_tag(
    session: Session, fernet: MultiFernet
) -> None:
    plain = messenger_dm(session, facebook_account(session, fernet), hours_ago=23)
    now = datetime.now(UTC)
    check_outbound(session=session, conversation=plain, purpose="service", now=now)
    with pytest.raises(OutboundRefused) as refused:
        check_outbound(
            session=session, conversation=plain, purpose="service", now=now + timedelta(hours=2)
        )
    assert refused.value.reason == "window_closed"

    account = session.get(Account, plain.account_id)
    assert account is not None
    account.settings = {**account.settings, "human_agent_enabled": True}
    session.add(account)
    session.commit()
    check_outbound(
        session=session, conversation=plain, purpose="service", now=now + timedelta(days=6)
    )
    with pytest.raises(OutboundRefused):
        check_outbound(
            session=session, conversation=plain, purpose="service", now=now + timedelta(days=7)
        )


def test_writing_first_on_messenger_is_impossible(session: Session, fernet: MultiFernet) -> None:
    account = facebook_account(session, fernet)
    contact = Contact(platform="facebook", platform_user_id="psid-9", display_name="Kim")
    session.add(contact)
    session.commit()
    consent(session, contact)
    consent(session, contact, purpose="marketing")

    with pytest.raises(OutboundRefused) as refused:
        open_direct_conversation(
            session=session,
            fernet=fernet,
            account=account,
            contact=contact,
            purpose="service",
            now=datetime.now(UTC),
        )

    assert refused.value.reason == "write_first_impossible"
    assert fresh(session).exec(select(Conversation)).all() == []


def test_writing_first_through_the_demo_uses_the_thread_its_dms_arrive_in(
    session: Session, fernet: MultiFernet, account: Account, agent: User
) -> None:
    contact = Contact(platform="demo", platform_user_id="7001", handle="jodoe")
    session.add(contact)
    session.commit()
    consent(session, contact)

    conversation = open_direct_conversation(
        session=session,
        fernet=fernet,
        account=account,
        contact=contact,
        purpose="service",
        now=datetime.now(UTC),
    )
    sent = reply(session, fernet, conversation, agent)

    assert sent.delivery == Delivery.sent
    assert conversation.initiated_by_agent and conversation.thread_key == "conv-7-7001"
    answer = write_in(session, account, thread_key="conv-7-7001")
    assert answer.conversation_id == conversation.id


# The composer --------------------------------------------------------------------------


def test_composer_refusal_says_why_and_keeps_the_draft(
    client: FlaskClient, session: Session, account: Account, agent: User
) -> None:
    assert account.id is not None and agent.id is not None
    session.add(AccountMember(account_id=account.id, user_id=agent.id))
    session.commit()
    conversation_id = write_in(session, account).conversation_id
    assert login(client, agent.email).status_code == 302
    token = csrf_token(client, f"/conversations/{conversation_id}")

    response = client.post(
        f"/conversations/{conversation_id}/reply",
        data={"csrf_token": token, "text": "20 % Rabatt für Sie!", "purpose": "marketing"},
    )

    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert MARKETING_REFUSAL in html.unescape(body)
    draft = re.search(r'<textarea id="reply-text"[^>]*>(.*?)</textarea>', body, re.S)
    assert draft and html.unescape(draft.group(1)) == "20 % Rabatt für Sie!"
    assert re.search(r'<option value="marketing" selected>', body)
    assert outbound_messages(session) == []

    bad = client.post(
        f"/conversations/{conversation_id}/reply",
        data={"csrf_token": token, "text": "Hallo", "purpose": "spam"},
    )
    assert bad.status_code == 400


def test_retry_in_the_browser_tells_the_refusal(
    client: FlaskClient, session: Session, fernet: MultiFernet, agent: User
) -> None:
    account = make_account(session, fernet, fail_replies=True)
    assert account.id is not None and agent.id is not None
    session.add(AccountMember(account_id=account.id, user_id=agent.id))
    conversation = agent_conversation(session, account)
    contact = contact_of(session, conversation)
    consent(session, contact)
    failed = reply(session, fernet, conversation, agent)
    (row,) = consents_of(session=session, contact_id=contact.id or 0)
    withdraw_consent(session=session, record=row.record, withdrawn_by=None, now=datetime.now(UTC))
    session.commit()
    assert login(client, agent.email).status_code == 302
    path = f"/conversations/{conversation.id}"

    response = client.post(
        f"{path}/messages/{failed.id}/retry",
        data={"csrf_token": csrf_token(client, path)},
        follow_redirects=True,
    )

    body = html.unescape(response.get_data(as_text=True))
    assert "has not consented to be written to first on this channel" in body
    assert [m.delivery for m in outbound_messages(session)] == [Delivery.failed]


# Thread keys of a first message ---------------------------------------------------------


def test_first_message_thread_keys_match_how_each_platform_parses_dms() -> None:
    import json
    from pathlib import Path

    from connectors import get_connector
    from connectors.demo import build_payload, parse_payload
    from connectors.x_parse import parse_dm_event

    page = json.loads((Path(__file__).parent / "fixtures/x/dm_p1.json").read_text())
    event = page["data"][0]
    users = {"7001": {"id": "7001", "username": "jodoe", "name": "Jo Doe"}}
    parsed = parse_dm_event(event, users, "1450000000000000042")
    x = get_connector(
        "x",
        dict.fromkeys(
            ("consumer_key", "consumer_secret", "access_token", "access_token_secret"), "k"
        ),
        {"username": "quendelmarkt"},
    )
    assert x.direct_thread_key(Author(platform_user_id="7001")) == parsed.thread_key

    demo = get_connector("demo", {}, {"seed": 7})
    dm = next(
        item for i in range(200) if (item := parse_payload(build_payload(7, i, 0))).kind == "dm"
    )
    assert demo.direct_thread_key(dm.author) == dm.thread_key
    for platform, settings in (
        ("facebook", {"page_id": "1"}),
        ("instagram", {"page_id": "1", "ig_user_id": "2"}),
    ):
        meta = get_connector(platform, {"page_access_token": "t"}, settings)
        assert meta.direct_thread_key(Author(platform_user_id="psid")) is None
