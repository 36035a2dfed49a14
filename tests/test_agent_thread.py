"""The conversation view as an agent uses it: contact panel, notes, and every action."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from connectors import Author
from inbox.ingest import ingest
from inbox.models import (
    Account,
    AuditEvent,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    Role,
    User,
)
from inbox.thread_actions import preset_time
from inbox.workflow_models import ConversationTag, Note
from tests.conftest import audit_events, fresh, login, make_item, make_member, make_user, post_form

BERLIN = ZoneInfo("Europe/Berlin")
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_LINK = "javascript:alert(1)"


# Helpers -------------------------------------------------------------------------------


def ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def write_in(
    session: Session,
    account: Account,
    *,
    text: str = "Wo bleibt mein Paket?",
    minutes_ago: float = 5,
    user_id: str = "7001",
    handle: str | None = "jodoe",
    name: str | None = "Jo Doe",
    thread_key: str | None = None,
    **overrides: Any,
) -> Message:
    """A customer's message arriving in the inbox."""
    item = make_item(
        author=Author(platform_user_id=user_id, handle=handle, display_name=name),
        text=text,
        created_at=ago(minutes_ago),
        thread_key=thread_key or f"dm-{user_id}",
        **overrides,
    )
    return ingest(session=session, account=account, item=item).message


def reload(session: Session, conversation_id: int) -> Conversation:
    found = fresh(session).get(Conversation, conversation_id)
    assert found is not None
    return found


def url(conversation_id: int, action: str = "") -> str:
    return f"/conversations/{conversation_id}" + (f"/{action}" if action else "")


def act(client: FlaskClient, conversation_id: int, action: str, data: dict[str, str]) -> Any:
    """Submit one of the thread page's action forms."""
    return post_form(client, url(conversation_id), url(conversation_id, action), data)


def page(client: FlaskClient, conversation_id: int) -> str:
    response = client.get(url(conversation_id))
    assert response.status_code == 200
    return response.get_data(as_text=True)


def flashes(body: str) -> list[str]:
    found = re.findall(r'<p class="flash (\w+)" role="status">(.*?)</p>', body, re.S)
    return [f"{kind}: {html.unescape(text)}" for kind, text in found]


def notes(body: str) -> list[str]:
    """The internal notes in the timeline as 'label | author | text'."""
    return [
        " | ".join(html.unescape(part) for part in found)
        for found in re.findall(
            r'<li class="note"[^>]*>.*?<span class="note-label">(.*?)</span>\s*'
            r'<span class="note-author">(.*?)</span>.*?<p class="text">(.*?)</p>',
            body,
            re.S,
        )
    ]


def timeline(body: str) -> list[str]:
    """The thread's entries top to bottom: 'in', 'out' or 'note'."""
    kinds = re.findall(r'<li class="(message inbound|message outbound|note)"', body)
    return [{"message inbound": "in", "message outbound": "out"}.get(k, k) for k in kinds]


def tags(body: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<span class="tag">(.*?)</span>', body)]


def earlier_links(body: str) -> list[str]:
    found = re.search(r'<ul class="earlier">(.*?)</ul>', body, re.S)
    return re.findall(r'<a href="(/conversations/\d+)">', found.group(1)) if found else []


# Fixtures ------------------------------------------------------------------------------


@pytest.fixture
def agent(session: Session) -> User:
    return make_user(session, role=Role.agent, name="Jana Schneider")


@pytest.fixture
def colleague(session: Session, account: Account) -> User:
    """A colleague on the same account."""
    bernd = make_user(session, role=Role.agent, name="Bernd Brot")
    make_member(session, bernd, account)
    return bernd


@pytest.fixture
def conversation_id(session: Session, account: Account) -> int:
    return write_in(session, account).conversation_id


# Assignment ----------------------------------------------------------------------------


def test_assign_to_me_then_to_a_colleague_then_unassign(
    agent_client: FlaskClient, session: Session, conversation_id: int, agent: User, colleague: User
) -> None:
    body = page(agent_client, conversation_id)
    assert "Unassigned" in body
    assert '<button name="assignee" value="me" data-shortcut="assign-me">Assign to me</button>' in (
        body
    )

    response = act(agent_client, conversation_id, "assign", {"assignee": "me"})

    assert response.status_code == 302
    assert response.headers["Location"].endswith(url(conversation_id))
    body = page(agent_client, conversation_id)
    assert "success: The conversation is assigned to you." in flashes(body)
    assert "Assigned to you" in body
    assert 'data-shortcut="assign-me"' not in body
    assert reload(session, conversation_id).assignee_id == agent.id

    act(agent_client, conversation_id, "assign", {"assignee": str(colleague.id)})

    body = page(agent_client, conversation_id)
    assert "success: The conversation is assigned to Bernd Brot." in flashes(body)
    assert "Assigned to Bernd Brot" in body
    assert reload(session, conversation_id).assignee_id == colleague.id

    act(agent_client, conversation_id, "assign", {"assignee": ""})

    body = page(agent_client, conversation_id)
    assert "success: The conversation is unassigned." in flashes(body)
    assert reload(session, conversation_id).assignee_id is None
    assigned = audit_events(session, "assign")
    assert [(e.user_id, e.target_type, e.target_id) for e in assigned] == [
        (agent.id, "conversation", conversation_id)
    ] * 2
    assert [e.detail["assignee_id"] for e in assigned] == [agent.id, colleague.id]
    assert [e.target_id for e in audit_events(session, "unassign")] == [conversation_id]


def test_colleagues_to_assign_are_the_accounts_active_agents_and_admins(
    agent_client: FlaskClient, session: Session, conversation_id: int, colleague: User
) -> None:
    admin = make_user(session, role=Role.admin, name="Ada Admin")
    marketer = make_user(session, role=Role.marketing, name="Mona Marketing")
    # An agent of other accounts only: they could not even open the conversation.
    stranger = make_user(session, role=Role.agent, name="Nora Nebenan")
    gone = make_user(session, role=Role.agent, name="Gerd Gegangen")
    gone.active = False
    session.add(gone)
    session.commit()

    body = page(agent_client, conversation_id)

    select_box = re.search(r'<select id="assign-to"[^>]*>(.*?)</select>', body, re.S)
    assert select_box
    options = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', select_box.group(1))
    names = [html.unescape(name) for _value, name in options]
    assert names == ["Ada Admin", "Bernd Brot", "Jana Schneider"]
    for refused in (marketer, gone, stranger):
        response = act(agent_client, conversation_id, "assign", {"assignee": str(refused.id)})
        assert response.status_code == 400
    assert act(agent_client, conversation_id, "assign", {"assignee": "9999"}).status_code == 400
    assert reload(session, conversation_id).assignee_id is None
    act(agent_client, conversation_id, "assign", {"assignee": str(admin.id)})
    assert reload(session, conversation_id).assignee_id == admin.id


# Status --------------------------------------------------------------------------------


def test_status_pending_closed_and_reopened(
    agent_client: FlaskClient, session: Session, conversation_id: int, agent: User
) -> None:
    body = page(agent_client, conversation_id)
    assert '<button name="status" value="closed" data-shortcut="close">Close</button>' in body

    act(agent_client, conversation_id, "status", {"status": "pending"})

    body = page(agent_client, conversation_id)
    assert "success: The conversation is pending." in flashes(body)
    assert "· pending</p>" in body
    assert '<button name="status" value="open">Set to open</button>' in body
    assert reload(session, conversation_id).status == ConversationStatus.pending
    assert reload(session, conversation_id).closed_at is None

    act(agent_client, conversation_id, "status", {"status": "closed"})

    closed = reload(session, conversation_id)
    assert closed.status == ConversationStatus.closed
    assert closed.closed_at is not None
    body = page(agent_client, conversation_id)
    assert 'data-shortcut="close"' not in body

    act(agent_client, conversation_id, "status", {"status": "open"})

    reopened = reload(session, conversation_id)
    assert reopened.status == ConversationStatus.open
    assert reopened.closed_at is None
    for action in ("status_pending", "status_closed", "status_open"):
        assert [(e.user_id, e.target_id) for e in audit_events(session, action)] == [
            (agent.id, conversation_id)
        ]


# Snoozing ------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["hour", "tomorrow", "monday"])
def test_snooze_presets(
    agent_client: FlaskClient, session: Session, conversation_id: int, preset: str
) -> None:
    before = datetime.now(UTC)

    response = act(agent_client, conversation_id, "snooze", {"preset": preset})

    assert response.status_code == 302
    until = reload(session, conversation_id).snoozed_until
    assert until is not None
    local = until.astimezone(BERLIN)
    today = before.astimezone(BERLIN).date()
    if preset == "hour":
        assert timedelta(minutes=59) < until - before < timedelta(minutes=61)
    elif preset == "tomorrow":
        assert (local.date(), local.hour, local.minute) == (today + timedelta(days=1), 9, 0)
    else:
        assert local.weekday() == 0 and (local.hour, local.minute) == (9, 0)
        assert 1 <= (local.date() - today).days <= 7
    body = page(agent_client, conversation_id)
    assert any(f.startswith("success: Snoozed until ") for f in flashes(body))
    assert "Unsnooze" in body
    (event,) = audit_events(session, "snooze")
    assert event.target_id == conversation_id
    assert datetime.fromisoformat(event.detail["until"]) == until


@pytest.mark.parametrize(
    ("now", "preset", "expected"),
    [
        # Sunday evening in Berlin: tomorrow and next Monday are the same morning.
        ("2026-11-22T20:00:00+00:00", "tomorrow", "2026-11-23T08:00:00+00:00"),
        ("2026-11-22T20:00:00+00:00", "monday", "2026-11-23T08:00:00+00:00"),
        # 23:30 UTC on Monday is already Tuesday in Berlin.
        ("2026-11-23T23:30:00+00:00", "tomorrow", "2026-11-25T08:00:00+00:00"),
        # On a Monday morning before nine, next Monday is still a week away.
        ("2026-11-23T06:00:00+00:00", "monday", "2026-11-30T08:00:00+00:00"),
        # Summer time: 9:00 in Berlin is 7:00 UTC.
        ("2026-03-28T12:00:00+00:00", "monday", "2026-03-30T07:00:00+00:00"),
        ("2026-11-23T10:15:00+00:00", "hour", "2026-11-23T11:15:00+00:00"),
    ],
)
def test_snooze_preset_times(now: str, preset: str, expected: str) -> None:
    until = preset_time(preset, now=datetime.fromisoformat(now), zone=BERLIN)
    assert until == datetime.fromisoformat(expected)


def test_snooze_until_a_chosen_time_in_the_teams_zone(
    agent_client: FlaskClient, session: Session, conversation_id: int
) -> None:
    chosen = (datetime.now(BERLIN) + timedelta(days=3)).replace(
        hour=14, minute=30, second=0, microsecond=0
    )

    act(agent_client, conversation_id, "snooze", {"until": chosen.strftime("%Y-%m-%dT%H:%M")})

    assert reload(session, conversation_id).snoozed_until == chosen
    body = page(agent_client, conversation_id)
    assert 'type="datetime-local"' in body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"until": "2020-01-01T09:00"}, "error: Snoozing needs a time in the future."),
        ({"until": ""}, "error: Please choose a date and time to snooze until."),
        ({"until": "next week"}, "error: Please choose a date and time to snooze until."),
        (
            {"until": "2030-01-01T09:00+05:00"},
            "error: Please choose a date and time to snooze until.",
        ),
    ],
)
def test_snooze_needs_a_time_in_the_future(
    agent_client: FlaskClient,
    session: Session,
    conversation_id: int,
    data: dict[str, str],
    message: str,
) -> None:
    response = act(agent_client, conversation_id, "snooze", data)

    assert response.status_code == 302
    assert flashes(page(agent_client, conversation_id)) == [message]
    assert reload(session, conversation_id).snoozed_until is None
    assert audit_events(session, "snooze") == []


def test_unknown_snooze_preset_is_refused(
    agent_client: FlaskClient, session: Session, conversation_id: int
) -> None:
    response = act(agent_client, conversation_id, "snooze", {"preset": "someday"})

    assert response.status_code == 400
    assert reload(session, conversation_id).snoozed_until is None


def test_unsnooze(agent_client: FlaskClient, session: Session, conversation_id: int) -> None:
    act(agent_client, conversation_id, "snooze", {"preset": "hour"})

    act(agent_client, conversation_id, "unsnooze", {})

    assert reload(session, conversation_id).snoozed_until is None
    body = page(agent_client, conversation_id)
    assert "success: The conversation is no longer snoozed." in flashes(body)
    assert "Snoozed until" not in body
    assert [e.target_id for e in audit_events(session, "unsnooze")] == [conversation_id]


# Tags ----------------------------------------------------------------------------------


def test_tags_are_normalised_kept_once_and_removed(
    agent_client: FlaskClient, session: Session, conversation_id: int
) -> None:
    act(agent_client, conversation_id, "tags", {"tag": "  Lieferung  "})
    act(agent_client, conversation_id, "tags", {"tag": "LIEFERUNG"})
    act(agent_client, conversation_id, "tags", {"tag": "Rückgabe " + "x" * 100})

    body = page(agent_client, conversation_id)
    long_tag = ("rückgabe " + "x" * 100)[:64]
    assert tags(body) == ["lieferung", long_tag]
    stored = fresh(session).exec(select(ConversationTag.tag).order_by(col(ConversationTag.tag)))
    assert list(stored.all()) == ["lieferung", long_tag]

    act(agent_client, conversation_id, "tags/remove", {"tag": " Lieferung"})

    body = page(agent_client, conversation_id)
    assert "success: Tag “lieferung” removed." in flashes(body)
    assert tags(body) == [long_tag]
    added = audit_events(session, "tag_add")
    assert [e.detail["tag"] for e in added] == ["lieferung", "lieferung", long_tag]
    assert [(e.target_id, e.detail["tag"]) for e in audit_events(session, "tag_remove")] == [
        (conversation_id, "lieferung")
    ]


def test_empty_tag_is_refused(
    agent_client: FlaskClient, session: Session, conversation_id: int
) -> None:
    response = act(agent_client, conversation_id, "tags", {"tag": "   \t "})

    assert response.status_code == 302
    assert flashes(page(agent_client, conversation_id)) == ["error: A tag cannot be empty."]
    assert fresh(session).exec(select(ConversationTag)).all() == []
    assert audit_events(session, "tag_add") == []


# Notes ---------------------------------------------------------------------------------


def test_note_is_shown_in_the_timeline_and_never_sent(
    agent_client: FlaskClient, session: Session, account: Account, agent: User
) -> None:
    first = write_in(session, account, text="Hallo?", minutes_ago=10)
    conversation_id = first.conversation_id

    response = act(agent_client, conversation_id, "notes", {"text": "Kunde ist VIP, bitte rasch"})

    assert response.status_code == 302
    body = page(agent_client, conversation_id)
    assert "success: Note added." in flashes(body)
    assert notes(body) == ["Internal note | Jana Schneider | Kunde ist VIP, bitte rasch"]
    # A later message from the customer follows the note.
    write_in(session, account, text="Noch da?", minutes_ago=-1)
    assert timeline(page(agent_client, conversation_id)) == ["in", "note", "in"]
    outbound = select(Message).where(Message.direction == Direction.outbound)
    assert fresh(session).exec(outbound).all() == []
    (note,) = fresh(session).exec(select(Note)).all()
    assert note.author_user_id == agent.id
    (event,) = audit_events(session, "note_add")
    assert (event.user_id, event.target_id, event.detail) == (
        agent.id,
        conversation_id,
        {"note_id": note.id},
    )
    # The text stays out of the audit log: it is about a person.
    assert "VIP" not in str(event.detail)


def test_empty_note_is_refused(
    agent_client: FlaskClient, session: Session, conversation_id: int
) -> None:
    act(agent_client, conversation_id, "notes", {"text": "  \n "})

    assert flashes(page(agent_client, conversation_id)) == ["error: The note is empty."]
    assert fresh(session).exec(select(Note)).all() == []
    assert audit_events(session, "note_add") == []


# Spam ----------------------------------------------------------------------------------


def test_spam_closes_the_conversation_and_not_spam_takes_the_mark_off(
    agent_client: FlaskClient, session: Session, conversation_id: int, agent: User
) -> None:
    act(agent_client, conversation_id, "spam", {"spam": "1"})

    marked = reload(session, conversation_id)
    assert marked.is_spam
    assert marked.status == ConversationStatus.closed
    assert marked.closed_at is not None
    body = page(agent_client, conversation_id)
    assert "success: Marked as spam and closed." in flashes(body)
    assert '<button name="spam" value="0">Not spam</button>' in body

    act(agent_client, conversation_id, "spam", {"spam": "0"})

    assert not reload(session, conversation_id).is_spam
    body = page(agent_client, conversation_id)
    assert '<button name="spam" value="1">Mark as spam</button>' in body
    assert [e.user_id for e in audit_events(session, "spam")] == [agent.id]
    assert [e.target_id for e in audit_events(session, "not_spam")] == [conversation_id]


# Permissions and forms -----------------------------------------------------------------

ACTIONS = [
    ("assign", {"assignee": "me"}),
    ("status", {"status": "closed"}),
    ("snooze", {"preset": "hour"}),
    ("unsnooze", {}),
    ("tags", {"tag": "x"}),
    ("tags/remove", {"tag": "x"}),
    ("notes", {"text": "x"}),
    ("spam", {"spam": "1"}),
]


def test_marketing_may_neither_see_nor_change_a_conversation(
    client: FlaskClient, session: Session, conversation_id: int
) -> None:
    marketer = make_user(session, role=Role.marketing)
    login(client, marketer.email)

    assert client.get(url(conversation_id)).status_code == 403
    for action, data in ACTIONS:
        response = post_form(client, "/reports", url(conversation_id, action), data)
        assert response.status_code == 403, action
    unchanged = reload(session, conversation_id)
    assert (unchanged.assignee_id, unchanged.status, unchanged.is_spam) == (
        None,
        ConversationStatus.open,
        False,
    )
    touched = select(AuditEvent).where(AuditEvent.target_type == "conversation")
    assert fresh(session).exec(touched).all() == []


def test_actions_need_the_forms_csrf_token(
    agent_client: FlaskClient, session: Session, conversation_id: int
) -> None:
    for action, data in ACTIONS:
        assert agent_client.post(url(conversation_id, action), data=data).status_code == 400
    assert reload(session, conversation_id).status == ConversationStatus.open


def test_actions_on_an_unknown_conversation_are_not_found(
    agent_client: FlaskClient, conversation_id: int
) -> None:
    for action, data in ACTIONS:
        response = post_form(agent_client, "/conversations", url(9999, action), data)
        assert response.status_code == 404, action


# Thread context and contact panel ------------------------------------------------------


def test_a_reply_to_an_earlier_message_points_to_it(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    first = write_in(session, account, text="Erste Frage", minutes_ago=10)
    write_in(session, account, text="Nachtrag", minutes_ago=5, in_reply_to=first.external_id)

    body = page(agent_client, first.conversation_id)

    assert f'<a href="#message-{first.id}">In reply to Jo Doe</a>' in body
    assert f'id="message-{first.id}"' in body


def test_contact_panel_lists_earlier_conversations_most_recent_first(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    earlier = [
        write_in(session, account, minutes_ago=600 - i, thread_key=f"post-{i}").conversation_id
        for i in range(12)
    ]
    write_in(session, account, user_id="999", name="Someone Else", thread_key="other")
    current = write_in(session, account, minutes_ago=1).conversation_id

    body = page(agent_client, current)

    # The ten most recent, newest first; neither this one nor another person's.
    assert earlier_links(body) == [url(i) for i in reversed(earlier[2:])]
    assert "<h3>Earlier conversations</h3>" in body
    # The oldest sees the newer ones as well: "earlier" means "other", listed by recency.
    assert earlier_links(page(agent_client, earlier[0]))[0] == url(current)


def test_contact_panel_without_earlier_conversations_says_so(
    agent_client: FlaskClient, conversation_id: int
) -> None:
    body = page(agent_client, conversation_id)

    assert "No earlier conversations" in body
    assert earlier_links(body) == []


@pytest.mark.parametrize(
    ("platform", "profile"),
    [
        ("x", "https://x.com/jodoe"),
        ("instagram", "https://www.instagram.com/jodoe/"),
        ("facebook", None),
        ("demo", None),
    ],
)
def test_contact_panel_links_the_platform_profile_safely(
    agent_client: FlaskClient,
    session: Session,
    account: Account,
    platform: str,
    profile: str | None,
) -> None:
    message = write_in(session, account, platform=platform)

    body = page(agent_client, message.conversation_id)

    links = re.findall(r'<a class="profile-link" href="([^"]*)" rel="([^"]*)"', body)
    assert links == ([(profile, "noopener noreferrer nofollow")] if profile else [])
    assert "<img" not in body
    assert "Jo Doe" in body and "@jodoe" in body


def test_contact_panel_shows_research_objection_and_consent(
    agent_client: FlaskClient, session: Session, conversation_id: int
) -> None:
    body = page(agent_client, conversation_id)
    assert "No objection" in body
    assert "No consent recorded" in body

    conversation = reload(session, conversation_id)
    contact = session.get(Contact, conversation.contact_id)
    assert contact is not None
    contact.research_objection = True
    session.add(contact)
    session.commit()

    assert "Objected: messages are not used" in page(agent_client, conversation_id)


# Hostile text --------------------------------------------------------------------------


def test_hostile_notes_tags_and_names_are_inert(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    message = write_in(session, account, platform="x", name=SCRIPT, handle=IMG)
    conversation_id = message.conversation_id
    write_in(session, account, platform="x", name=SCRIPT, handle=IMG, thread_key="second")

    act(agent_client, conversation_id, "notes", {"text": IMG + SCRIPT})
    act(agent_client, conversation_id, "tags", {"tag": JS_LINK})
    act(agent_client, conversation_id, "tags", {"tag": SCRIPT})

    body = page(agent_client, conversation_id)
    assert flashes(body) == [f"success: Tagged “{SCRIPT}”."]
    assert "<script>alert" not in body
    assert "<img" not in body
    assert "onerror=alert(1)>" not in body
    assert 'href="javascript:' not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert notes(body) == [f"Internal note | Jana Schneider | {IMG}{SCRIPT}"]
    assert sorted(tags(body)) == sorted([JS_LINK, SCRIPT])
    # The handle goes into the profile address percent-encoded, never as markup.
    (link,) = re.findall(r'<a class="profile-link" href="([^"]*)"', body)
    assert link == "https://x.com/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"
