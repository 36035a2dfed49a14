"""The conversation list as an agent works it: views, counts, filters, order, pages, refresh."""

from __future__ import annotations

import base64
import html
import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import format_datetime
from sqlalchemy import event, insert
from sqlmodel import Session

from inbox.db import databases
from inbox.models import (
    Account,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    Role,
    User,
)
from inbox.workflow_models import ConversationTag
from tests.conftest import login, make_account, make_member, make_user

AGENT_NAME = "Jana Schneider"
COLLEAGUE_NAME = "Kai Kollege"
_ROW = re.compile(
    r'<tr class="conversation-row ?([^"]*)" data-href="(/conversations/\d+)" '
    r'data-conversation-id="(\d+)">(.*?)</tr>',
    re.S,
)


# Helpers -------------------------------------------------------------------------------


def minutes(delta: float | datetime) -> datetime:
    """An aware UTC moment some minutes from now (negative: in the past), or the moment given."""
    if isinstance(delta, datetime):
        return delta
    return datetime.now(UTC) + timedelta(minutes=delta)


def seed(
    session: Session,
    account: Account,
    name: str | None,
    *,
    due: float | datetime | None = 30,
    activity: float | datetime = -1,
    status: ConversationStatus = ConversationStatus.open,
    assignee: User | None = None,
    snoozed: float | None = None,
    spam: bool = False,
    kind: str = "dm",
    language: str | None = None,
    closed: float | None = None,
    tags: tuple[str, ...] = (),
    text: str = "Hallo, ich habe eine Frage.",
    handle: str | None = None,
) -> Conversation:
    """A conversation with one customer message, its times given in minutes from now."""
    active = minutes(activity)
    contact = Contact(
        platform=account.platform,
        platform_user_id=uuid.uuid4().hex,
        display_name=name,
        handle=handle,
    )
    session.add(contact)
    session.flush()
    assert contact.id is not None and account.id is not None
    conversation = Conversation(
        account_id=account.id,
        contact_id=contact.id,
        kind=kind,
        thread_key=uuid.uuid4().hex,
        status=status,
        assignee_id=assignee.id if assignee else None,
        opened_at=active,
        last_message_at=active,
        sla_due_at=None if due is None else minutes(due),
        closed_at=None if closed is None else minutes(closed),
        snoozed_until=None if snoozed is None else minutes(snoozed),
        is_spam=spam,
        language=language,
    )
    session.add(conversation)
    session.flush()
    assert conversation.id is not None
    session.add(
        Message(
            conversation_id=conversation.id,
            account_id=account.id,
            direction=Direction.inbound,
            text=text,
            author_contact_id=contact.id,
            created_at=active,
        )
    )
    session.add_all(ConversationTag(conversation_id=conversation.id, tag=tag) for tag in tags)
    session.commit()
    return conversation


def rows(body: str) -> list[tuple[str, str, int, str]]:
    """The list's rows as (urgency class, thread url, conversation id, inner html)."""
    return [(css, href, int(cid), inner) for css, href, cid, inner in _ROW.findall(body)]


def names(body: str) -> list[str]:
    """The customer names in the list, top to bottom."""
    found = (
        re.search(r'<a href="/conversations/\d+"><bdi>(.*?)</bdi></a>', r[3], re.S)
        for r in rows(body)
    )
    return [html.unescape(match.group(1)) for match in found if match]


def ids(body: str) -> list[int]:
    return [cid for _, _, cid, _ in rows(body)]


def count_of(body: str, view: str) -> str:
    """The count the view navigation shows for one view."""
    found = re.search(
        rf'<a href="/conversations\?view={view}[^"]*"[^>]*>[^<]*<span class="count">([^<]*)</span>',
        body,
    )
    assert found, f"no count for {view}"
    return found.group(1)


def next_link(body: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">', body)
    return html.unescape(found.group(1)) if found else None


def refresh_url(body: str) -> str:
    found = re.search(r'<tbody id="conversation-rows" data-refresh="([^"]+)"', body)
    assert found, "no refreshing list"
    return html.unescape(found.group(1))


def page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


@pytest.fixture
def agent(session: Session) -> User:
    return make_user(session, role=Role.agent, name=AGENT_NAME)


@pytest.fixture
def colleague(session: Session) -> User:
    return make_user(session, role=Role.agent, name=COLLEAGUE_NAME)


@pytest.fixture
def account(session: Session, fernet: MultiFernet, agent: User) -> Account:
    """The demo account, which the agent works on."""
    account = make_account(session, fernet)
    make_member(session, agent, account)
    return account


@pytest.fixture
def other_account(session: Session, agent: User) -> Account:
    """A second official account, on another platform, which the agent works on too."""
    account = Account(
        platform="instagram",
        display_name="Quendel Insta",
        platform_account_id="ig-4711",
        credentials_encrypted=b"",
    )
    session.add(account)
    session.commit()
    make_member(session, agent, account)
    return account


@pytest.fixture
def agent_client(client: FlaskClient, agent: User) -> FlaskClient:
    """A browser in which the agent is logged in."""
    assert login(client, agent.email).status_code == 302
    return client


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app runs on the inbox database while the test collects them."""
    seen: list[str] = []

    def collect(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # SQLAlchemy's SQLite dialect writes every LIMIT as "LIMIT ? OFFSET ?" with an offset of
        # 0; PostgreSQL shows the real statement.
        seen.append(statement.replace("LIMIT ? OFFSET ?", "LIMIT ?"))

    engine = databases(app).inbox
    event.listen(engine, "before_cursor_execute", collect)
    yield seen
    event.remove(engine, "before_cursor_execute", collect)


# Views and counts ----------------------------------------------------------------------


@pytest.fixture
def every_kind(
    session: Session, account: Account, agent: User, colleague: User
) -> dict[str, Conversation]:
    """One conversation in each place of the workflow."""
    return {
        "mine": seed(session, account, "Meine Kundin", assignee=agent, due=20),
        "mine pending": seed(
            session,
            account,
            "Meine Wartende",
            assignee=agent,
            due=25,
            status=ConversationStatus.pending,
        ),
        "colleague": seed(session, account, "Kollegen Kunde", assignee=colleague, due=21),
        "unassigned": seed(session, account, "Niemandes Kunde", due=22),
        "pending": seed(session, account, "Warte Kunde", due=23, status=ConversationStatus.pending),
        "snoozed": seed(session, account, "Schlaf Kunde", due=5, snoozed=60),
        "woken": seed(session, account, "Wach Kunde", due=24, snoozed=-5),
        "mine snoozed": seed(session, account, "Mein Schläfer", assignee=agent, snoozed=60),
        "closed": seed(session, account, "Zu Kunde", status=ConversationStatus.closed, closed=-3),
        "spam": seed(session, account, "Spam Kunde", spam=True, due=1),
    }


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        ("mine", ["Meine Kundin", "Meine Wartende"]),
        ("unassigned", ["Niemandes Kunde", "Wach Kunde"]),
        ("open", ["Meine Kundin", "Kollegen Kunde", "Niemandes Kunde", "Wach Kunde"]),
        ("pending", ["Warte Kunde", "Meine Wartende"]),
        ("snoozed", ["Schlaf Kunde", "Mein Schläfer"]),
        ("closed", ["Zu Kunde"]),
        ("spam", ["Spam Kunde"]),
    ],
)
def test_each_view_lists_its_conversations_and_counts_them(
    agent_client: FlaskClient, every_kind: dict[str, Conversation], view: str, expected: list[str]
) -> None:
    body = page(agent_client, f"/conversations?view={view}")

    assert names(body) == expected
    assert f'href="/conversations?view={view}" aria-current="page"' in body
    assert count_of(body, view) == str(len(expected))


def test_the_navigation_counts_every_view(
    agent_client: FlaskClient, every_kind: dict[str, Conversation]
) -> None:
    body = page(agent_client, "/conversations")

    shown = {view: count_of(body, view) for view in ("mine", "unassigned", "open", "pending")}
    assert shown == {"mine": "2", "unassigned": "2", "open": "4", "pending": "2"}
    assert [count_of(body, view) for view in ("snoozed", "closed", "spam")] == ["2", "1", "1"]
    for label in ("Mine", "Unassigned", "All open", "Pending", "Snoozed", "Closed", "Spam"):
        assert f">{label} <span" in body


def test_counts_stop_at_a_thousand(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    contact = Contact(platform="demo", platform_user_id="many", display_name="Viel Schreiber")
    session.add(contact)
    session.commit()
    now = datetime.now(UTC)
    many = [
        {
            "account_id": account.id,
            "contact_id": contact.id,
            "kind": "dm",
            "thread_key": f"t-{n}",
            "status": ConversationStatus.open,
            "opened_at": now,
            "last_message_at": now,
            "sla_due_at": now + timedelta(minutes=30 + n),
        }
        for n in range(1000)
    ]
    session.execute(insert(Conversation), many)
    session.commit()
    seed(session, account, "Wartet Noch", status=ConversationStatus.pending)

    body = page(agent_client, "/conversations")

    assert count_of(body, "open") == "999+"
    assert count_of(body, "unassigned") == "999+"
    assert count_of(body, "pending") == "1"
    assert count_of(body, "closed") == "0"
    assert len(rows(body)) == 50


def test_unknown_view_shows_all_open(
    agent_client: FlaskClient, every_kind: dict[str, Conversation]
) -> None:
    body = page(agent_client, "/conversations?view=everything")

    assert names(body) == ["Meine Kundin", "Kollegen Kunde", "Niemandes Kunde", "Wach Kunde"]


# Filters -------------------------------------------------------------------------------


@pytest.fixture
def mixed(session: Session, account: Account, other_account: Account) -> dict[str, Conversation]:
    """Conversations that differ in account, kind, tags, language and urgency."""
    return {
        "late": seed(
            session,
            account,
            "Anna Alt",
            due=-15,
            kind="mention",
            tags=("lieferung",),
            language="de",
        ),
        "soon": seed(session, account, "Bert Bald", due=5, kind="comment", language="en"),
        "later": seed(
            session, other_account, "Cleo Später", due=40, tags=("lieferung", "vip"), language="de"
        ),
        "none": seed(session, other_account, "Dora Dann", due=None, kind="comment"),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("platform=instagram", ["Cleo Später", "Dora Dann"]),
        ("platform=demo", ["Anna Alt", "Bert Bald"]),
        ("kind=comment", ["Bert Bald", "Dora Dann"]),
        ("kind=mention", ["Anna Alt"]),
        ("kind=dm", ["Cleo Später"]),
        ("tag=lieferung", ["Anna Alt", "Cleo Später"]),
        ("tag=vip", ["Cleo Später"]),
        ("tag=unbekannt", []),
        ("language=de", ["Anna Alt", "Cleo Später"]),
        ("language=en", ["Bert Bald"]),
        ("sla=late", ["Anna Alt"]),
        ("sla=soon", ["Bert Bald"]),
        ("sla=later", ["Cleo Später"]),
        ("sla=none", ["Dora Dann"]),
        ("tag=lieferung&language=de&platform=demo", ["Anna Alt"]),
        ("kind=comment&sla=none", ["Dora Dann"]),
        ("kind=&tag=&sla=", ["Anna Alt", "Bert Bald", "Cleo Später", "Dora Dann"]),
    ],
)
def test_filters_narrow_the_list(
    agent_client: FlaskClient, mixed: dict[str, Conversation], query: str, expected: list[str]
) -> None:
    body = page(agent_client, f"/conversations?view=open&{query}")

    assert names(body) == expected
    assert count_of(body, "open") == str(len(expected))


def test_account_filter_and_its_select(
    agent_client: FlaskClient, mixed: dict[str, Conversation], other_account: Account
) -> None:
    body = page(agent_client, f"/conversations?account={other_account.id}")

    assert names(body) == ["Cleo Später", "Dora Dann"]
    assert f'<option value="{other_account.id}" selected>Quendel Insta (instagram)</option>' in body
    assert '<option value="instagram">instagram</option>' in body
    for tag in ("lieferung", "vip"):
        assert f'<option value="{tag}">{tag}</option>' in body


def test_filtered_empty_list_says_the_filters_match_nothing(
    agent_client: FlaskClient, mixed: dict[str, Conversation]
) -> None:
    body = page(agent_client, "/conversations?tag=gibtsnicht")

    assert "No conversations match these filters." in body
    assert 'href="/conversations?view=open">Clear filters</a>' in body


@pytest.mark.parametrize(
    "query",
    [
        "account=abc",
        "kind=fax",
        "sla=bald",
        "language=%3Cscript%3E",
        "tag=" + "x" * 65,
        "account=-1",
        "account=99999999999",
        "account=%C2%B2",
        "tag=a%00b",
        "platform=%00",
    ],
)
def test_malformed_filters_are_refused(agent_client: FlaskClient, query: str) -> None:
    assert agent_client.get(f"/conversations?{query}").status_code == 400
    assert agent_client.get(f"/conversations/rows?{query}").status_code == 400


def test_filters_are_kept_across_views_pages_and_the_refresh(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    for n in range(55):
        seed(session, account, f"Kunde {n:02}", due=30 + n, tags=("vip",))
    seed(session, account, "Ohne Tag", due=1)

    body = page(agent_client, "/conversations?view=unassigned&tag=vip&kind=dm")

    assert 'href="/conversations?view=closed&amp;kind=dm&amp;tag=vip"' in body
    assert refresh_url(body) == "/conversations/rows?view=unassigned&kind=dm&tag=vip"
    following = next_link(body)
    assert following is not None
    assert following.startswith("/conversations?view=unassigned&kind=dm&tag=vip&cursor=")
    assert "Ohne Tag" not in page(agent_client, following)
    refreshed = page(agent_client, refresh_url(body))
    assert "Ohne Tag" not in refreshed
    assert names(refreshed) == names(body)


# Order and urgency ---------------------------------------------------------------------


def test_default_order_is_earliest_due_first_then_latest_activity(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    seed(session, account, "Ohne Frist Alt", due=None, activity=-300)
    seed(session, account, "Spät Fällig", due=50, activity=-2)
    seed(session, account, "Ohne Frist Neu", due=None, activity=-5)
    seed(session, account, "Überfällig", due=-30, activity=-60)
    seed(session, account, "Bald Fällig", due=8, activity=-20)

    body = page(agent_client, "/conversations")

    assert names(body) == [
        "Überfällig",
        "Bald Fällig",
        "Spät Fällig",
        "Ohne Frist Neu",
        "Ohne Frist Alt",
    ]


def test_closed_view_shows_the_latest_closed_first(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    closed = ConversationStatus.closed
    seed(session, account, "Vor Einer Woche", status=closed, closed=-7 * 24 * 60, due=None)
    seed(session, account, "Gerade Eben", status=closed, closed=-1, due=None)
    seed(session, account, "Gestern", status=closed, closed=-24 * 60, due=-30)

    body = page(agent_client, "/conversations?view=closed")

    assert names(body) == ["Gerade Eben", "Gestern", "Vor Einer Woche"]
    # A closed conversation is not waiting for anyone, whatever its old due time said.
    assert all(css == "" for css, *_ in rows(body))
    assert "overdue" not in body


def test_overdue_and_nearly_due_rows_stand_out_in_words(
    agent_client: FlaskClient, mixed: dict[str, Conversation]
) -> None:
    body = page(agent_client, "/conversations")

    marked = {html.unescape(n): css for n, (css, *_) in zip(names(body), rows(body), strict=True)}
    assert marked == {
        "Anna Alt": "overdue",
        "Bert Bald": "due-soon",
        "Cleo Später": "",
        "Dora Dann": "",
    }
    late, soon, later, none = (inner for *_, inner in rows(body))
    assert '<strong class="badge">overdue</strong>' in late
    assert '<strong class="badge">due soon</strong>' in soon
    assert "badge" not in later
    assert "<time datetime=" in later
    assert "no reply due" in none


# Keyset pagination ---------------------------------------------------------------------


def walk(client: FlaskClient, url: str) -> list[list[int]]:
    """The conversation ids of every page, following the "Next page" links to the end."""
    pages: list[list[int]] = []
    following: str | None = url
    while following is not None:
        body = page(client, following)
        pages.append(ids(body))
        following = next_link(body)
        assert len(pages) < 10, "the pages never end"
    return pages


def test_pages_cover_every_conversation_once_in_order(
    agent_client: FlaskClient, session: Session, account: Account, statements: list[str]
) -> None:
    # Many rows share a due time or a last activity: the id must break the ties across pages.
    shared_due, shared_activity = minutes(45), minutes(-30)
    due = [
        seed(session, account, f"F{n:03}", due=shared_due if n % 2 else 10 + n) for n in range(70)
    ]
    undue = [
        seed(session, account, f"O{n:03}", due=None, activity=shared_activity if n % 4 else -n - 1)
        for n in range(62)
    ]
    expected_due = sorted(due, key=lambda c: (c.sla_due_at, c.id))
    expected_undue = sorted(undue, key=lambda c: (c.last_message_at, c.id), reverse=True)
    expected = [c.id for c in expected_due + expected_undue]

    pages = walk(agent_client, "/conversations")

    assert [len(p) for p in pages] == [50, 50, 32]
    flat = [cid for p in pages for cid in p]
    assert flat == expected
    assert len(set(flat)) == len(flat)
    assert [s for s in statements if "OFFSET" in s.upper()] == []


def test_closed_pages_cover_every_closed_conversation_once(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    closed = ConversationStatus.closed
    made = [
        seed(session, account, f"Z{n:03}", status=closed, closed=-(n % 40) - 1, due=None)
        for n in range(110)
    ]
    expected = [c.id for c in sorted(made, key=lambda c: (c.closed_at, c.id), reverse=True)]

    pages = walk(agent_client, "/conversations?view=closed")

    assert [len(p) for p in pages] == [50, 50, 10]
    assert [cid for p in pages for cid in p] == expected


def test_a_deeper_page_is_not_polled_and_links_back_to_the_first(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    for n in range(51):
        seed(session, account, f"K{n:02}", due=10 + n)

    first = page(agent_client, "/conversations")
    following = next_link(first)
    assert following is not None
    second = page(agent_client, following)

    assert 'data-poll="on"' in first
    assert 'data-poll="off"' in second
    assert names(second) == ["K50"]
    assert next_link(second) is None
    assert '<a href="/conversations?view=open">First page</a>' in second


def test_preview_and_tag_queries_do_not_grow_with_the_page(
    app: Flask,
    agent_client: FlaskClient,
    session: Session,
    account: Account,
    statements: list[str],
) -> None:
    app.config["CONVERSATION_ROWS_TTL"] = 0  # every request reads its rows
    seed(session, account, "Eine", tags=("a", "b"))
    agent_client.get("/conversations/rows")  # the first request also reads a setting it keeps
    statements.clear()
    agent_client.get("/conversations/rows")
    few = len(statements)
    for n in range(30):
        seed(session, account, f"Mehr {n}", tags=("c",), due=40 + n)
    statements.clear()

    body = page(agent_client, "/conversations/rows")

    assert len(rows(body)) == 31
    assert len(statements) == few


def test_a_tampered_cursor_is_refused(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    for n in range(51):
        seed(session, account, f"K{n:02}", due=10 + n)
    following = next_link(page(agent_client, "/conversations"))
    assert following is not None
    real = following.split("cursor=", 1)[1]
    payload, signature = real.rsplit(".", 1)
    # A well-formed cursor pointing elsewhere, under the genuine cursor's signature.
    moved = json.dumps(["due", 0, datetime.now(UTC).isoformat(), 1], separators=(",", ":"))
    forged = base64.urlsafe_b64encode(moved.encode()).decode().rstrip("=") + "." + signature

    for token in ("garbage", payload, forged, real + "x", "%00" + real):
        assert agent_client.get(f"/conversations?cursor={token}").status_code == 400, token
        assert agent_client.get(f"/conversations/rows?cursor={token}").status_code == 400, token
    # A genuine cursor of one view makes no sense in another view's order.
    assert agent_client.get(f"/conversations?view=closed&cursor={real}").status_code == 400
    assert names(page(agent_client, f"/conversations?cursor={real}")) == ["K50"]


# Rows ------------------------------------------------------------------------------------


def test_a_row_shows_who_where_what_and_who_handles_it(
    agent_client: FlaskClient, session: Session, other_account: Account, colleague: User
) -> None:
    made = seed(
        session,
        other_account,
        None,
        handle="nur_handle",
        kind="comment",
        assignee=colleague,
        tags=("rückgabe", "dringend"),
        text="Die Jacke ist zu klein. " * 20,
    )

    body = page(agent_client, "/conversations")

    ((css, href, cid, inner),) = rows(body)
    assert (href, cid) == (f"/conversations/{made.id}", made.id)
    assert names(body) == ["nur_handle"]
    assert "Comment · Quendel Insta" in inner
    assert "instagram" in inner
    assert '<span class="tag">dringend</span> <span class="tag">rückgabe</span>' in inner
    assert f'<td class="assignee">{COLLEAGUE_NAME}</td>' in inner
    preview = re.search(r'<td class="preview">(.*?)</td>', inner, re.S)
    assert preview is not None
    assert preview.group(1).startswith("Die Jacke ist zu klein.")
    assert len(html.unescape(preview.group(1))) <= 140


def test_the_preview_is_the_latest_message(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    made = seed(session, account, "Jo Doe", text="Wo bleibt mein Paket?", activity=-20)
    session.add(
        Message(
            conversation_id=made.id or 0,
            account_id=account.id or 0,
            direction=Direction.outbound,
            text="Ist unterwegs!",
            created_at=minutes(-5),
        )
    )
    session.commit()

    ((*_, inner),) = rows(page(agent_client, "/conversations"))

    assert "Ist unterwegs!" in inner
    assert "Wo bleibt mein Paket?" not in inner
    assert '<span class="muted">nobody</span>' in inner


def test_rows_endpoint_returns_only_rows_of_the_first_page(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    for n in range(52):
        seed(session, account, f"K{n:02}", due=10 + n)

    body = page(agent_client, "/conversations/rows?view=open")

    assert body.lstrip().startswith("<tr")
    assert len(rows(body)) == 50
    assert "<table" not in body and 'rel="next"' not in body


# Hostile text and roles ----------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
LINK = "javascript:alert(1)"


def test_hostile_names_previews_and_tags_are_escaped(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    seed(session, account, IMG, handle="<b>evil</b>", text=f"{SCRIPT} {LINK}", tags=(SCRIPT,))

    for url in ("/conversations", "/conversations/rows", "/conversations?tag=%3Cscript%3E"):
        body = page(agent_client, url)
        assert "<script>alert" not in body
        assert "<img" not in body
        assert "<b>evil" not in body
        assert 'href="javascript:' not in body
    body = page(agent_client, "/conversations")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert f'<option value="{html.escape(SCRIPT)}"' in body


def test_marketing_may_not_see_the_list(client: FlaskClient, session: Session) -> None:
    marketer = make_user(session, role=Role.marketing)
    assert login(client, marketer.email).status_code == 302

    assert client.get("/conversations").status_code == 403
    assert client.get("/conversations/rows").status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client: FlaskClient) -> None:
    response = client.get("/conversations/rows")

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


# Counts and rendering at scale ---------------------------------------------------------


def test_deeper_pages_leave_the_counts_out(
    agent_client: FlaskClient, session: Session, account: Account, statements: list[str]
) -> None:
    for n in range(51):
        seed(session, account, f"K{n:02}", due=10 + n)
    statements.clear()
    first = page(agent_client, "/conversations")
    counted_first = [s for s in statements if "count(" in s.lower()]
    following = next_link(first)
    assert following is not None
    statements.clear()

    second = page(agent_client, following)

    assert count_of(first, "open") == "51"
    # The six counts shared by everyone on these accounts in one statement, "mine" in another.
    assert len(counted_first) == 2
    assert '<span class="count">' not in second
    assert ">All open</a>" in second
    assert [s for s in statements if "count(" in s.lower()] == []


def test_counts_may_lag_a_few_seconds_and_rows_a_moment(
    app: Flask, agent_client: FlaskClient, session: Session, account: Account
) -> None:
    app.config["CONVERSATION_ROWS_TTL"] = 0.3
    seed(session, account, "Erste Kundin", due=10)
    first = page(agent_client, "/conversations")
    assert count_of(first, "open") == "1"
    seed(session, account, "Zweite Kundin", due=20)
    assert names(page(agent_client, "/conversations")) == ["Erste Kundin"]
    time.sleep(0.4)

    again = page(agent_client, "/conversations")
    refreshed = page(agent_client, "/conversations/rows")
    app.config["CONVERSATION_COUNTS_TTL"] = 0
    uncached = page(agent_client, "/conversations")

    assert names(again) == ["Erste Kundin", "Zweite Kundin"]
    assert names(refreshed) == ["Erste Kundin", "Zweite Kundin"]
    assert count_of(again, "open") == "1"
    assert count_of(uncached, "open") == "2"


@pytest.mark.parametrize("language", ["de", "en"])
def test_due_times_read_as_the_language_writes_them(
    app: Flask, agent_client: FlaskClient, session: Session, account: Account, language: str
) -> None:
    due = [minutes(m) for m in (-90, 7, 600, 60 * 24 * 40)]
    for n, moment in enumerate(due):
        seed(session, account, f"Kunde {n}", due=moment)
    with app.test_request_context(headers={"Accept-Language": language}):
        expected = [format_datetime(moment, "short") for moment in due]

    response = agent_client.get("/conversations", headers={"Accept-Language": language})

    shown = re.findall(r'<time datetime="[^"]+">([^<]*)</time>', response.get_data(as_text=True))
    assert [html.unescape(text) for text in shown] == expected
