"""Search as an agent uses it: words, umlauts, prefixes, names, tags, safe highlights, audit."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text as sql
from sqlmodel import Session, col, select

from connectors import Author
from inbox.db import databases
from inbox.ingest import ingest
from inbox.models import Account, AuditEvent, Contact, Message, Role, User
from inbox.search import highlight, parse_query, search_conversations
from inbox.workflow_models import ConversationTag
from tests.conftest import load_migration, login, make_account, make_item, make_member, make_user


@pytest.fixture(autouse=True)
def search_index(app: Flask) -> None:
    """The search indexes exactly as migrations 0005 (messages) and 0007 (contacts) make them
    (the fixtures use create_all)."""
    messages = load_migration("0005_agent_workflow")
    contacts = load_migration("0007_spam_snoozed_contact_search")
    engine = databases(app).inbox
    statements = (
        messages._SQLITE_SEARCH + contacts._SQLITE_CONTACT_SEARCH
        if engine.dialect.name == "sqlite"
        else messages._POSTGRESQL_SEARCH + contacts._POSTGRESQL_CONTACT_SEARCH
    )
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sql(statement))


@pytest.fixture
def agent(session: Session) -> User:
    return make_user(session, role=Role.agent, name="Jana Schneider")


@pytest.fixture
def account(session: Session, fernet: MultiFernet, agent: User) -> Account:
    """The demo account, which the agent works on."""
    account = make_account(session, fernet)
    make_member(session, agent, account)
    return account


@pytest.fixture
def agent_client(client: FlaskClient, agent: User) -> FlaskClient:
    assert login(client, agent.email).status_code == 302
    return client


def write_in(
    session: Session,
    account: Account,
    text: str,
    *,
    who: tuple[str, str | None, str | None] = ("7001", "Jo Doe", "jodoe"),
    minutes_ago: float = 10,
) -> Message:
    """A customer's DM arriving in the inbox; `who` is (platform id, name, handle)."""
    user_id, name, handle = who
    item = make_item(
        author=Author(platform_user_id=user_id, handle=handle, display_name=name),
        text=text,
        created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        thread_key=f"dm-{user_id}",
    )
    return ingest(session=session, account=account, item=item).message


def search(client: FlaskClient, q: str, **params: str) -> str:
    response = client.get("/conversations/search", query_string={"q": q, **params})
    assert response.status_code == 200, (q, response.status_code)
    return response.get_data(as_text=True)


def result_rows(body: str) -> list[tuple[int, str]]:
    """The results as (conversation id, inner html), top to bottom."""
    found = re.findall(
        r'<tr class="conversation-row" data-href="/conversations/(\d+)" '
        r'data-conversation-id="(\d+)">(.*?)</tr>',
        body,
        re.S,
    )
    assert all(href == cid for href, cid, _ in found)
    return [(int(cid), inner) for _, cid, inner in found]


def snippets(body: str) -> list[str]:
    """The matched message of each result as the HTML the browser gets."""
    return re.findall(r'<p class="snippet-text" dir="auto"><bdi>(.*?)</bdi></p>', body, re.S)


def found_ids(body: str) -> list[int]:
    return [cid for cid, _ in result_rows(body)]


def audit_events(session: Session) -> list[AuditEvent]:
    session.expire_all()
    query = select(AuditEvent).where(AuditEvent.action == "search").order_by(col(AuditEvent.id))
    return list(session.exec(query).all())


# Words in messages -----------------------------------------------------------------------


def test_finds_conversations_by_words_in_their_messages(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    paket = write_in(session, account, "Wo bleibt mein Paket? Die Sendung hängt fest.")
    other = write_in(session, account, "Meine Rechnung stimmt nicht", who=("2", "Ute Beck", "ute"))

    body = search(agent_client, "paket")
    assert found_ids(body) == [paket.conversation_id]
    assert "<bdi>Jo Doe</bdi>" in body and "@<bdi>jodoe</bdi>" in body
    assert "Direct message" in body
    # Every word must occur: no conversation has both.
    assert found_ids(search(agent_client, "Paket Rechnung")) == []
    assert found_ids(search(agent_client, "Rechnung stimmt")) == [other.conversation_id]


def test_german_inflections_are_found_where_the_database_stems_german(
    agent_client: FlaskClient, session: Session, account: Account, backend: str
) -> None:
    message = write_in(session, account, "Zwei Rechnungen sind doppelt gekommen")

    body = search(agent_client, "Rechnung")

    if backend == "postgresql":
        assert found_ids(body) == [message.conversation_id]
        assert snippets(body) == ["Zwei <mark>Rechnungen</mark> sind doppelt gekommen"]
    else:
        # SQLite's index knows words, not their German forms: the exact form finds it.
        assert found_ids(body) == []
        assert found_ids(search(agent_client, "rechnungen")) == [message.conversation_id]


def test_umlauts_and_case_do_not_matter(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    message = write_in(session, account, "Die Lieferung nach Köln hat Herr Müller verschlampt")

    for q in ("koln", "KÖLN", "Köln", "muller"):
        assert found_ids(search(agent_client, q)) == [message.conversation_id], q
    assert snippets(search(agent_client, "koln muller")) == [
        "Die Lieferung nach <mark>Köln</mark> hat Herr <mark>Müller</mark> verschlampt"
    ]


def test_a_trailing_star_finds_words_by_their_beginning(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    message = write_in(session, account, "Bitte um Rückerstattung des Betrags")

    body = search(agent_client, "rückerst*")

    assert found_ids(body) == [message.conversation_id]
    assert snippets(body) == ["Bitte um <mark>Rückerstattung</mark> des Betrags"]
    assert found_ids(search(agent_client, "rückerst")) == []


FINDS_PAKET = {
    '"Paket',
    'Paket"',
    "(Paket",
    "-Paket",
    "Paket -Sendung",
    "^Paket",
    "{Paket}",
    "Paket:*",
}


@pytest.mark.parametrize(
    "q",
    [
        '"',
        '"Paket',
        'Paket"',
        "(Paket",
        "NEAR(Paket",
        "NEAR(Paket Sendung, 2)",
        "-Paket",
        "Paket -Sendung",
        "*",
        "Pa*ket",
        "%",
        "_",
        "%_%",
        "'",
        "Paket OR",
        "AND",
        "text:Paket",
        "^Paket",
        "{Paket}",
        "\\",
        "'; DROP TABLE message; --",
        "!!!",
        "tag:",
        "Paket:*",
        "a & b | !c <-> d",
    ],
)
def test_hostile_query_syntax_never_breaks_the_search(
    agent_client: FlaskClient, session: Session, account: Account, q: str
) -> None:
    message = write_in(session, account, "Wo bleibt mein Paket? Die Sendung hängt fest.")
    write_in(session, account, "Ganz andere Frage", who=("9", "Ida Ohne", "ida"))

    ids = found_ids(search(agent_client, q))

    # Punctuation is no syntax: what is left are the words, and they still find the message
    # ("NEAR" or "OR" are words like any other, so they must occur too).
    expected = [message.conversation_id] if q in FINDS_PAKET else []
    assert ids == expected
    assert session.exec(select(Message)).all(), "messages survive"


# Names, handles and tags -----------------------------------------------------------------


def test_finds_conversations_by_contact_handle_or_name(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    jo = write_in(session, account, "Hallo")
    write_in(session, account, "Guten Tag", who=("2", "Ute Beck", "ute_b"))

    for q in ("jodoe", "@JoDoe", "doe", "Jo Doe"):
        body = search(agent_client, q)
        assert found_ids(body) == [jo.conversation_id], q
    body = search(agent_client, "doe")
    assert "<bdi>Jo <mark>Doe</mark></bdi>" in body
    assert "@<bdi>jo<mark>doe</mark></bdi>" in body
    # A name match shows the latest message for orientation, without marks.
    assert snippets(body) == ["Hallo"]
    assert "Latest message" in body


def test_like_wildcards_in_a_name_search_are_plain_characters(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    underscore = write_in(session, account, "Hallo", who=("1", None, "anna_berg"))
    write_in(session, account, "Hallo", who=("2", None, "annaxberg"))
    percent = write_in(session, account, "Hallo", who=("3", "Rabatt 50% Fan", None))
    write_in(session, account, "Hallo", who=("4", "Rabatt 500 Fan", None))

    assert found_ids(search(agent_client, "a_b")) == [underscore.conversation_id]
    assert found_ids(search(agent_client, "50%")) == [percent.conversation_id]
    assert found_ids(search(agent_client, "%%")) == []


def tag(session: Session, message: Message, name: str) -> None:
    session.add(ConversationTag(conversation_id=message.conversation_id, tag=name))
    session.commit()


def test_finds_conversations_by_tag_in_the_query_or_the_tag_field(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    billing = write_in(session, account, "Rechnung doppelt", who=("1", "Ada A", "ada"))
    other = write_in(session, account, "Rechnung falsch", who=("2", "Bea B", "bea"))
    tag(session, billing, "billing")
    tag(session, other, "late shipping")

    assert found_ids(search(agent_client, "TAG:Billing")) == [billing.conversation_id]
    assert found_ids(search(agent_client, "tag:billing Rechnung")) == [billing.conversation_id]
    assert found_ids(search(agent_client, "Rechnung", tag=" Late  Shipping")) == [
        other.conversation_id
    ]
    assert found_ids(search(agent_client, "", tag="billing")) == [billing.conversation_id]
    assert found_ids(search(agent_client, "tag:billing falsch")) == []
    assert found_ids(search(agent_client, "tag:nothing")) == []


# Results and highlighting ----------------------------------------------------------------


def test_highlights_exactly_the_matched_words(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    write_in(session, account, "Paket weg? Paketdienst sagt: Paket kommt.")

    assert snippets(search(agent_client, "paket")) == [
        "<mark>Paket</mark> weg? Paketdienst sagt: <mark>Paket</mark> kommt."
    ]


def test_hostile_message_text_stays_text_in_results(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    write_in(
        session,
        account,
        '<script>alert(1)</script> Paket&amp;Paket <img src=x onerror="alert(2)"> '
        "javascript:alert(3)",
    )

    (snippet,) = snippets(search(agent_client, "paket"))

    assert snippet == (
        "&lt;script&gt;alert(1)&lt;/script&gt; <mark>Paket</mark>&amp;amp;<mark>Paket</mark> "
        "&lt;img src=x onerror=&#34;alert(2)&#34;&gt; javascript:alert(3)"
    )
    # Words inside markup and entities are marked without breaking the escaping around them
    # (PostgreSQL's parser skips tags and entities, so this is checked on the snippet maker).
    marked = highlight("<script>x</script> &amp;", parse_query("script amp").terms)
    assert (
        marked == "&lt;<mark>script</mark>&gt;x&lt;/<mark>script</mark>&gt; &amp;<mark>amp</mark>;"
    )


def test_right_to_left_overrides_and_long_words_stay_in_their_place(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    text = "\u202eParcel gnissim\u202c " + "x" * 500 + " Paket"
    write_in(session, account, text, who=("r", "Evil\u202eeman", "rtl"))

    body = search(agent_client, "paket")

    # Isolated: a reversing character in a name or message cannot flip the page around it.
    assert "<bdi>Evil\u202eeman</bdi>" in body
    assert snippets(body) == ["…<mark>Paket</mark>"]


def test_long_messages_show_a_snippet_around_the_match(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    text = "Anfang " + "bla " * 150 + "Stornierung gewünscht " + "blub " * 150 + "Ende"
    write_in(session, account, text)

    (snippet,) = snippets(search(agent_client, "stornierung"))

    assert "<mark>Stornierung</mark> gewünscht" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert "Anfang" not in snippet and "Ende" not in snippet


def test_new_messages_are_found_right_after_they_arrive(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    assert found_ids(search(agent_client, "Kündigung")) == []

    message = write_in(session, account, "Ich möchte meine Kündigung bestätigt haben")

    assert found_ids(search(agent_client, "Kündigung")) == [message.conversation_id]


def test_results_are_newest_match_first_and_capped_with_a_note(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    messages = [
        write_in(
            session,
            account,
            f"Gutschein Nummer {n}",
            who=(f"c{n}", f"Kunde {n}", None),
            minutes_ago=100 - n,
        )
        for n in range(52)
    ]

    body = search(agent_client, "gutschein")

    newest_first = [m.conversation_id for m in reversed(messages)]
    assert found_ids(body) == newest_first[:50]
    assert "Only the first 50 conversations are shown" in body
    assert "Only the first" not in search(agent_client, "Nummer 7")
    assert len(found_ids(search(agent_client, "gutschein", order="relevance"))) == 50


def test_best_match_first_puts_the_closest_message_on_top(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    close = write_in(session, account, "Gutschein Gutschein ungültig", minutes_ago=30)
    newer = write_in(
        session,
        account,
        "Ich habe eine lange Frage zur Lieferung, zur Rechnung und zum Gutschein von letzter Woche",
        who=("2", "Ute Beck", "ute"),
        minutes_ago=5,
    )

    assert found_ids(search(agent_client, "gutschein")) == [
        newer.conversation_id,
        close.conversation_id,
    ]
    assert found_ids(search(agent_client, "gutschein", order="relevance")) == [
        close.conversation_id,
        newer.conversation_id,
    ]


def test_search_service_keeps_to_the_accounts_given(session: Session, account: Account) -> None:
    message = write_in(session, account, "Paket fehlt")
    query = parse_query("paket")

    def ids(account_ids: Any) -> list[int]:
        found = search_conversations(session=session, query=query, account_ids=account_ids)
        return [hit.conversation.id or 0 for hit in found.hits]

    assert ids(None) == [message.conversation_id]
    assert ids([account.id]) == [message.conversation_id]
    assert ids([]) == []


# The page, roles and the audit trail -----------------------------------------------------


def test_empty_search_shows_a_hint_and_the_header_holds_the_search_box(
    agent_client: FlaskClient, session: Session
) -> None:
    body = search(agent_client, "")

    assert "End a word with *" in body
    assert result_rows(body) == []
    assert audit_events(session) == []
    inbox_page = agent_client.get("/conversations").get_data(as_text=True)
    form = re.search(r'<form class="header-search" method="get" action="([^"]+)"', inbox_page)
    assert form and form.group(1) == "/conversations/search"
    assert '<input id="search-q" name="q" type="search"' in inbox_page
    assert 'value="Köln &lt;b&gt;"' in search(agent_client, "Köln <b>")


def test_nothing_found_says_so(agent_client: FlaskClient, account: Account) -> None:
    assert "No conversations match your search." in search(agent_client, "Zeppelin")


def test_marketing_may_not_search(client: FlaskClient, session: Session) -> None:
    marketing = make_user(session, role=Role.marketing)
    login(client, marketing.email)

    assert client.get("/conversations/search?q=Paket").status_code == 403
    assert audit_events(session) == []


def test_searching_is_audited_without_the_query_text(
    agent_client: FlaskClient, session: Session, account: Account, agent: User
) -> None:
    write_in(session, account, "Meine Adresse ist Lindenweg 5")

    search(agent_client, "Lindenweg 5")

    (event,) = audit_events(session)
    assert event.user_id == agent.id
    assert event.detail["query_length"] == len("Lindenweg 5")
    assert event.detail["results"] == 1
    assert "lindenweg" not in repr(event.detail).lower()
    assert "lindenweg" not in repr(event.target_type).lower()


def test_a_frequent_word_is_read_from_the_newest_messages_and_old_ones_are_still_found(
    agent_client: FlaskClient, session: Session, account: Account, monkeypatch: Any
) -> None:
    # Scaled down: PostgreSQL first looks at the newest few messages, then at all of them.
    monkeypatch.setattr("inbox.search._WINDOW", 3)
    monkeypatch.setattr("inbox.search.SCAN", 2)
    old = write_in(session, account, "Reklamation wegen Kratzer", who=("o", "Olga Alt", None))
    written = [
        write_in(session, account, f"Lieferung {n}", who=(f"n{n}", f"Neu {n}", None))
        for n in range(4)
    ]

    body = search(agent_client, "lieferung")
    assert found_ids(body) == [written[3].conversation_id, written[2].conversation_id]
    assert "Only the first 2 conversations are shown" in body
    assert found_ids(search(agent_client, "reklamation")) == [old.conversation_id]


def test_names_need_three_characters_and_shorter_words_still_find_messages(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    jo = write_in(session, account, "Hallo", who=("1", "Jo Doe", "jo"))
    ok = write_in(session, account, "Passt so, ok", who=("2", "Ute Beck", "ute"))

    # Two characters are no name search (the trigram indexes need three): only words count.
    assert found_ids(search(agent_client, "Jo")) == []
    assert found_ids(search(agent_client, "@jo")) == []
    assert found_ids(search(agent_client, "ok")) == [ok.conversation_id]
    assert found_ids(search(agent_client, "Doe")) == [jo.conversation_id]
    assert "at least 3 characters of a customer’s name or handle" in search(agent_client, "")


def test_names_are_found_whatever_their_case_and_after_they_change(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    ayse = write_in(session, account, "Hallo", who=("1", "AYŞE ÖZTÜRK", "ayse_oe"))
    ilker = write_in(session, account, "Hallo", who=("2", "İlker Yılmaz", None))

    assert found_ids(search(agent_client, "öztürk")) == [ayse.conversation_id]
    assert found_ids(search(agent_client, "Yılmaz")) == [ilker.conversation_id]
    assert "<bdi>İlker <mark>Yılmaz</mark></bdi>" in search(agent_client, "yılmaz")

    contact = session.get(Contact, ayse.author_contact_id)
    assert contact is not None
    contact.display_name, contact.handle = "Ayşe Demir", "ademir"
    session.add(contact)
    session.commit()

    assert found_ids(search(agent_client, "öztürk")) == []
    assert found_ids(search(agent_client, "Demir")) == [ayse.conversation_id]
    assert found_ids(search(agent_client, "ademi")) == [ayse.conversation_id]


def test_best_match_first_ranks_only_the_newest_matches_and_says_so(
    agent_client: FlaskClient, session: Session, account: Account, monkeypatch: Any
) -> None:
    assert "Best match first ranks only the 1,000 newest matching messages." in search(
        agent_client, ""
    )
    monkeypatch.setattr("inbox.search.SCAN", 2)
    write_in(
        session, account, "Gutschein Gutschein Gutschein", who=("1", "Alt", None), minutes_ago=60
    )
    newer = [
        write_in(
            session,
            account,
            f"Eine lange Frage zu Lieferung, Rechnung und Gutschein Nummer {n}",
            who=(f"n{n}", f"Neu {n}", None),
            minutes_ago=10 - n,
        )
        for n in range(2)
    ]

    body = search(agent_client, "gutschein", order="relevance")

    # The old, closer match lies outside the two newest matches that are ranked.
    assert sorted(found_ids(body)) == sorted(m.conversation_id for m in newer)


def test_a_tag_finds_old_matches_beyond_the_newest_messages(
    agent_client: FlaskClient, session: Session, account: Account, monkeypatch: Any
) -> None:
    # Scaled down: the newest messages hold no tagged match, so the tag is looked up first
    # (or, past the cap, checked per match).
    monkeypatch.setattr("inbox.search._WINDOW", 2)
    old = write_in(
        session, account, "Erstattung bitte", who=("o", "Olga Alt", None), minutes_ago=90
    )
    both = write_in(
        session, account, "Erstattung offen", who=("b", "Bea Beide", None), minutes_ago=80
    )
    for n in range(4):
        write_in(session, account, f"Erstattung {n}", who=(f"n{n}", f"Neu {n}", None))
    tag(session, old, "vip")
    tag(session, both, "vip")
    tag(session, both, "billing")

    assert found_ids(search(agent_client, "Erstattung tag:vip")) == [
        both.conversation_id,
        old.conversation_id,
    ]
    assert found_ids(search(agent_client, "Erstattung tag:vip tag:billing")) == [
        both.conversation_id
    ]
    assert found_ids(search(agent_client, "Erstattung tag:nobody")) == []
    monkeypatch.setattr("inbox.search._TAGGED", 1)
    relevant = found_ids(search(agent_client, "Erstattung", tag="vip", order="relevance"))
    assert sorted(relevant) == sorted([old.conversation_id, both.conversation_id])


def test_order_numbers_and_hyphenated_words_are_found_as_typed(
    agent_client: FlaskClient, session: Session, account: Account
) -> None:
    order = write_in(session, account, "Wo bleibt Bestellung QM-22414555?")
    mail = write_in(session, account, "Meine E-Mail-Adresse", who=("2", "Ute Beck", "ute"))

    body = search(agent_client, "QM-22414555")
    assert found_ids(body) == [order.conversation_id]
    assert snippets(body) == ["Wo bleibt Bestellung <mark>QM</mark>-<mark>22414555</mark>?"]
    assert found_ids(search(agent_client, "qm-22414556")) == []
    assert found_ids(search(agent_client, "(QM-22414555)")) == [order.conversation_id]
    assert found_ids(search(agent_client, "e-mail")) == [mail.conversation_id]
