"""Canned replies and signatures: admins manage them, agents insert them filled in."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from connectors import Author
from inbox.ingest import ingest
from inbox.models import Account, Conversation, Message, Role, User
from inbox.workflow_models import AccountMember, CannedReply
from tests.conftest import audit_events, csrf_token, fresh, login, make_item, make_user, post_form

HOSTILE = "<script>alert(1)</script>"


def write_in(session: Session, account: Account, *, name: str | None = "Jo Doe") -> Message:
    """A customer's DM arriving in the inbox."""
    item = make_item(
        author=Author(platform_user_id="7001", handle="jodoe", display_name=name),
        created_at=datetime.now(UTC) - timedelta(minutes=3),
    )
    return ingest(session=session, account=account, item=item).message


def canned(session: Session, title: str, text: str, **fields: object) -> CannedReply:
    reply = CannedReply(title=title, text=text, **fields)
    session.add(reply)
    session.commit()
    return reply


def options(body: str) -> list[str]:
    """The composer's canned reply choices, top to bottom."""
    found = re.search(r'<select id="canned-select"[^>]*>(.*?)</select>', body, re.S)
    assert found, "no canned reply select"
    labels = re.findall(r'<option value="\d+"[^>]*>(.*?)</option>', found.group(1), re.S)
    return [html.unescape(label.strip()) for label in labels]


def textarea(body: str) -> str:
    found = re.search(r'<textarea id="reply-text"[^>]*>(.*?)</textarea>', body, re.S)
    assert found, "no reply textarea"
    return html.unescape(found.group(1))


@pytest.fixture
def agent(session: Session) -> User:
    return make_user(session, role=Role.agent, name="Jana Schneider")


@pytest.fixture
def admin_client(client: FlaskClient, session: Session) -> FlaskClient:
    admin = make_user(session, role=Role.admin, name="Ada Admin")
    assert login(client, admin.email).status_code == 302
    return client


# Admin pages ------------------------------------------------------------------------------


def test_admin_creates_edits_and_deletes_a_canned_reply(
    admin_client: FlaskClient, session: Session, account: Account
) -> None:
    created = post_form(
        admin_client,
        "/admin/canned/new",
        "/admin/canned/new",
        {"title": "Paket", "account_id": str(account.id), "language": "DE", "text": "Hallo!"},
    )
    assert created.status_code == 302
    (reply,) = fresh(session).exec(select(CannedReply)).all()
    assert (reply.title, reply.account_id, reply.language, reply.text) == (
        "Paket",
        account.id,
        "de",
        "Hallo!",
    )
    listing = admin_client.get("/admin/canned").get_data(as_text=True)
    assert "Paket" in listing and "Quendelmarkt" in listing

    edit = f"/admin/canned/{reply.id}/edit"
    assert "Hallo!" in admin_client.get(edit).get_data(as_text=True)
    edited = post_form(
        admin_client, edit, edit, {"title": "Paket", "account_id": "", "language": "", "text": "Hi"}
    )
    assert edited.status_code == 302
    reply = fresh(session).exec(select(CannedReply)).one()
    assert (reply.account_id, reply.language, reply.text) == (None, "", "Hi")
    assert "All accounts" in admin_client.get("/admin/canned").get_data(as_text=True)

    reply_id = reply.id
    delete = f"/admin/canned/{reply_id}/delete"
    assert post_form(admin_client, "/admin/canned", delete, {}).status_code == 302
    assert fresh(session).exec(select(CannedReply)).all() == []
    assert "No canned replies yet." in admin_client.get("/admin/canned").get_data(as_text=True)

    for action in ("canned_reply_created", "canned_reply_updated", "canned_reply_deleted"):
        (event,) = audit_events(session, action)
        assert (event.target_type, event.target_id) == ("canned_reply", reply_id)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"title": "", "text": "Hallo"}, "Give the canned reply a title"),
        ({"title": "T", "text": "  "}, "The canned reply needs a text."),
        ({"title": "T", "text": "Hallo", "language": "deutsch"}, "The language must be empty"),
        ({"title": "T", "text": "Hallo", "account_id": "999999"}, "Choose an existing account."),
    ],
)
def test_invalid_canned_reply_is_refused_and_the_input_kept(
    admin_client: FlaskClient, session: Session, fields: dict[str, str], error: str
) -> None:
    response = post_form(admin_client, "/admin/canned/new", "/admin/canned/new", fields)

    assert response.status_code == 422
    body = html.unescape(response.get_data(as_text=True))
    assert error in body
    assert fields["text"] in body
    assert fresh(session).exec(select(CannedReply)).all() == []
    assert audit_events(session, "canned_reply_created") == []


def test_hostile_canned_reply_title_is_escaped_on_the_admin_page(
    admin_client: FlaskClient, session: Session
) -> None:
    canned(session, HOSTILE, f"javascript:alert(1) {HOSTILE}")

    body = admin_client.get("/admin/canned").get_data(as_text=True)

    assert HOSTILE not in body
    assert html.escape(HOSTILE, quote=False) in body


def test_only_admins_manage_canned_replies_and_members(
    client: FlaskClient, session: Session, account: Account
) -> None:
    reply = canned(session, "Paket", "Hallo")
    for role in (Role.agent, Role.marketing):
        user = make_user(session, role=role)
        login(client, user.email)
        token = csrf_token(client, "/login")
        for url in ("/admin/canned", "/admin/canned/new", f"/admin/canned/{reply.id}/edit"):
            assert client.get(url).status_code == 403, (role, url)
        for url in (
            "/admin/canned/new",
            f"/admin/canned/{reply.id}/edit",
            f"/admin/canned/{reply.id}/delete",
            "/admin/members",
            "/admin/members/remove",
        ):
            data = {"title": "X", "text": "Y", "account_id": str(account.id), "user_id": "1"}
            response = client.post(url, data={**data, "csrf_token": token})
            assert response.status_code == 403, (role, url)
        assert client.get("/admin/members").status_code == 403
        client.post("/logout")
    assert [r.title for r in fresh(session).exec(select(CannedReply)).all()] == ["Paket"]
    assert fresh(session).exec(select(AccountMember)).all() == []


def test_admin_sets_and_removes_an_agents_signature(
    admin_client: FlaskClient, session: Session, account: Account, agent: User
) -> None:
    data = {"account_id": str(account.id), "user_id": str(agent.id), "signature": " ^JS "}
    assert post_form(admin_client, "/admin/members", "/admin/members", data).status_code == 302

    member = fresh(session).get(AccountMember, (account.id, agent.id))
    assert member is not None and member.signature == "^JS"
    page = admin_client.get("/admin/members").get_data(as_text=True)
    assert "Jana Schneider" in page and 'value="^JS"' in page

    too_long = {**data, "signature": "x" * 17}
    response = post_form(admin_client, "/admin/members", "/admin/members", too_long)
    assert "A signature has at most 16 characters." in html.unescape(
        admin_client.get(response.headers["Location"]).get_data(as_text=True)
    )
    kept = fresh(session).get(AccountMember, (account.id, agent.id))
    assert kept is not None and kept.signature == "^JS"

    removed = post_form(admin_client, "/admin/members", "/admin/members/remove", data)
    assert removed.status_code == 302
    assert fresh(session).get(AccountMember, (account.id, agent.id)) is None
    assert [e.target_id for e in audit_events(session, "account_member_saved")] == [account.id]
    assert [e.target_id for e in audit_events(session, "account_member_removed")] == [account.id]


def test_marketing_users_cannot_become_members(
    admin_client: FlaskClient, session: Session, account: Account
) -> None:
    marketer = make_user(session, role=Role.marketing)
    data = {"account_id": str(account.id), "user_id": str(marketer.id), "signature": "^M"}

    post_form(admin_client, "/admin/members", "/admin/members", data)

    assert fresh(session).exec(select(AccountMember)).all() == []


# In the composer --------------------------------------------------------------------------


def test_composer_offers_this_accounts_replies_in_the_conversations_language_first(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    other = Account(
        platform="demo", display_name="Andere", platform_account_id="x", credentials_encrypted=b""
    )
    session.add(other)
    session.commit()
    conversation_id = write_in(session, account).conversation_id
    conversation = session.get(Conversation, conversation_id)
    assert conversation is not None
    conversation.language = "de"
    session.add(conversation)
    session.commit()
    canned(session, "B English", "Hello", language="en")
    canned(session, "C Neutral", "Hi", account_id=account.id)
    canned(session, "D Deutsch", "Hallo", language="de")
    canned(session, "A Deutsch", "Moin", language="de", account_id=account.id)
    canned(session, "Fremdes Konto", "Nein", account_id=other.id)

    body = agent_client.get(f"/conversations/{conversation_id}").get_data(as_text=True)

    assert options(body) == ["A Deutsch (de)", "D Deutsch (de)", "C Neutral", "B English (en)"]


def test_placeholders_are_filled_for_the_conversation(
    agent_client: FlaskClient, session: Session, account: Account, agent: User
) -> None:
    session.merge(AccountMember(account_id=account.id, user_id=agent.id, signature="^JS"))
    session.commit()
    conversation_id = write_in(session, account, name="Jo Anne Doe").conversation_id
    reply = canned(
        session,
        "Gruß",
        "Hallo {first_name}, hier {agent_name} von {account_name}. {agent_signature} {order_id} {",
    )

    response = agent_client.get(f"/conversations/{conversation_id}/canned.json?canned={reply.id}")

    assert response.status_code == 200
    assert response.get_json() == {
        "text": "Hallo Jo, hier Jana Schneider von Quendelmarkt. ^JS {order_id} {"
    }
    (event,) = audit_events(session, "canned_reply_inserted")
    assert (event.target_type, event.target_id) == ("conversation", conversation_id)


def test_canned_reply_without_js_prefills_the_composer(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    conversation_id = write_in(session, account, name=None).conversation_id
    reply = canned(session, "Gruß", "Hallo {first_name}! {agent_signature}")

    response = agent_client.get(f"/conversations/{conversation_id}/canned?canned={reply.id}")

    assert response.status_code == 200
    # No display name, no signature: the placeholders become empty rather than guessed.
    assert textarea(response.get_data(as_text=True)) == "Hallo ! "


def test_hostile_display_name_is_raw_in_json_and_escaped_in_html(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    conversation_id = write_in(session, account, name=f"{HOSTILE} Doe").conversation_id
    reply = canned(session, "Gruß", "Hallo {first_name}")
    url = f"/conversations/{conversation_id}/canned"

    data = agent_client.get(f"{url}.json?canned={reply.id}").get_json()
    page = agent_client.get(f"{url}?canned={reply.id}").get_data(as_text=True)

    assert data == {"text": f"Hallo {HOSTILE}"}
    assert HOSTILE not in page
    assert textarea(page) == f"Hallo {HOSTILE}"


def test_canned_reply_of_another_account_or_unknown_is_not_found(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    other = Account(
        platform="demo", display_name="Andere", platform_account_id="x", credentials_encrypted=b""
    )
    session.add(other)
    session.commit()
    conversation_id = write_in(session, account).conversation_id
    foreign = canned(session, "Fremd", "Nein", account_id=other.id)
    url = f"/conversations/{conversation_id}/canned"

    assert agent_client.get(f"{url}.json?canned={foreign.id}").status_code == 404
    assert agent_client.get(f"{url}.json?canned=999999").status_code == 404
    assert agent_client.get(f"{url}.json?canned=abc").status_code == 404
    assert agent_client.get(f"{url}?canned={foreign.id}").status_code == 404
    assert agent_client.get(url).status_code == 302
