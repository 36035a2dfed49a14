"""The reply composer as agents use it: posting account, signature, presence and collisions."""

from __future__ import annotations

import html
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from connectors import Author
from inbox.config import multi_fernet
from inbox.db import databases
from inbox.ingest import ingest
from inbox.models import Account, Conversation, Delivery, Message, Role, User
from inbox.replies import send_reply
from inbox.workflow_models import AccountMember, Presence
from tests.conftest import (
    audit_events,
    csrf_token,
    fresh,
    login,
    make_account,
    make_item,
    make_member,
    make_user,
    outbound_messages,
)

JO = Author(platform_user_id="7001", handle="jodoe", display_name="Jo Doe")
HOSTILE_NAME = '<img src=x onerror="alert(1)">'


def write_in(session: Session, account: Account, text: str, *, minutes_ago: float = 3) -> Message:
    """A customer's DM arriving in the inbox."""
    item = make_item(
        author=JO, text=text, created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago)
    )
    return ingest(session=session, account=account, item=item).message


def textarea(body: str) -> str:
    found = re.search(r'<textarea id="reply-text"[^>]*>(.*?)</textarea>', body, re.S)
    assert found, "no reply textarea"
    return html.unescape(found.group(1))


def seen_field(body: str) -> str:
    found = re.search(r'<input type="hidden" name="seen" value="(\d+)">', body)
    assert found, "no seen field in the composer"
    return found.group(1)


def collision_warning(body: str) -> str | None:
    found = re.search(r'<div class="collision" data-collision role="alert">(.*?)</div>', body, re.S)
    return html.unescape(found.group(1)) if found else None


def presence_lines(body: str) -> list[str]:
    found = re.search(r'<div id="presence"[^>]*>(.*?)</div>', body, re.S)
    assert found, "no presence box"
    return [html.unescape(t) for t in re.findall(r"<p[^>]*>(.*?)</p>", found.group(1), re.S)]


def open_composer(client: FlaskClient, conversation_id: int) -> dict[str, str]:
    """The composer's hidden fields as the thread page renders them."""
    body = client.get(f"/conversations/{conversation_id}").get_data(as_text=True)
    return {"csrf_token": csrf_token(client, "/login"), "seen": seen_field(body)}


def send(client: FlaskClient, conversation_id: int, fields: dict[str, str], text: str) -> Any:
    """Submit the composer as it was rendered, with the agent's text."""
    return client.post(f"/conversations/{conversation_id}/reply", data={**fields, "text": text})


def beat(client: FlaskClient, conversation_id: int, *, typing: bool = False) -> Any:
    """One presence heartbeat, as composer.js sends it."""
    return client.post(
        f"/conversations/{conversation_id}/presence",
        data={"typing": "1" if typing else "0"},
        headers={"X-CSRFToken": csrf_token(client, "/login")},
    )


@pytest.fixture
def agent(session: Session) -> User:
    return make_user(session, role=Role.agent, name="Jana Schneider")


@pytest.fixture
def colleague_client(app: Flask, session: Session) -> FlaskClient:
    """A second browser, in which the colleague Lena is logged in."""
    lena = make_user(session, role=Role.agent, name="Lena Berg")
    for account in session.exec(select(Account)).all():
        make_member(session, lena, account)
    other = app.test_client()
    assert login(other, lena.email).status_code == 302
    return other


def sign(session: Session, account: Account, user: User, signature: str) -> None:
    assert account.id is not None and user.id is not None
    session.merge(AccountMember(account_id=account.id, user_id=user.id, signature=signature))
    session.commit()


# Posting account, limit and signature ---------------------------------------------------


def test_composer_names_the_official_account_and_the_platform_limit(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    inbound = write_in(session, account, "Hallo?")

    body = agent_client.get(f"/conversations/{inbound.conversation_id}").get_data(as_text=True)

    assert "Reply as Quendelmarkt (@quendelmarkt_hilft) on Demo" in html.unescape(body)
    assert 'data-limit="2000"' in body
    assert "0 of 2000 characters" in body
    assert "Your signature" not in body


def test_signature_is_shown_appended_and_counted(
    agent_client: FlaskClient, session: Session, account: Account, agent: User
) -> None:
    sign(session, account, agent, "^JS")
    inbound = write_in(session, account, "Hallo?")
    conversation_id = inbound.conversation_id
    fields = open_composer(agent_client, conversation_id)
    body = agent_client.get(f"/conversations/{conversation_id}").get_data(as_text=True)
    assert "Your signature ^JS is added at the end." in html.unescape(body)
    assert 'data-signature="^JS"' in body

    # 1997 characters fit alone, but not with " ^JS": the draft stays for the agent to shorten.
    too_long = "x" * 1997
    refused = send(agent_client, conversation_id, fields, too_long)
    assert refused.status_code == 422
    assert textarea(refused.get_data(as_text=True)) == too_long
    assert "it has 2001 characters, the platform allows 2000" in html.unescape(
        refused.get_data(as_text=True)
    )
    assert outbound_messages(session) == []

    sent = send(agent_client, conversation_id, fields, "Wir kümmern uns darum.")
    assert sent.status_code == 302
    (message,) = outbound_messages(session)
    assert message.text == "Wir kümmern uns darum. ^JS"
    assert message.delivery == Delivery.sent


def test_signature_is_not_doubled_when_the_text_already_ends_with_it(
    agent_client: FlaskClient, session: Session, account: Account, agent: User
) -> None:
    sign(session, account, agent, "^JS")
    inbound = write_in(session, account, "Hallo?")
    fields = open_composer(agent_client, inbound.conversation_id)

    send(agent_client, inbound.conversation_id, fields, "Gern geschehen! ^JS")

    assert [m.text for m in outbound_messages(session)] == ["Gern geschehen! ^JS"]


def test_signature_belongs_to_the_account(
    agent_client: FlaskClient, session: Session, fernet: MultiFernet, agent: User
) -> None:
    other = Account(
        platform="demo",
        display_name="Andere",
        platform_account_id="other",
        credentials_encrypted=b"",
    )
    session.add(other)
    session.commit()
    sign(session, other, agent, "^JS")
    account = make_account(session, fernet)
    make_member(session, agent, account)
    inbound = write_in(session, account, "Hallo?")
    fields = open_composer(agent_client, inbound.conversation_id)

    send(agent_client, inbound.conversation_id, fields, "Hallo Jo")

    assert [m.text for m in outbound_messages(session)] == ["Hallo Jo"]


def test_refused_reply_still_retries_after_the_composer_changes(
    agent_client: FlaskClient, session: Session, fernet: MultiFernet, agent: User
) -> None:
    account = make_account(session, fernet, fail_replies=True)
    make_member(session, agent, account)
    inbound = write_in(session, account, "Hallo?")
    fields = open_composer(agent_client, inbound.conversation_id)
    send(agent_client, inbound.conversation_id, fields, "Antwort")
    (failed,) = outbound_messages(session)
    assert failed.delivery == Delivery.failed

    account.settings = {**account.settings, "fail_replies": False}
    session.add(account)
    session.commit()
    url = f"/conversations/{inbound.conversation_id}/messages/{failed.id}/retry"
    response = agent_client.post(url, data={"csrf_token": fields["csrf_token"]})

    assert response.status_code == 302
    (retried,) = outbound_messages(session)
    assert retried.delivery == Delivery.sent


# Collision detection ----------------------------------------------------------------------


def test_reply_is_held_back_when_the_customer_wrote_again(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    first = write_in(session, account, "Wo ist mein Paket?", minutes_ago=5)
    fields = open_composer(agent_client, first.conversation_id)
    write_in(session, account, "Hat sich erledigt, ist da!", minutes_ago=1)

    held = send(agent_client, first.conversation_id, fields, "Wir sehen nach.")

    assert held.status_code == 409
    body = held.get_data(as_text=True)
    assert collision_warning(body) is not None
    assert "New messages arrived since you started writing" in (collision_warning(body) or "")
    assert textarea(body) == "Wir sehen nach."
    assert "Hat sich erledigt, ist da!" in body
    assert outbound_messages(session) == []

    # Sent anyway: the agent confirms with the warning's own button.
    sent = send(agent_client, first.conversation_id, {**fields, "confirm": "1"}, "Wir sehen nach.")
    assert sent.status_code == 302
    assert [m.text for m in outbound_messages(session)] == ["Wir sehen nach."]


def test_after_reading_the_new_messages_sending_again_works(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    first = write_in(session, account, "Frage", minutes_ago=5)
    fields = open_composer(agent_client, first.conversation_id)
    write_in(session, account, "Noch eine Frage", minutes_ago=1)
    held = send(agent_client, first.conversation_id, fields, "Antwort")
    assert held.status_code == 409

    # The warning page shows the new messages and remembers that they were seen.
    fields["seen"] = seen_field(held.get_data(as_text=True))
    again = send(agent_client, first.conversation_id, fields, "Antwort auf beides")

    assert again.status_code == 302
    assert [m.text for m in outbound_messages(session)] == ["Antwort auf beides"]


def test_reply_is_held_back_when_a_colleague_answered(
    agent_client: FlaskClient, colleague_client: FlaskClient, session: Session, account: Account
) -> None:
    first = write_in(session, account, "Frage", minutes_ago=5)
    mine = open_composer(agent_client, first.conversation_id)
    theirs = open_composer(colleague_client, first.conversation_id)

    assert (
        send(colleague_client, first.conversation_id, theirs, "Lena antwortet").status_code == 302
    )
    held = send(agent_client, first.conversation_id, mine, "Jana antwortet")

    assert held.status_code == 409
    assert collision_warning(held.get_data(as_text=True)) is not None
    assert [m.text for m in outbound_messages(session)] == ["Lena antwortet"]


def test_no_warning_when_nothing_new_arrived(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    first = write_in(session, account, "Frage", minutes_ago=5)
    fields = open_composer(agent_client, first.conversation_id)
    assert send(agent_client, first.conversation_id, fields, "Eins").status_code == 302

    # The agent's own earlier reply is no news to them.
    assert send(agent_client, first.conversation_id, fields, "Zwei").status_code == 302
    body = agent_client.get(f"/conversations/{first.conversation_id}").get_data(as_text=True)
    assert collision_warning(body) is None
    assert [m.text for m in outbound_messages(session)] == ["Eins", "Zwei"]


# Presence ---------------------------------------------------------------------------------


def test_presence_shows_colleagues_but_not_oneself(
    agent_client: FlaskClient, colleague_client: FlaskClient, session: Session, account: Account
) -> None:
    first = write_in(session, account, "Frage")
    conversation_id = first.conversation_id

    alone = beat(agent_client, conversation_id)
    assert alone.status_code == 200
    assert alone.get_json() == {"others": []}

    assert beat(colleague_client, conversation_id).get_json() == {
        "others": [{"name": "Jana Schneider", "typing": False}]
    }
    assert beat(agent_client, conversation_id).get_json() == {
        "others": [{"name": "Lena Berg", "typing": False}]
    }
    body = agent_client.get(f"/conversations/{conversation_id}").get_data(as_text=True)
    assert presence_lines(body) == ["Lena Berg is viewing"]


def test_presence_tells_who_is_typing(
    agent_client: FlaskClient, colleague_client: FlaskClient, session: Session, account: Account
) -> None:
    conversation_id = write_in(session, account, "Frage").conversation_id

    beat(colleague_client, conversation_id, typing=True)

    assert beat(agent_client, conversation_id).get_json() == {
        "others": [{"name": "Lena Berg", "typing": True}]
    }
    body = agent_client.get(f"/conversations/{conversation_id}").get_data(as_text=True)
    assert presence_lines(body) == ["Lena Berg is typing…"]
    assert 'data-typing="{name} is typing…"' in body


def test_stale_presence_is_ignored_and_old_rows_are_cleaned(
    agent_client: FlaskClient, session: Session, account: Account, agent: User
) -> None:
    conversation_id = write_in(session, account, "Frage").conversation_id
    gone = make_user(session, role=Role.agent, name="Gestern Weg")
    left = make_user(session, role=Role.agent, name="Eben Weg")
    now = datetime.now(UTC)
    session.add_all(
        [
            Presence(
                conversation_id=conversation_id, user_id=gone.id, seen_at=now - timedelta(hours=2)
            ),
            Presence(
                conversation_id=conversation_id,
                user_id=left.id,
                typing=True,
                seen_at=now - timedelta(seconds=20),
            ),
        ]
    )
    session.commit()

    assert beat(agent_client, conversation_id).get_json() == {"others": []}
    remaining = fresh(session).exec(select(Presence.user_id)).all()
    # Two hours away is a closed tab: gone. Twenty seconds away is not shown, but kept.
    assert sorted(remaining) == sorted([left.id, agent.id])


def test_hostile_colleague_name_is_inert(
    app: Flask, agent_client: FlaskClient, session: Session, account: Account
) -> None:
    conversation_id = write_in(session, account, "Frage").conversation_id
    hostile = make_user(session, role=Role.agent, name=HOSTILE_NAME)
    make_member(session, hostile, account)
    other = app.test_client()
    login(other, hostile.email)
    beat(other, conversation_id)

    assert beat(agent_client, conversation_id).get_json() == {
        "others": [{"name": HOSTILE_NAME, "typing": False}]
    }
    body = agent_client.get(f"/conversations/{conversation_id}").get_data(as_text=True)
    assert "<img src=x" not in body
    assert presence_lines(body) == [f"{HOSTILE_NAME} is viewing"]


def test_presence_needs_the_csrf_header(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    conversation_id = write_in(session, account, "Frage").conversation_id

    response = agent_client.post(f"/conversations/{conversation_id}/presence", data={"typing": "1"})

    assert response.status_code == 400
    assert fresh(session).exec(select(Presence)).all() == []


def test_leaving_removes_ones_presence(
    agent_client: FlaskClient, colleague_client: FlaskClient, session: Session, account: Account
) -> None:
    conversation_id = write_in(session, account, "Frage").conversation_id
    beat(colleague_client, conversation_id)
    colleague_client.post(
        f"/conversations/{conversation_id}/presence",
        data={"leave": "1", "csrf_token": csrf_token(colleague_client, "/login")},
    )

    assert beat(agent_client, conversation_id).get_json() == {"others": []}


def test_presence_of_an_unknown_conversation_is_not_found(agent_client: FlaskClient) -> None:
    assert beat(agent_client, 999_999).status_code == 404


# Roles ------------------------------------------------------------------------------------


def test_marketing_may_use_none_of_the_composer_endpoints(
    client: FlaskClient, session: Session, account: Account
) -> None:
    conversation_id = write_in(session, account, "Frage").conversation_id
    marketer = make_user(session, role=Role.marketing)
    login(client, marketer.email)
    token = csrf_token(client, "/login")
    base = f"/conversations/{conversation_id}"

    posts = [f"{base}/presence", f"{base}/reply", f"{base}/messages/1/retry"]
    gets = [base, f"{base}/canned?canned=1", f"{base}/canned.json?canned=1"]
    for url in posts:
        response = client.post(url, data={"text": "x"}, headers={"X-CSRFToken": token})
        assert response.status_code == 403, url
    for url in gets:
        assert client.get(url).status_code == 403, url
    assert outbound_messages(session) == []
    assert fresh(session).exec(select(Presence)).all() == []


# Sending once ------------------------------------------------------------------------------


def submission_field(body: str) -> str:
    found = re.search(r'<input type="hidden" name="submission" value="([A-Za-z0-9_-]+)">', body)
    assert found, "no submission key in the composer"
    return found.group(1)


def test_the_same_form_sent_twice_posts_one_reply(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    first = write_in(session, account, "Wo bleibt mein Paket?")
    body = agent_client.get(f"/conversations/{first.conversation_id}").get_data(as_text=True)
    fields = {**open_composer(agent_client, first.conversation_id)}
    fields["submission"] = submission_field(body)

    # A double click: the browser sends the same form twice.
    assert send(agent_client, first.conversation_id, fields, "Ist unterwegs.").status_code == 302
    assert send(agent_client, first.conversation_id, fields, "Ist unterwegs.").status_code == 302

    (reply,) = outbound_messages(session)
    assert reply.delivery == Delivery.sent and reply.submission_key == fields["submission"]
    assert len(audit_events(session, "reply")) == 1
    # The page after sending has a new form: a deliberate second reply goes out.
    again = agent_client.get(f"/conversations/{first.conversation_id}").get_data(as_text=True)
    assert submission_field(again) != fields["submission"]
    second = {**fields, "submission": submission_field(again), "seen": seen_field(again)}
    assert send(agent_client, first.conversation_id, second, "Morgen da.").status_code == 302
    assert [m.text for m in outbound_messages(session)] == ["Ist unterwegs.", "Morgen da."]


@pytest.mark.postgres_only
def test_one_form_sent_to_two_nodes_at_once_stores_and_posts_one_reply(
    app: Flask, session: Session, account: Account, agent: User
) -> None:
    first = write_in(session, account, "Hallo?")
    make_member(session, agent, account)
    conversation = session.get(Conversation, first.conversation_id)
    assert conversation is not None
    barrier = threading.Barrier(4)
    stored: list[int | None] = []
    errors: list[BaseException] = []

    def node() -> None:
        try:
            with Session(databases(app).inbox, expire_on_commit=False) as own:
                barrier.wait()
                message = send_reply(
                    session=own,
                    fernet=multi_fernet(app.config["ENCRYPTION_KEYS"]),
                    conversation=own.get(Conversation, conversation.id),  # type: ignore[arg-type]
                    agent=own.get(User, agent.id),  # type: ignore[arg-type]
                    text="Wir kümmern uns.",
                    submission_key="k" * 24,
                )
                stored.append(message.id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=node) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(set(stored)) == 1 and len(stored) == 4
    assert len(outbound_messages(session)) == 1
    assert len(audit_events(session, "reply")) == 1
