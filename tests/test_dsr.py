"""Data-subject requests: a dpo hands a person everything stored about them, or erases it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import MultiFernet
from flask.testing import FlaskClient, FlaskCliRunner
from sqlmodel import Session, col, func, select

from anonymizer.store import ResearchRecord
from connectors import Author, InboundItem
from inbox.ingest import commit_batch, ingest
from inbox.models import (
    Account,
    AuditEvent,
    Contact,
    Conversation,
    DeadLetter,
    Delivery,
    Direction,
    Message,
    ResearchOutbox,
    Role,
)
from inbox.privacy_models import ConsentRecord, ConsentText, Tombstone
from inbox.research import drain_outbox
from inbox.workflow_models import ConversationTag, Note, Presence
from tests.conftest import login, make_account, make_item, make_user, post_form

SCRIPT = "<script>alert(1)</script>"
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


# Helpers -------------------------------------------------------------------------------


def item(user_id: str, n: int, *, thread: str | None = None, **overrides: Any) -> InboundItem:
    """The n-th message of the person with this platform user id."""
    fields: dict[str, Any] = {
        "author": Author(platform_user_id=user_id, handle=f"user{user_id}", display_name="Jo Doe"),
        "external_id": f"dm-{user_id}-{n}",
        "thread_key": thread or f"dm-{user_id}",
        "created_at": T0 + timedelta(minutes=n),
        "text": f"Nachricht {n} von {user_id}",
        "raw": {"id": f"dm-{user_id}-{n}", "sender": user_id},
    }
    fields.update(overrides)
    return make_item(**fields)


def stored(session: Session, account: Account, *items: InboundItem) -> list[Message]:
    return [ingest(session=session, account=account, item=i).message for i in items]


def audits(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)))


def count(session: Session, model: Any, *where: Any) -> int:
    session.expire_all()
    return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


class World:
    """Jo (the data subject) with everything a contact can have, and Kim, who must survive."""

    def __init__(self, session: Session, fernet: MultiFernet) -> None:
        self.account = make_account(session, fernet)
        self.agent = make_user(session, role=Role.agent, name="Anna Agentin")
        self.dpo = make_user(session, role=Role.dpo, name="Dora Datenschutz")
        jo_msgs = stored(
            session,
            self.account,
            item("7001", 1, text="Meine Mail ist jo@example.org"),
            item("7001", 2),
            item("7001", 3, kind="mention", thread="tweet-1", external_id="tw-7001-3"),
        )
        kim_msgs = stored(
            session,
            self.account,
            item(
                "8002", 1, author=Author(platform_user_id="8002", handle="kim", display_name="Kim")
            ),
            # Jo joins Kim's thread: Jo's message there is Jo's data, the thread stays Kim's.
            item("7001", 9, thread="dm-8002", external_id="dm-7001-in-kim"),
        )
        self.jo_msg = jo_msgs[0]
        self.jo_id = jo_msgs[0].author_contact_id
        self.kim_id = kim_msgs[0].author_contact_id
        self.jo_conversation = jo_msgs[0].conversation_id
        self.kim_conversation = kim_msgs[0].conversation_id
        assert self.jo_id is not None and self.dpo.id is not None and self.agent.id is not None
        reply = Message(
            conversation_id=self.jo_conversation,
            account_id=self.account.id or 0,
            external_id="out-1",
            direction=Direction.outbound,
            text="Wir kümmern uns ^AA",
            author_user_id=self.agent.id,
            created_at=T0 + timedelta(minutes=5),
            delivery=Delivery.sent,
        )
        text = ConsentText(purpose="marketing", language="de", version=3, text="Ja, Newsletter")
        session.add_all([reply, text])
        session.flush()
        session.add_all(
            [
                Note(
                    conversation_id=self.jo_conversation, author_user_id=self.agent.id, text="VIP"
                ),
                Note(
                    conversation_id=self.kim_conversation, author_user_id=self.agent.id, text="Kim"
                ),
                ConversationTag(conversation_id=self.jo_conversation, tag="lieferung"),
                ConversationTag(conversation_id=self.kim_conversation, tag="kim-tag"),
                Presence(conversation_id=self.jo_conversation, user_id=self.agent.id),
                ConsentRecord(
                    contact_id=self.jo_id,
                    channel="dm",
                    purpose="marketing",
                    given_at=T0,
                    source="agent recorded with text version 3",
                    text_id=text.id,
                    recorded_by_user_id=self.agent.id,
                ),
                AuditEvent(
                    user_id=self.agent.id,
                    action="view_conversation",
                    target_type="conversation",
                    target_id=self.jo_conversation,
                ),
                AuditEvent(
                    user_id=self.agent.id,
                    action="view_conversation",
                    target_type="conversation",
                    target_id=self.kim_conversation,
                ),
                DeadLetter(
                    platform="demo", source="poll", error="bad", raw='{"sender": "7001", "x": 1}'
                ),
                DeadLetter(platform="demo", source="poll", error="bad", raw='{"sender": "17001"}'),
                DeadLetter(platform="x", source="poll", error="bad", raw='{"sender": "7001"}'),
            ]
        )
        session.commit()


@pytest.fixture
def world(session: Session, fernet: MultiFernet) -> World:
    return World(session, fernet)


@pytest.fixture
def dpo_client(client: FlaskClient, world: World) -> FlaskClient:
    assert login(client, world.dpo.email).status_code == 302
    return client


# Export --------------------------------------------------------------------------------


def test_export_holds_everything_about_jo_and_nothing_of_kim(
    dpo_client: FlaskClient, world: World, session: Session
) -> None:
    response = dpo_client.get(f"/privacy/contacts/{world.jo_id}/export.json")
    assert response.status_code == 200
    data = json.loads(response.get_data(as_text=True))

    assert data["contact"]["platform_user_id"] == "7001"
    assert data["contact"]["handle"] == "user7001"
    assert {c["kind"] for c in data["conversations"]} == {"dm", "mention"}
    dm = next(c for c in data["conversations"] if c["kind"] == "dm")
    assert dm["account"]["display_name"] == world.account.display_name
    assert dm["tags"] == ["lieferung"]
    texts = {m["text"] for m in data["messages"]}
    # Their messages in their threads and in Kim's, and our reply with the agent who wrote it.
    assert "Meine Mail ist jo@example.org" in texts
    assert "Nachricht 9 von 7001" in texts
    assert "Nachricht 1 von 8002" not in texts
    reply = next(m for m in data["messages"] if m["direction"] == "out")
    assert reply["agent"] == "Anna Agentin" and reply["delivery"] == "sent"
    assert next(m for m in data["messages"] if m["external_id"] == "dm-7001-1")["raw"] == {
        "id": "dm-7001-1",
        "sender": "7001",
    }
    assert [n["text"] for n in data["notes"]] == ["VIP"]
    [consent] = data["consent_records"]
    assert consent["purpose"] == "marketing"
    assert consent["text"] == {"version": 3, "language": "de", "text": "Ja, Newsletter"}
    assert consent["recorded_by"] == "Anna Agentin"
    assert data["research_objection"] is False
    viewers = [(e["user"], e["action"]) for e in data["access_log"]]
    assert ("Anna Agentin", "view_conversation") in viewers
    # Kim's conversation was viewed too, but that is not about Jo.
    assert sum(action == "view_conversation" for _, action in viewers) == 1
    [event] = audits(session, "dsr_export")
    assert event.user_id == world.dpo.id and event.contact_id == world.jo_id


def test_json_download_is_an_attachment_named_without_the_name(
    dpo_client: FlaskClient, world: World
) -> None:
    response = dpo_client.get(f"/privacy/contacts/{world.jo_id}/export.json")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert re.search(
        rf'filename="contact-{world.jo_id}-\d{{4}}-\d{{2}}-\d{{2}}\.json"', disposition
    )
    assert "user7001" not in disposition and "Jo" not in disposition
    assert response.mimetype == "application/json"
    assert "no-store" in response.headers["Cache-Control"]


def test_summary_is_readable_escaped_and_audited(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    dpo = make_user(session, role=Role.dpo)
    hostile = Author(platform_user_id="666", handle=SCRIPT, display_name=SCRIPT)
    [message] = stored(session, account, item("666", 1, author=hostile, text=SCRIPT))
    assert login(client, dpo.email).status_code == 302

    page = client.get(f"/privacy/contacts/{message.author_contact_id}/summary")

    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert SCRIPT not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "2026-11-02 09:31 UTC" in body
    assert "no-store" in page.headers["Cache-Control"]
    for path in ("/privacy/?q=666", f"/privacy/contacts/{message.author_contact_id}/erase"):
        assert SCRIPT not in client.get(path).get_data(as_text=True)
    [event] = audits(session, "dsr_summary")
    assert event.contact_id == message.author_contact_id


def test_finding_a_contact_is_audited_without_the_query(
    dpo_client: FlaskClient, world: World, session: Session
) -> None:
    for query in ("@USER70", "7001", "Jo Do", str(world.jo_id)):
        page = dpo_client.get("/privacy/", query_string={"q": query}).get_data(as_text=True)
        assert f'href="/privacy/contacts/{world.jo_id}"' in page, query
        assert f'href="/privacy/contacts/{world.kim_id}"' not in page
    contact = session.get(Contact, world.jo_id)
    assert contact is not None
    contact.email = "jo@example.org"
    session.commit()
    assert "user7001" in dpo_client.get("/privacy/?q=jo@exa").get_data(as_text=True)
    assert "No contact matches" in dpo_client.get("/privacy/?q=50%25").get_data(as_text=True)
    events = audits(session, "dsr_search")
    assert len(events) == 6
    assert all(
        "Jo" not in json.dumps(e.detail) and "7001" not in json.dumps(e.detail) for e in events
    )


# Erasure -------------------------------------------------------------------------------


def test_erasure_deletes_everything_of_jo_and_nothing_of_kim(
    dpo_client: FlaskClient, world: World, session: Session, research: Session, fernet: MultiFernet
) -> None:
    drain_outbox(session=session, research_session=research, fernet=fernet)
    research_before = count(research, ResearchRecord)
    assert research_before > 0
    page = f"/privacy/contacts/{world.jo_id}/erase"
    confirm = dpo_client.get(page).get_data(as_text=True)
    assert "The research store is not touched" in confirm
    # Four of theirs (one in Kim's thread) and our reply; Kim's own message is not counted.
    assert "pending research rows: 5" in confirm

    wrong = post_form(dpo_client, page, page, {"confirm": "kim"})
    assert wrong.status_code == 400
    assert count(session, Contact, col(Contact.id) == world.jo_id) == 1

    done = post_form(dpo_client, page, page, {"confirm": "@User7001"})
    body = done.get_data(as_text=True)
    assert done.status_code == 200
    assert "nothing in it points to this person" in body

    jo = world.jo_id
    assert count(session, Contact, col(Contact.id) == jo) == 0
    assert count(session, Conversation, col(Conversation.contact_id) == jo) == 0
    assert count(session, Message, col(Message.author_contact_id) == jo) == 0
    assert count(session, Message, col(Message.conversation_id) == world.jo_conversation) == 0
    assert count(session, Note, col(Note.text) == "VIP") == 0
    assert count(session, ConversationTag, col(ConversationTag.tag) == "lieferung") == 0
    assert count(session, Presence) == 0
    assert count(session, ConsentRecord) == 0
    assert count(session, ResearchOutbox) == 0
    # Only the letter naming 7001 on Jo's platform goes.
    assert sorted(session.exec(select(DeadLetter.raw))) == [
        '{"sender": "17001"}',
        '{"sender": "7001"}',
    ]
    # Kim keeps everything, including her thread that Jo wrote in.
    assert count(session, Message, col(Message.conversation_id) == world.kim_conversation) == 1
    assert count(session, Note, col(Note.text) == "Kim") == 1
    assert count(session, ConversationTag, col(ConversationTag.tag) == "kim-tag") == 1
    # One tombstone per erased item and one for the person.
    assert count(session, Tombstone, col(Tombstone.kind) == "item") == 5
    assert count(session, Tombstone, col(Tombstone.kind) == "contact") == 1
    assert count(research, ResearchRecord) == research_before
    # The trail of who saw Jo stays: it holds ids only.
    assert count(session, AuditEvent, col(AuditEvent.action) == "view_conversation") == 2
    [event] = audits(session, "erase_contact")
    assert event.user_id == world.dpo.id and event.contact_id == jo
    assert event.detail["messages"] == 5 and event.detail["conversations"] == 2
    assert "Jo" not in json.dumps(event.detail) and "7001" not in json.dumps(event.detail)
    assert dpo_client.get(f"/privacy/contacts/{jo}").status_code == 404


def test_a_repoll_after_erasure_stores_none_of_the_erased_items(
    world: World, session: Session
) -> None:
    from inbox.dsr import erase_contact

    assert world.jo_id is not None
    erase_contact(session=session, contact_id=world.jo_id, by_user_id=world.dpo.id, ip=None)
    same = [item("7001", n) for n in (1, 2)] + [
        item("7001", 3, kind="mention", thread="tweet-1", external_id="tw-7001-3")
    ]
    result = commit_batch(
        session=session, account=world.account, items=same, failures=[], source="poll"
    )
    assert (result.new, result.duplicates, result.failed) == (0, 3, 0)
    assert count(session, Contact, col(Contact.platform_user_id) == "7001") == 0
    assert count(session, DeadLetter, col(DeadLetter.raw).contains("dm-7001-1")) == 0

    # Writing to us again makes them a new contact with only the new message.
    again = commit_batch(
        session=session, account=world.account, items=[item("7001", 20)], failures=[], source="poll"
    )
    assert again.new == 1
    [contact] = session.exec(select(Contact).where(col(Contact.platform_user_id) == "7001"))
    assert contact.id != world.jo_id
    assert count(session, Message, col(Message.author_contact_id) == contact.id) == 1


def test_ids_of_an_erased_person_never_come_back_as_someone_elses(
    world: World, session: Session
) -> None:
    """The audit trail and old links name rows by id: after erasing the newest person, the
    next person to write must not become the same contact, conversation or message."""
    from inbox.dsr import erase_contact

    [last] = stored(session, world.account, item("9003", 1))
    session.commit()
    erased = (last.author_contact_id, last.conversation_id, last.id)
    assert erased[0] is not None
    erase_contact(session=session, contact_id=erased[0], by_user_id=world.dpo.id, ip=None)

    [stranger] = stored(session, world.account, item("9004", 1))
    session.commit()
    assert stranger.author_contact_id is not None and stranger.id is not None
    assert stranger.author_contact_id > erased[0]
    assert stranger.conversation_id > (erased[1] or 0)
    assert stranger.id > (erased[2] or 0)


def test_erasing_a_contact_with_nothing_but_a_profile(
    session: Session, fernet: MultiFernet
) -> None:
    from inbox.dsr import erase_contact

    contact = Contact(platform="x", platform_user_id="1")
    session.add(contact)
    session.commit()
    assert contact.id is not None
    report = erase_contact(session=session, contact_id=contact.id, by_user_id=None, ip="10.0.0.1")
    assert report.messages == 0 and report.tombstones == 1
    assert count(session, Contact) == 0


# Roles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.agent, Role.marketing])
def test_agents_and_marketing_get_403_everywhere(
    client: FlaskClient, world: World, session: Session, role: Role
) -> None:
    user = make_user(session, role=role)
    assert login(client, user.email).status_code == 302
    base = f"/privacy/contacts/{world.jo_id}"
    for path in (
        "/privacy/",
        "/privacy/?q=7001",
        base,
        f"{base}/export.json",
        f"{base}/summary",
        f"{base}/erase",
    ):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "user7001" not in response.get_data(as_text=True)
    assert client.post(f"{base}/erase", data={"confirm": str(world.jo_id)}).status_code in (
        400,
        403,
    )
    assert count(session, Contact, col(Contact.id) == world.jo_id) == 1


def test_admins_may_answer_requests_and_strangers_must_log_in(
    client: FlaskClient, world: World, session: Session
) -> None:
    assert client.get("/privacy/").status_code == 302
    admin = make_user(session, role=Role.admin)
    assert login(client, admin.email).status_code == 302
    page = client.get(f"/privacy/contacts/{world.jo_id}").get_data(as_text=True)
    assert "Download JSON" in page and "Erase" in page
    assert re.search(r'class="count-messages">5<', page)


# CLI -----------------------------------------------------------------------------------


def test_cli_exports_json_and_html_and_erases_after_confirmation(
    runner: FlaskCliRunner, world: World, session: Session, tmp_path: Path
) -> None:
    out = tmp_path / "jo.json"
    result = runner.invoke(args=["dsr", "export", "--contact", str(world.jo_id), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Meine Mail ist jo@example.org" in out.read_text()
    assert out.stat().st_mode & 0o077 == 0
    html = runner.invoke(args=["dsr", "export", "--handle", "@user7001", "--html"])
    assert html.exit_code == 0, html.output
    assert "Meine Mail ist jo@example.org" in html.output and "<html" in html.output

    refused = runner.invoke(
        args=["dsr", "erase", "--platform", "demo", "--user-id", "7001"], input="99\n"
    )
    assert refused.exit_code != 0 and "nothing was erased" in refused.output
    assert count(session, Contact, col(Contact.id) == world.jo_id) == 1

    erased = runner.invoke(
        args=["dsr", "erase", "--platform", "demo", "--user-id", "7001"], input=f"{world.jo_id}\n"
    )
    assert erased.exit_code == 0, erased.output
    assert "research store is not touched" in erased.output
    assert f"Erased contact {world.jo_id}" in erased.output
    assert count(session, Contact, col(Contact.id) == world.jo_id) == 0
    gone = runner.invoke(args=["dsr", "erase", "--contact", str(world.jo_id), "--yes"])
    assert gone.exit_code != 0 and "No such contact" in gone.output
    for action in ("dsr_export", "dsr_summary", "erase_contact"):
        [event] = audits(session, action)
        assert event.user_id is None and event.detail["via"] == "cli"
        assert event.contact_id == world.jo_id
