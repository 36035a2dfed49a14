"""Webhook endpoints: handshakes, signature checks and ingestion through the real parsers."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, func, select
from werkzeug.test import TestResponse

# The real parsers register on import (connectors/__init__.py may import them as well).
import connectors.facebook  # noqa: F401
import connectors.instagram  # noqa: F401
import connectors.x  # noqa: F401
from connectors import WEBHOOK_PARSERS
from connectors.webhooks import meta_signature, x_signature
from connectors.x_parse import parse_mention, parse_page
from inbox import webhooks
from inbox.ingest import ingest
from inbox.models import Account, Contact, Conversation, DeadLetter, Message, ResearchOutbox

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
META_SECRET = "test-app-secret"
VERIFY_TOKEN = "our-verify-token"
X_SECRET = "test-consumer-secret"
PAGE_ID = "1029384756"
IG_USER_ID = "17841400000000001"
X_USER_ID = "42"


@pytest.fixture(autouse=True)
def hooks(app: Flask) -> Flask:
    """The app with webhook secrets set and the endpoints registered."""
    app.config.update(
        META_APP_SECRET=META_SECRET, META_VERIFY_TOKEN=VERIFY_TOKEN, X_CONSUMER_SECRET=X_SECRET
    )
    if not any(rule.rule == "/webhooks/meta" for rule in app.url_map.iter_rules()):
        webhooks.init_app(app)
    return app


@pytest.fixture
def accounts(session: Session) -> dict[str, Account]:
    """Official accounts for a Facebook page, an Instagram profile and an X user."""
    return {
        "facebook": make_platform_account(session, "facebook", PAGE_ID),
        "instagram": make_platform_account(session, "instagram", IG_USER_ID),
        "x": make_platform_account(session, "x", X_USER_ID),
    }


def make_platform_account(session: Session, platform: str, ref: str) -> Account:
    """An account row for a platform; webhooks need no credentials, only the row."""
    account = Account(
        platform=platform,
        display_name=f"Quendelmarkt {platform}",
        platform_account_id=ref,
        handle="quendelmarkt",
        credentials_encrypted=b"x",
    )
    session.add(account)
    session.commit()
    return account


def fixture(name: str) -> bytes:
    """A webhook payload as the platform sends it."""
    return (FIXTURES / name).read_bytes()


def compact(payload: Any) -> bytes:
    """A payload serialized the way Meta and X send it."""
    return json.dumps(payload, separators=(",", ":")).encode()


def post_meta(client: FlaskClient, body: bytes, signature: str | None = "sign") -> TestResponse:
    """POST a Meta delivery, signed with the app secret unless told otherwise."""
    headers = {}
    if signature == "sign":
        signature = meta_signature(META_SECRET, body)
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post(
        "/webhooks/meta", data=body, headers=headers, content_type="application/json"
    )


def post_x(client: FlaskClient, body: bytes, signature: str | None = "sign") -> TestResponse:
    """POST an X delivery, signed with the consumer secret unless told otherwise."""
    headers = {}
    if signature == "sign":
        signature = x_signature(X_SECRET, body)
    if signature is not None:
        headers["x-twitter-webhooks-signature"] = signature
    return client.post("/webhooks/x", data=body, headers=headers, content_type="application/json")


def count(session: Session, model: type) -> int:
    """Rows in a table."""
    return session.exec(select(func.count()).select_from(model)).one()


def nothing_stored(session: Session) -> bool:
    """Whether no message, contact, conversation or dead letter exists."""
    return all(count(session, model) == 0 for model in (Message, Contact, Conversation, DeadLetter))


def test_the_real_parsers_are_registered() -> None:
    assert {"facebook", "instagram", "x"} <= set(WEBHOOK_PARSERS)


# Meta subscription handshake --------------------------------------------------------------


def test_meta_handshake_echoes_the_challenge(client: FlaskClient) -> None:
    response = client.get(
        "/webhooks/meta",
        query_string={
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
    )
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "1158201444"
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "guessed", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
    ],
)
def test_meta_handshake_without_our_token_is_refused(
    client: FlaskClient, query: dict[str, str]
) -> None:
    response = client.get("/webhooks/meta", query_string=query)
    assert response.status_code == 403
    assert "1" not in response.get_data(as_text=True)


def test_meta_webhooks_are_off_until_configured(
    hooks: Flask, client: FlaskClient, session: Session
) -> None:
    hooks.config.update(META_APP_SECRET="", META_VERIFY_TOKEN="")
    handshake = client.get(
        "/webhooks/meta",
        query_string={"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
    )
    assert handshake.status_code == 404
    # An empty secret must not turn an HMAC with an empty key into a valid signature.
    body = b'{"object":"page","entry":[]}'
    empty_key = "sha256=" + hmac.new(b"", body, hashlib.sha256).hexdigest()
    assert post_meta(client, body, signature=empty_key).status_code == 404
    assert nothing_stored(session)


# X challenge-response check ---------------------------------------------------------------


def test_x_crc_answers_with_the_consumer_secret_hmac(client: FlaskClient) -> None:
    response = client.get("/webhooks/x", query_string={"crc_token": "crc-token-123"})
    assert response.status_code == 200
    assert response.get_json() == {
        "response_token": "sha256=m3yscIcSwL62BbDuWy/k/ml4+4Yfj3c0hep3IWko1Ws="
    }


def test_x_crc_without_token_is_a_bad_request(client: FlaskClient) -> None:
    assert client.get("/webhooks/x").status_code == 400
    assert client.get("/webhooks/x", query_string={"crc_token": ""}).status_code == 400


def test_x_webhooks_are_off_until_configured(
    hooks: Flask, client: FlaskClient, session: Session
) -> None:
    hooks.config["X_CONSUMER_SECRET"] = ""
    assert client.get("/webhooks/x", query_string={"crc_token": "t"}).status_code == 404
    assert post_x(client, fixture("x_tweet_create.json"), signature="sha256=").status_code == 404
    assert nothing_stored(session)


# Signatures -------------------------------------------------------------------------------


def test_a_meta_delivery_without_signature_is_refused(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    response = post_meta(client, fixture("facebook_messenger_dm.json"), signature=None)
    assert response.status_code == 403
    assert nothing_stored(session)


@pytest.mark.parametrize(
    "forge",
    [
        lambda body: meta_signature("someone-elses-secret", body),
        lambda body: meta_signature(META_SECRET, body + b" "),
        lambda body: meta_signature(META_SECRET, b'{"object":"page","entry":[]}'),
        lambda body: "sha1=" + meta_signature(META_SECRET, body).removeprefix("sha256="),
        lambda body: "sha256=",
        lambda body: "garbage",
    ],
    ids=["other-secret", "body-changed", "other-body", "sha1-prefix", "empty-digest", "garbage"],
)
def test_a_forged_meta_delivery_is_refused_and_nothing_stored(
    client: FlaskClient, session: Session, accounts: dict[str, Account], forge: Any
) -> None:
    body = fixture("facebook_messenger_dm.json")
    assert post_meta(client, body, signature=forge(body)).status_code == 403
    assert nothing_stored(session)


@pytest.mark.parametrize(
    "forge",
    [
        lambda body: None,
        lambda body: x_signature("someone-elses-secret", body),
        lambda body: x_signature(X_SECRET, b'{"for_user_id":"42","tweet_create_events":[]}'),
        lambda body: meta_signature(X_SECRET, body),  # hex, not X's base64
    ],
    ids=["missing", "other-secret", "other-body", "hex-digest"],
)
def test_a_forged_x_delivery_is_refused_and_nothing_stored(
    client: FlaskClient, session: Session, accounts: dict[str, Account], forge: Any
) -> None:
    body = fixture("x_tweet_create.json")
    assert post_x(client, body, signature=forge(body)).status_code == 403
    assert nothing_stored(session)


def test_deliveries_need_no_csrf_token(client: FlaskClient, accounts: dict[str, Account]) -> None:
    # The app protects every other POST with CSRF; platforms cannot send a token.
    assert post_meta(client, b'{"object":"page","entry":[]}').status_code == 200
    assert post_x(client, b'{"for_user_id":"42","tweet_create_events":[]}').status_code == 200


# Undeliverable payloads -------------------------------------------------------------------


def test_invalid_json_with_a_valid_signature_is_kept_as_a_dead_letter(
    client: FlaskClient, session: Session
) -> None:
    body = b'{"object":"page","entry":[{"id":"1029384756",'
    response = post_meta(client, body)
    assert response.status_code == 200
    letter = session.exec(select(DeadLetter)).one()
    assert letter.raw == body.decode()
    assert letter.error.startswith("invalid JSON")
    assert letter.source == "webhook"
    assert count(session, Message) == 0


def test_an_unknown_meta_object_is_kept_as_a_dead_letter(
    client: FlaskClient, session: Session
) -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    assert post_meta(client, body).status_code == 200
    letter = session.exec(select(DeadLetter)).one()
    assert letter.raw == body.decode()
    assert "whatsapp_business_account" in letter.error


def test_a_json_array_is_kept_as_a_dead_letter(client: FlaskClient, session: Session) -> None:
    assert post_x(client, b"[1, 2]").status_code == 200
    assert "expected a JSON object" in session.exec(select(DeadLetter)).one().error


def test_without_its_parser_a_delivery_is_refused_for_a_retry(
    client: FlaskClient,
    session: Session,
    accounts: dict[str, Account],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(WEBHOOK_PARSERS, "x", raising=False)
    response = post_x(client, fixture("x_tweet_create.json"))
    assert response.status_code == 503
    assert nothing_stored(session)


def test_an_oversized_delivery_is_refused(client: FlaskClient, session: Session) -> None:
    body = b'{"object":"page","entry":[],"pad":"' + b"x" * webhooks.MAX_BODY_BYTES + b'"}'
    assert post_meta(client, body).status_code == 413
    assert nothing_stored(session)


# X deliveries through the real parser -----------------------------------------------------


def only_message(session: Session) -> tuple[Message, Conversation, Contact]:
    """The single stored message with its conversation and author."""
    message = session.exec(select(Message)).one()
    conversation = session.get(Conversation, message.conversation_id)
    contact = session.get(Contact, message.author_contact_id)
    assert conversation is not None and contact is not None
    return message, conversation, contact


def test_a_signed_x_mention_is_stored(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    response = post_x(client, fixture("x_tweet_create.json"))
    assert response.status_code == 200
    message, conversation, contact = only_message(session)
    assert message.text == "@acme meine Bestellung ist verspätet"
    assert message.external_id == "1800000000000000001"
    assert message.account_id == accounts["x"].id
    assert conversation.kind == "mention"
    assert (contact.platform, contact.platform_user_id, contact.handle) == ("x", "7001", "jodoe")
    assert count(session, ResearchOutbox) == 1


def test_a_signed_x_direct_message_is_stored(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    assert post_x(client, fixture("x_direct_message.json")).status_code == 200
    message, conversation, contact = only_message(session)
    assert message.text == "Hi, ich brauche Hilfe mit meiner Rechnung"
    assert conversation.kind == "dm"
    assert (contact.handle, contact.display_name) == ("jodoe", "Jo Doe")


def test_an_x_delivery_for_a_user_we_do_not_run_is_not_stored(
    client: FlaskClient, session: Session
) -> None:
    make_platform_account(session, "x", "4242")
    assert post_x(client, fixture("x_tweet_create.json")).status_code == 200
    assert nothing_stored(session)


def test_a_replayed_x_delivery_is_stored_once(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    body = fixture("x_tweet_create.json")
    assert post_x(client, body).status_code == 200
    assert post_x(client, body).status_code == 200
    assert count(session, Message) == 1
    assert count(session, Conversation) == 1


def test_a_broken_x_event_is_kept_while_the_rest_is_stored(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    payload = json.loads(fixture("x_tweet_create.json"))
    broken = {**payload["tweet_create_events"][0], "id_str": "1800000000000000002"}
    del broken["user"]
    payload["tweet_create_events"].append(broken)
    assert post_x(client, compact(payload)).status_code == 200
    assert session.exec(select(Message.external_id)).all() == ["1800000000000000001"]
    letter = session.exec(select(DeadLetter)).one()
    assert "1800000000000000002" in letter.raw
    assert "author" in letter.error
    assert (letter.account_id, letter.platform, letter.source) == (
        accounts["x"].id,
        "x",
        "webhook",
    )


def test_an_x_delivery_without_its_account_is_kept_as_a_dead_letter(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    body = b'{"tweet_create_events":[]}'
    assert post_x(client, body).status_code == 200
    letter = session.exec(select(DeadLetter)).one()
    assert letter.raw == body.decode()
    assert "for_user_id" in letter.error
    assert count(session, Message) == 0


def test_an_x_item_in_a_second_different_delivery_is_stored_once(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    first = json.loads(fixture("x_tweet_create.json"))
    assert post_x(client, compact(first)).status_code == 200
    # X redelivers the mention alongside a new reply, in a delivery with different bytes.
    reply = {
        **first["tweet_create_events"][0],
        "id_str": "1800000000000000009",
        "id": 1800000000000000009,
        "text": "@acme Hallo? Noch da?",
        "in_reply_to_status_id_str": "1800000000000000001",
    }
    second = {**first, "tweet_create_events": [reply, *first["tweet_create_events"]]}
    assert post_x(client, compact(second)).status_code == 200
    texts = session.exec(select(Message.text).order_by(col(Message.external_id))).all()
    assert texts == ["@acme meine Bestellung ist verspätet", "@acme Hallo? Noch da?"]


def test_an_x_item_polled_first_and_pushed_later_is_stored_once(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    page = {
        "data": [
            {
                "id": "1800000000000000001",
                "text": "@acme meine Bestellung ist verspätet",
                "author_id": "7001",
                "created_at": "2024-01-15T10:30:00.000Z",
                "conversation_id": "1800000000000000001",
                "edit_history_tweet_ids": ["1800000000000000001"],
            }
        ],
        "includes": {"users": [{"id": "7001", "name": "Jo Doe", "username": "jodoe"}]},
        "meta": {"result_count": 1},
    }
    items, failures = parse_page(page, parse_mention, X_USER_ID)
    assert not failures
    ingest(session=session, account=accounts["x"], item=items[0])
    assert post_x(client, fixture("x_tweet_create.json")).status_code == 200
    assert count(session, Message) == 1
    assert count(session, Conversation) == 1


def test_hostile_text_is_stored_verbatim(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    hostile = (
        '@acme <script>alert("x")</script> {{ 7*7 }} \u202eevil\u202c \'; DROP TABLE message;--'
    )
    payload = json.loads(fixture("x_tweet_create.json"))
    payload["tweet_create_events"][0]["text"] = hostile
    assert post_x(client, compact(payload)).status_code == 200
    # Escaping is the templates' job; the inbox keeps exactly what the customer wrote.
    assert session.exec(select(Message.text)).one() == hostile


# Meta deliveries through the real parsers -------------------------------------------------


def test_a_signed_messenger_message_is_stored(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    response = post_meta(client, fixture("facebook_messenger_dm.json"))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "EVENT_RECEIVED"
    # The delivery receipt in the same entry is no customer message.
    message, conversation, contact = only_message(session)
    assert message.text == "Hallo, mein Paket ist nicht angekommen."
    assert message.account_id == accounts["facebook"].id
    assert conversation.kind == "dm"
    assert (contact.platform, contact.platform_user_id) == ("facebook", "6120019283746")
    assert count(session, DeadLetter) == 0


def test_a_signed_page_comment_is_stored(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    assert post_meta(client, fixture("facebook_feed_comment.json")).status_code == 200
    message, conversation, contact = only_message(session)
    assert message.text == "Ist das Menü vegan?"
    assert message.external_id == "456_789"
    assert conversation.kind == "comment"
    assert (contact.platform_user_id, contact.display_name) == ("5551", "Jo Doe")


def test_our_own_messenger_reply_echoed_back_is_not_an_inbound_message(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    payload = json.loads(fixture("facebook_messenger_dm.json"))
    event = payload["entry"][0]["messaging"][0]
    event["sender"], event["recipient"] = event["recipient"], event["sender"]
    event["message"]["is_echo"] = True
    assert post_meta(client, compact(payload)).status_code == 200
    assert nothing_stored(session)


def test_a_page_we_do_not_run_is_skipped_while_ours_is_stored(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    payload = json.loads(fixture("facebook_messenger_dm.json"))
    stranger = json.loads(json.dumps(payload["entry"][0]).replace(PAGE_ID, "999000999"))
    stranger["messaging"][0]["message"]["mid"] = "m_stranger"
    stranger["messaging"][0]["message"]["text"] = "Nachricht an eine fremde Seite"
    payload["entry"].insert(0, stranger)
    assert post_meta(client, compact(payload)).status_code == 200
    assert session.exec(select(Message.text)).all() == ["Hallo, mein Paket ist nicht angekommen."]
    assert count(session, Contact) == 1
    assert count(session, DeadLetter) == 0


def test_a_page_without_account_stores_nothing(client: FlaskClient, session: Session) -> None:
    make_platform_account(session, "instagram", PAGE_ID)  # same id, other platform
    assert post_meta(client, fixture("facebook_messenger_dm.json")).status_code == 200
    assert post_meta(client, fixture("facebook_feed_comment.json")).status_code == 200
    assert nothing_stored(session)


def test_a_replayed_meta_delivery_is_stored_once(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    body = fixture("facebook_messenger_dm.json")
    for _ in range(3):
        assert post_meta(client, body).status_code == 200
    assert count(session, Message) == 1
    assert count(session, Conversation) == 1
    assert count(session, ResearchOutbox) == 1


def test_a_messenger_message_in_a_second_different_delivery_is_stored_once(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    first = json.loads(fixture("facebook_messenger_dm.json"))
    assert post_meta(client, compact(first)).status_code == 200
    # Meta batches: the same message again, now next to a follow-up, in another entry time.
    second = json.loads(json.dumps(first))
    entry = second["entry"][0]
    entry["time"] += 60_000
    follow_up = json.loads(json.dumps(entry["messaging"][0]))
    follow_up["timestamp"] += 60_000
    follow_up["message"] = {"mid": "m_follow_up", "text": "Hallo? Noch jemand da?"}
    entry["messaging"].append(follow_up)
    assert post_meta(client, compact(second)).status_code == 200
    texts = session.exec(select(Message.text).order_by(col(Message.created_at))).all()
    assert texts == ["Hallo, mein Paket ist nicht angekommen.", "Hallo? Noch jemand da?"]
    assert count(session, Conversation) == 1


def test_a_malformed_meta_event_is_kept_while_the_rest_is_stored(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    payload = json.loads(fixture("facebook_messenger_dm.json"))
    broken = json.loads(json.dumps(payload["entry"][0]["messaging"][0]))
    del broken["message"]["mid"]
    broken["message"]["text"] = "ohne Kennung"
    payload["entry"][0]["messaging"].append(broken)
    assert post_meta(client, compact(payload)).status_code == 200
    assert session.exec(select(Message.text)).all() == ["Hallo, mein Paket ist nicht angekommen."]
    letter = session.exec(select(DeadLetter)).one()
    assert "ohne Kennung" in letter.raw
    assert "mid" in letter.error
    assert (letter.account_id, letter.platform, letter.source) == (
        accounts["facebook"].id,
        "facebook",
        "webhook",
    )


def test_a_meta_entry_without_account_id_is_kept_as_a_dead_letter(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    payload = json.loads(fixture("facebook_messenger_dm.json"))
    orphan = json.loads(json.dumps(payload["entry"][0]))
    del orphan["id"]
    orphan["messaging"][0]["message"] = {"mid": "m_orphan", "text": "verwaist"}
    payload["entry"].append(orphan)
    assert post_meta(client, compact(payload)).status_code == 200
    assert count(session, Message) == 1
    letter = session.exec(select(DeadLetter)).one()
    assert "verwaist" in letter.raw
    assert (letter.account_id, letter.platform) == (None, "facebook")


def test_a_signed_instagram_comment_is_stored(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    assert post_meta(client, fixture("instagram_comment.json")).status_code == 200
    message, conversation, contact = only_message(session)
    assert message.text == "Wann kommt die neue Kollektion?"
    assert message.account_id == accounts["instagram"].id
    assert conversation.kind == "comment"
    assert (contact.platform, contact.handle) == ("instagram", "jo.doe")


def test_a_signed_instagram_direct_message_is_stored(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    assert post_meta(client, fixture("instagram_dm.json")).status_code == 200
    message, conversation, contact = only_message(session)
    assert message.text == "Habt ihr Größe M noch?"
    assert conversation.kind == "dm"
    assert (contact.platform, contact.platform_user_id) == ("instagram", "987654321012345")


def test_an_instagram_delivery_is_not_stored_under_a_facebook_page(
    client: FlaskClient, session: Session
) -> None:
    make_platform_account(session, "facebook", IG_USER_ID)
    assert post_meta(client, fixture("instagram_comment.json")).status_code == 200
    assert nothing_stored(session)


def test_an_item_with_nul_characters_is_stored_on_every_backend(
    client: FlaskClient, session: Session, accounts: dict[str, Account]
) -> None:
    payload = json.loads(fixture("x_tweet_create.json"))
    nul = {**payload["tweet_create_events"][0], "id_str": "1800000000000000003"}
    nul["text"] = "@acme a\u0000b"
    payload["tweet_create_events"].append(nul)
    # A 500 here would make X resend the whole delivery again and again.
    assert post_x(client, compact(payload)).status_code == 200
    stored = session.exec(select(Message.text).order_by(col(Message.external_id))).all()
    # PostgreSQL cannot store NUL in text: ingestion drops it everywhere, the same way.
    assert stored == ["@acme meine Bestellung ist verspätet", "@acme ab"]
    assert session.exec(select(DeadLetter)).first() is None


def test_logs_carry_counts_not_personal_data(
    client: FlaskClient, accounts: dict[str, Account], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="inbox.webhooks")
    assert post_x(client, fixture("x_direct_message.json")).status_code == 200
    assert (
        post_x(client, fixture("x_direct_message.json"), signature="sha256=AAAA").status_code == 403
    )
    assert "1 new" in caplog.text
    assert "refused" in caplog.text
    for personal in ("Rechnung", "jodoe", "Jo Doe", "7001"):
        assert personal not in caplog.text
