"""The agents' inbox as an agent uses it: list, thread, reply, retry, close and reopen."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import MultiFernet
from flask.testing import FlaskClient
from sqlmodel import Session

from connectors import Author
from connectors.demo import parse_payload
from connectors.demo_texts import ACCOUNT_REF
from inbox.ingest import ingest
from inbox.models import (
    Account,
    Conversation,
    ConversationStatus,
    Delivery,
    Message,
    Role,
    User,
)
from tests.conftest import (
    audit_events,
    fresh,
    make_account,
    make_item,
    make_member,
    make_user,
    outbound_messages,
    post_form,
)

AGENT_NAME = "Jana Schneider"


# Helpers -------------------------------------------------------------------------------


def ago(minutes: float) -> datetime:
    """An aware UTC moment some minutes in the past."""
    return datetime.now(UTC) - timedelta(minutes=minutes)


def customer(user_id: str, name: str | None, handle: str | None = None) -> Author:
    """A customer as the platform shows them."""
    return Author(platform_user_id=user_id, handle=handle, display_name=name)


def write_in(
    session: Session,
    account: Account,
    *,
    author: Author,
    text: str,
    minutes_ago: float,
    thread_key: str | None = None,
    **overrides: Any,
) -> Message:
    """A customer's DM arriving in the inbox."""
    item = make_item(
        author=author,
        text=text,
        created_at=ago(minutes_ago),
        thread_key=thread_key or f"dm-{author.platform_user_id}",
        **overrides,
    )
    return ingest(session=session, account=account, item=item).message


def comment_payload(
    *, comment_id: str, text: str, post_text: str, author: dict[str, str]
) -> dict[str, Any]:
    """A comment under one of the company's posts, as the demo platform delivers it."""
    created = ago(15).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {
        "event_type": "comment",
        "id": comment_id,
        "message": text,
        "created_time": created,
        "from": author,
        "parent_id": None,
        "post": {"id": "post-4711", "owner_id": ACCOUNT_REF, "message": post_text},
    }


def conversation(session: Session, conversation_id: int) -> Conversation:
    found = fresh(session).get(Conversation, conversation_id)
    assert found is not None
    return found


def rows(body: str) -> list[tuple[str, str]]:
    """The conversation list's rows as (css class, inner html)."""
    return re.findall(r'<tr class="conversation-row ?([^"]*)"[^>]*>(.*?)</tr>', body, re.S)


def row_names(body: str) -> list[str]:
    """The customer names in the list, top to bottom."""
    return [
        html.unescape(name.strip())
        for name in re.findall(r'<a href="/conversations/\d+"><bdi>(.*?)</bdi></a>', body, re.S)
    ]


def messages(body: str) -> list[tuple[str, str]]:
    """The thread's messages as (inbound|outbound, inner html), top to bottom."""
    return re.findall(r'<li class="message (inbound|outbound)">(.*?)</li>', body, re.S)


def message_text(block: str) -> str:
    found = re.search(r'<p class="text">(.*?)</p>', block, re.S)
    assert found, block
    return html.unescape(found.group(1))


def author_of(block: str) -> str:
    found = re.search(r'<span class="author">(.*?)</span>', block, re.S)
    assert found, block
    return html.unescape(found.group(1))


def delivery_of(block: str) -> str:
    found = re.search(r'<span class="delivery (\w+)">(.*?)</span>', block, re.S)
    assert found, block
    return html.unescape(found.group(2))


def textarea(body: str) -> str:
    found = re.search(r'<textarea id="reply-text"[^>]*>(.*?)</textarea>', body, re.S)
    assert found, "no reply textarea"
    return html.unescape(found.group(1))


def flashes(body: str) -> list[str]:
    return [
        html.unescape(text)
        for text in re.findall(r'<p class="flash \w+" role="status">(.*?)</p>', body, re.S)
    ]


def thread_url(conversation_id: int) -> str:
    return f"/conversations/{conversation_id}"


def reply(client: FlaskClient, conversation_id: int, text: str) -> Any:
    """Type a reply into the thread's composer and send it."""
    url = thread_url(conversation_id)
    return post_form(client, url, f"{url}/reply", {"text": text})


def set_status(client: FlaskClient, conversation_id: int, status: str) -> Any:
    url = thread_url(conversation_id)
    return post_form(client, url, f"{url}/status", {"status": status})


@pytest.fixture
def agent(session: Session) -> User:
    return make_user(session, role=Role.agent, name=AGENT_NAME)


# The conversation list -----------------------------------------------------------------


def test_empty_inbox_says_so(agent_client: FlaskClient) -> None:
    body = agent_client.get("/conversations").get_data(as_text=True)

    assert "No conversations here yet." in body
    assert rows(body) == []


def test_closed_view_lists_closed_conversations_only(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    closed = write_in(session, account, author=customer("1", "Zu Gemacht"), text="A", minutes_ago=9)
    write_in(session, account, author=customer("2", "Noch Offen"), text="B", minutes_ago=8)
    assert set_status(agent_client, closed.conversation_id, "closed").status_code == 302

    closed_view = agent_client.get("/conversations?view=closed").get_data(as_text=True)
    open_view = agent_client.get("/conversations").get_data(as_text=True)

    assert row_names(closed_view) == ["Zu Gemacht"]
    assert row_names(open_view) == ["Noch Offen"]
    assert 'href="/conversations?view=closed" aria-current="page"' in closed_view


# The thread ----------------------------------------------------------------------------


def test_thread_shows_messages_in_the_order_they_were_written(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    jo = customer("7001", "Jo Doe", "jodoe")
    # The later message arrives first: the thread still reads in writing order.
    second = write_in(session, account, author=jo, text="Hallo? Noch da?", minutes_ago=10)
    write_in(session, account, author=jo, text="Wo bleibt mein Paket?", minutes_ago=25)
    assert reply(agent_client, second.conversation_id, "Wir sehen nach!").status_code == 302

    body = agent_client.get(thread_url(second.conversation_id)).get_data(as_text=True)

    shown = [(direction, message_text(block)) for direction, block in messages(body)]
    assert shown == [
        ("inbound", "Wo bleibt mein Paket?"),
        ("inbound", "Hallo? Noch da?"),
        ("outbound", "Wir sehen nach!"),
    ]
    authors = [author_of(block) for _, block in messages(body)]
    assert authors == ["Jo Doe", "Jo Doe", AGENT_NAME]
    assert "<h1><bdi>Jo Doe</bdi>" in body
    assert "Direct message · Quendelmarkt · open" in body


def test_thread_shows_the_post_a_comment_was_written_under(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    item = parse_payload(
        comment_payload(
            comment_id="cm-test-000001",
            text="Gibt es die Jacke auch in Blau?",
            post_text="Neu im Shop: die Regenjacke Quendel",
            author={"id": "8001", "username": "kalle", "name": "Kalle Kommentar"},
        )
    )
    message = ingest(session=session, account=account, item=item).message

    body = agent_client.get(thread_url(message.conversation_id)).get_data(as_text=True)

    (only,) = messages(body)
    assert message_text(only[1]) == "Gibt es die Jacke auch in Blau?"
    assert "Comment" in body
    assert "On the post: Neu im Shop: die Regenjacke Quendel" in only[1]


def test_viewing_a_thread_is_audited(
    agent_client: FlaskClient, session: Session, account: Account, agent: User
) -> None:
    message = write_in(session, account, author=customer("1", "Jo Doe"), text="Hi", minutes_ago=1)

    assert agent_client.get(thread_url(message.conversation_id)).status_code == 200

    (event,) = audit_events(session, "view_conversation")
    assert event.user_id == agent.id
    assert event.target_type == "conversation"
    assert event.target_id == message.conversation_id


def test_listing_does_not_count_as_viewing_a_thread(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    write_in(session, account, author=customer("1", "Jo Doe"), text="Hi", minutes_ago=1)

    agent_client.get("/conversations")
    agent_client.get("/conversations/rows")

    assert audit_events(session, "view_conversation") == []


def test_unknown_conversation_is_not_found(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    message = write_in(session, account, author=customer("1", "Jo Doe"), text="Hi", minutes_ago=1)
    missing = message.conversation_id + 1000

    not_found = agent_client.get(thread_url(missing))
    assert not_found.status_code == 404
    assert "Not found" in not_found.get_data(as_text=True)
    home = "/conversations"
    replied = post_form(agent_client, home, f"{home}/{missing}/reply", {"text": "Hallo"})
    closed = post_form(agent_client, home, f"{home}/{missing}/status", {"status": "closed"})
    assert replied.status_code == closed.status_code == 404
    assert outbound_messages(session) == []
    assert audit_events(session, "view_conversation") == []


# Replying ------------------------------------------------------------------------------


def test_reply_round_trip(
    agent_client: FlaskClient, session: Session, account: Account, agent: User
) -> None:
    inbound = write_in(
        session,
        account,
        author=customer("7001", "Jo Doe", "jodoe"),
        text="Wo bleibt mein Paket?",
        minutes_ago=12,
    )
    conversation_id = inbound.conversation_id
    assert conversation(session, conversation_id).sla_due_at is not None
    text = "Hallo Jo, Ihr Paket ist heute im Verteilzentrum angekommen."

    response = reply(agent_client, conversation_id, text)

    assert response.status_code == 302
    assert response.headers["Location"].endswith(thread_url(conversation_id))
    body = agent_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Reply sent." in flashes(body)
    last_direction, last_block = messages(body)[-1]
    assert last_direction == "outbound"
    assert message_text(last_block) == text
    assert author_of(last_block) == AGENT_NAME
    assert delivery_of(last_block) == "sent"
    assert "Retry" not in last_block
    assert textarea(body) == ""

    (stored,) = outbound_messages(session)
    assert stored.text == text
    assert stored.author_user_id == agent.id
    assert stored.author_contact_id is None
    assert stored.delivery == Delivery.sent
    assert stored.external_id and stored.external_id.startswith("demo-out-")
    assert stored.attempts == 1
    assert stored.raw["in_reply_to"] == inbound.external_id
    after = conversation(session, conversation_id)
    assert after.first_response_at is not None
    assert after.sla_due_at is None
    (event,) = audit_events(session, "reply")
    assert event.user_id == agent.id
    assert event.target_id == conversation_id


def test_answered_conversation_is_no_longer_overdue(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    late = write_in(session, account, author=customer("1", "Anton A"), text="?", minutes_ago=90)
    write_in(session, account, author=customer("2", "Berta B"), text="?", minutes_ago=20)
    reply(agent_client, late.conversation_id, "Entschuldigung für die Wartezeit!")

    body = agent_client.get("/conversations").get_data(as_text=True)

    # Answered: no longer due, so it moves behind the waiting customer and loses the badge.
    assert row_names(body) == ["Berta B", "Anton A"]
    assert "overdue" not in body
    assert "Entschuldigung für die Wartezeit!" in rows(body)[1][1]


def test_first_response_time_is_kept_on_later_replies(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    message = write_in(session, account, author=customer("1", "Jo Doe"), text="?", minutes_ago=5)
    reply(agent_client, message.conversation_id, "Erste Antwort")
    first = conversation(session, message.conversation_id).first_response_at

    reply(agent_client, message.conversation_id, "Zweite Antwort")

    assert first is not None
    assert conversation(session, message.conversation_id).first_response_at == first
    assert [m.text for m in outbound_messages(session)] == ["Erste Antwort", "Zweite Antwort"]


def test_refused_reply_is_kept_to_retry_and_retry_sends_it(
    agent_client: FlaskClient, session: Session, fernet: MultiFernet, agent: User
) -> None:
    account = make_account(session, fernet, fail_replies=True)
    make_member(session, agent, account)
    inbound = write_in(
        session, account, author=customer("7001", "Jo Doe"), text="Hallo?", minutes_ago=10
    )
    conversation_id = inbound.conversation_id
    text = "Wir melden uns gleich."

    response = reply(agent_client, conversation_id, text)

    assert response.status_code == 302
    body = agent_client.get(thread_url(conversation_id)).get_data(as_text=True)
    assert "The platform did not accept the reply; it is kept to retry." in flashes(body)
    direction, block = messages(body)[-1]
    assert direction == "outbound"
    assert message_text(block) == text
    assert delivery_of(block) == "not sent"
    assert "Platform said: Demo platform rejected the reply (simulated outage)" in block
    (failed,) = outbound_messages(session)
    retry_url = f"/conversations/{conversation_id}/messages/{failed.id}/retry"
    assert f'action="{retry_url}"' in block
    assert ">Retry</button>" in block
    assert failed.delivery == Delivery.failed
    assert failed.attempts == 1
    assert failed.external_id is None
    assert failed.delivery_error == "Demo platform rejected the reply (simulated outage)"
    waiting = conversation(session, conversation_id)
    assert waiting.first_response_at is None
    assert waiting.sla_due_at is not None

    # The outage is over: the platform accepts replies again.
    account.settings = {}
    session.add(account)
    session.commit()
    response = post_form(agent_client, thread_url(conversation_id), retry_url, {})

    assert response.status_code == 302
    body = agent_client.get(thread_url(conversation_id)).get_data(as_text=True)
    assert "Reply sent." in flashes(body)
    direction, block = messages(body)[-1]
    assert delivery_of(block) == "sent"
    assert "Retry" not in block
    assert "Platform said" not in block
    (sent,) = outbound_messages(session)
    assert sent.id == failed.id
    assert sent.delivery == Delivery.sent
    assert sent.attempts == 2
    assert sent.external_id and sent.external_id.startswith("demo-out-")
    assert sent.delivery_error is None
    answered = conversation(session, conversation_id)
    assert answered.first_response_at is not None
    assert answered.sla_due_at is None


def test_retry_during_the_outage_stays_failed(
    agent_client: FlaskClient, session: Session, fernet: MultiFernet, agent: User
) -> None:
    account = make_account(session, fernet, fail_replies=True)
    make_member(session, agent, account)
    inbound = write_in(session, account, author=customer("1", "Jo Doe"), text="?", minutes_ago=3)
    reply(agent_client, inbound.conversation_id, "Moment bitte")
    (failed,) = outbound_messages(session)
    url = thread_url(inbound.conversation_id)

    post_form(agent_client, url, f"{url}/messages/{failed.id}/retry", {})

    (still,) = outbound_messages(session)
    assert still.delivery == Delivery.failed
    assert still.attempts == 2
    body = agent_client.get(url).get_data(as_text=True)
    assert ">Retry</button>" in body


def test_retry_of_a_message_from_another_conversation_is_not_found(
    agent_client: FlaskClient, session: Session, fernet: MultiFernet, agent: User
) -> None:
    account = make_account(session, fernet, fail_replies=True)
    make_member(session, agent, account)
    one = write_in(session, account, author=customer("1", "Jo Doe"), text="?", minutes_ago=3)
    other = write_in(session, account, author=customer("2", "Ann Other"), text="?", minutes_ago=3)
    reply(agent_client, one.conversation_id, "Moment bitte")
    (failed,) = outbound_messages(session)
    url = thread_url(other.conversation_id)

    response = post_form(agent_client, url, f"{url}/messages/{failed.id}/retry", {})

    assert response.status_code == 404
    assert outbound_messages(session)[0].attempts == 1


@pytest.mark.parametrize("text", ["", "   \n  "])
def test_empty_reply_is_refused(
    agent_client: FlaskClient, session: Session, account: Account, text: str
) -> None:
    inbound = write_in(session, account, author=customer("1", "Jo Doe"), text="?", minutes_ago=3)

    response = reply(agent_client, inbound.conversation_id, text)

    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert flashes(body) == ["The reply was not sent: it is empty."]
    assert textarea(body) == text
    assert outbound_messages(session) == []
    assert audit_events(session, "reply") == []
    assert conversation(session, inbound.conversation_id).sla_due_at is not None


def test_over_long_reply_is_refused_and_the_draft_is_kept(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    inbound = write_in(session, account, author=customer("1", "Jo Doe"), text="?", minutes_ago=3)
    draft = "Liebe Kundin, wir prüfen Ihren Fall & melden uns <bald>. " * 40
    assert len(draft.strip()) > 2000

    response = reply(agent_client, inbound.conversation_id, draft)

    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert textarea(body) == draft
    assert "<bald>" not in body
    assert outbound_messages(session) == []
    assert audit_events(session, "reply") == []
    # The agent is told what to fix: how long the reply is and what the platform allows.
    assert flashes(body) == [
        f"The reply was not sent: it has {len(draft.strip())} characters, the platform allows 2000."
    ]


def test_reply_of_exactly_the_platform_limit_is_sent(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    inbound = write_in(session, account, author=customer("1", "Jo Doe"), text="?", minutes_ago=3)
    text = ("Danke für Ihre Geduld. " * 100)[:2000]

    response = reply(agent_client, inbound.conversation_id, text)

    assert response.status_code == 302
    (stored,) = outbound_messages(session)
    assert len(stored.text) == 2000
    assert stored.delivery == Delivery.sent


# Closing and reopening -----------------------------------------------------------------


def test_close_and_reopen(
    agent_client: FlaskClient, session: Session, account: Account, agent: User
) -> None:
    inbound = write_in(session, account, author=customer("1", "Jo Doe"), text="?", minutes_ago=3)
    conversation_id = inbound.conversation_id

    response = set_status(agent_client, conversation_id, "closed")

    assert response.status_code == 302
    assert response.headers["Location"].endswith(thread_url(conversation_id))
    body = agent_client.get(thread_url(conversation_id)).get_data(as_text=True)
    assert '<button name="status" value="open">Reopen</button>' in body
    assert "· closed</p>" in body
    closed = conversation(session, conversation_id)
    assert closed.status == ConversationStatus.closed
    assert closed.closed_at is not None
    assert row_names(agent_client.get("/conversations").get_data(as_text=True)) == []
    closed_view = agent_client.get("/conversations?view=closed").get_data(as_text=True)
    assert row_names(closed_view) == ["Jo Doe"]

    response = set_status(agent_client, conversation_id, "open")

    assert response.status_code == 302
    body = agent_client.get(thread_url(conversation_id)).get_data(as_text=True)
    assert '<button name="status" value="closed" data-shortcut="close">Close</button>' in body
    reopened = conversation(session, conversation_id)
    assert reopened.status == ConversationStatus.open
    assert reopened.closed_at is None
    assert row_names(agent_client.get("/conversations").get_data(as_text=True)) == ["Jo Doe"]
    closed_view = agent_client.get("/conversations?view=closed").get_data(as_text=True)
    assert row_names(closed_view) == []
    assert [e.user_id for e in audit_events(session, "status_closed")] == [agent.id]
    assert [e.user_id for e in audit_events(session, "status_open")] == [agent.id]


def test_unknown_status_is_refused(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    inbound = write_in(session, account, author=customer("1", "Jo Doe"), text="?", minutes_ago=3)

    response = set_status(agent_client, inbound.conversation_id, "deleted")

    assert response.status_code == 400
    assert conversation(session, inbound.conversation_id).status == ConversationStatus.open


def test_customer_writing_again_reopens_a_closed_conversation(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    jo = customer("1", "Jo Doe")
    first = write_in(session, account, author=jo, text="Danke!", minutes_ago=30)
    set_status(agent_client, first.conversation_id, "closed")

    write_in(session, account, author=jo, text="Doch noch eine Frage", minutes_ago=1)

    body = agent_client.get("/conversations").get_data(as_text=True)
    assert row_names(body) == ["Jo Doe"]
    assert "Doch noch eine Frage" in body


# Hostile text --------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
BOLD_NAME = "<b>Fett</b> Kunde"


def assert_escaped(body: str) -> None:
    """Customer-controlled markup appears as text, never as markup."""
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "<img" not in body
    assert "&lt;b&gt;Fett&lt;/b&gt; Kunde" in body
    assert "<b>" not in body


@pytest.fixture
def hostile(session: Session, account: Account) -> list[int]:
    """Two conversations whose customer-controlled fields hold markup; returns their ids."""
    name = customer("666", BOLD_NAME, "evil")
    script = write_in(session, account, author=name, text=SCRIPT, minutes_ago=20)
    img = write_in(
        session, account, author=name, text=IMG, minutes_ago=10, thread_key="dm-666-second"
    )
    return [script.conversation_id, img.conversation_id]


def test_hostile_text_is_escaped_in_the_list(agent_client: FlaskClient, hostile: list[int]) -> None:
    assert_escaped(agent_client.get("/conversations").get_data(as_text=True))


def test_hostile_text_is_escaped_in_the_rows(agent_client: FlaskClient, hostile: list[int]) -> None:
    assert_escaped(agent_client.get("/conversations/rows").get_data(as_text=True))


def test_hostile_text_is_escaped_in_the_thread(
    agent_client: FlaskClient, session: Session, account: Account, hostile: list[int]
) -> None:
    # Both texts in one thread, so one page shows all of them.
    write_in(
        session,
        account,
        author=customer("666", BOLD_NAME, "evil"),
        text=SCRIPT,
        minutes_ago=5,
        thread_key="dm-666-second",
    )

    body = agent_client.get(thread_url(hostile[1])).get_data(as_text=True)

    assert_escaped(body)
    assert f"<title>{html.escape(BOLD_NAME, quote=False)} · socialcare</title>" in body


def test_agent_reply_with_markup_is_shown_as_text(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    inbound = write_in(session, account, author=customer("1", "Jo Doe"), text="?", minutes_ago=3)
    text = "Das ist <b>wirklich</b> erledigt"

    reply(agent_client, inbound.conversation_id, text)

    thread = agent_client.get(thread_url(inbound.conversation_id)).get_data(as_text=True)
    listing = agent_client.get("/conversations").get_data(as_text=True)
    for body in (thread, listing):
        assert "Das ist &lt;b&gt;wirklich&lt;/b&gt; erledigt" in body
        assert "<b>" not in body
    (stored,) = outbound_messages(session)
    assert stored.text == text


def test_hostile_post_text_of_a_comment_is_escaped(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    item = parse_payload(
        comment_payload(
            comment_id="cm-test-000666",
            text="Schaut euch das an",
            post_text='Angebot <iframe src="https://evil.example/"></iframe>',
            author={"id": "8666", "username": "iframer", "name": "I. Framer"},
        )
    )
    message = ingest(session=session, account=account, item=item).message

    body = agent_client.get(thread_url(message.conversation_id)).get_data(as_text=True)

    assert "<iframe" not in body
    assert "On the post: Angebot &lt;iframe src=&#34;https://evil.example/&#34;&gt;" in body
