"""Service levels: snoozed conversations wake up, languages are detected, response times kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import MultiFernet
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from connectors import Author
from inbox.ingest import ingest
from inbox.models import Account, Conversation, ConversationStatus, Message, Role, User
from tests.conftest import make_account, make_item, make_member, make_user, post_form

# The demo platform stamps replies with our clock; a test takes a few seconds at most.
SLACK = 10


def ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def write_in(
    session: Session, account: Account, *, text: str = "Hallo?", minutes_ago: float = 5, **kw: Any
) -> Message:
    """A message from Jo Doe in their one DM thread."""
    item = make_item(
        author=Author(platform_user_id="7001", handle="jodoe", display_name="Jo Doe"),
        text=text,
        created_at=ago(minutes_ago),
        thread_key="dm-7001",
        **kw,
    )
    return ingest(session=session, account=account, item=item).message


def reload(session: Session, conversation_id: int) -> Conversation:
    session.commit()
    session.expire_all()
    found = session.get(Conversation, conversation_id)
    assert found is not None
    return found


def thread_url(conversation_id: int) -> str:
    return f"/conversations/{conversation_id}"


def reply(client: FlaskClient, conversation_id: int, text: str = "Wir kümmern uns.") -> Any:
    url = thread_url(conversation_id)
    return post_form(client, url, f"{url}/reply", {"text": text})


def act(client: FlaskClient, conversation_id: int, action: str, data: dict[str, str]) -> Any:
    url = thread_url(conversation_id)
    return post_form(client, url, f"{url}/{action}", data)


@pytest.fixture
def agent(session: Session) -> User:
    return make_user(session, role=Role.agent)


def close_to(value: int | None, seconds: float) -> bool:
    return value is not None and abs(value - seconds) <= SLACK


# Snoozed conversations wake up ---------------------------------------------------------


def test_a_new_customer_message_wakes_a_snoozed_conversation(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    conversation_id = write_in(session, account, minutes_ago=20).conversation_id
    act(agent_client, conversation_id, "status", {"status": "pending"})
    act(agent_client, conversation_id, "snooze", {"preset": "tomorrow"})
    assert reload(session, conversation_id).snoozed_until is not None

    write_in(session, account, text="Hallo, noch jemand da?", minutes_ago=1)

    woken = reload(session, conversation_id)
    assert woken.snoozed_until is None
    assert woken.status == ConversationStatus.open
    body = agent_client.get(thread_url(conversation_id)).get_data(as_text=True)
    assert "Unsnooze" not in body
    assert 'class="flag snoozed"' not in body
    assert "Hallo, noch jemand da?" in body


def test_a_duplicate_delivery_does_not_wake_a_snoozed_conversation(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    first = write_in(session, account, minutes_ago=20)
    act(agent_client, first.conversation_id, "snooze", {"preset": "hour"})

    # The platform delivers the same message again (a webhook retry): nothing new to read.
    again = make_item(
        external_id=first.external_id,
        author=Author(platform_user_id="7001", handle="jodoe", display_name="Jo Doe"),
        thread_key="dm-7001",
    )
    assert not ingest(session=session, account=account, item=again).created

    assert reload(session, first.conversation_id).snoozed_until is not None


# Language ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hallo, wo bleibt mein Paket? Ich warte schon seit einer Woche.", "de"),
        ("Hi, where is my parcel? I have been waiting for a week now.", "en"),
        ("?", None),
        ("👍", None),
    ],
)
def test_language_of_the_first_customer_message(
    session: Session, account: Account, text: str, language: str | None
) -> None:
    message = write_in(session, account, text=text)

    assert reload(session, message.conversation_id).language == language


def test_later_messages_do_not_change_the_language(session: Session, account: Account) -> None:
    first = write_in(session, account, text="Wo ist meine Bestellung? Bitte um Antwort.")

    write_in(session, account, text="Hello? Is anyone there? Please answer me.", minutes_ago=1)

    assert reload(session, first.conversation_id).language == "de"


# Response times ------------------------------------------------------------------------


def test_response_times_over_two_waiting_periods(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    # The customer writes twice while waiting: the wait began with the first message.
    conversation_id = write_in(session, account, minutes_ago=60).conversation_id
    write_in(session, account, text="Hallo???", minutes_ago=50)

    reply(agent_client, conversation_id)

    answered = reload(session, conversation_id)
    assert close_to(answered.first_response_seconds, 3600)
    assert answered.response_count == 1
    assert close_to(answered.response_seconds_total, 3600)
    assert answered.first_response_at is not None
    assert answered.sla_due_at is None

    # A second reply in a row answers no one who was waiting.
    reply(agent_client, conversation_id, "Nachtrag: Die Sendungsnummer folgt.")
    assert reload(session, conversation_id).response_count == 1

    write_in(session, account, text="Danke, und wann kommt es?", minutes_ago=10)
    reply(agent_client, conversation_id, "Morgen.")

    twice = reload(session, conversation_id)
    assert twice.response_count == 2
    assert close_to(twice.response_seconds_total, 3600 + 600)
    # The first response stays what it was.
    assert twice.first_response_seconds == answered.first_response_seconds
    assert twice.first_response_at == answered.first_response_at


def test_response_time_uses_the_accounts_own_target(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    account.sla_minutes = 240
    session.add(account)
    session.commit()
    conversation_id = write_in(session, account, minutes_ago=90).conversation_id

    reply(agent_client, conversation_id)

    answered = reload(session, conversation_id)
    assert close_to(answered.response_seconds_total, 90 * 60)
    assert close_to(answered.first_response_seconds, 90 * 60)


def test_a_refused_reply_is_no_response_until_it_is_delivered(
    agent_client: FlaskClient, session: Session, fernet: MultiFernet, agent: User
) -> None:
    account = make_account(session, fernet, fail_replies=True)
    make_member(session, agent, account)
    conversation_id = write_in(session, account, minutes_ago=30).conversation_id

    reply(agent_client, conversation_id)

    waiting = reload(session, conversation_id)
    assert (waiting.response_count, waiting.response_seconds_total) == (0, 0)
    assert waiting.first_response_seconds is None

    account.settings = {}
    session.add(account)
    session.commit()
    failed = session.exec(select(Message).where(col(Message.author_user_id).is_not(None))).one()
    url = thread_url(conversation_id)
    post_form(agent_client, url, f"{url}/messages/{failed.id}/retry", {})

    answered = reload(session, conversation_id)
    assert answered.response_count == 1
    assert close_to(answered.response_seconds_total, 30 * 60)
    assert close_to(answered.first_response_seconds, 30 * 60)
