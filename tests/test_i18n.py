"""German and English: browser choice, the language switch, and a complete, compiled catalog."""

from __future__ import annotations

import re
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from cryptography.fernet import MultiFernet
from flask.testing import FlaskClient
from sqlmodel import Session, select

from inbox.ingest import ingest
from inbox.models import Account, Conversation, Role, User
from inbox.types import utcnow
from tests.conftest import (
    csrf_token,
    login,
    make_account,
    make_item,
    make_member,
    make_user,
    post_form,
)

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "inbox" / "translations"
GERMAN_PO = TRANSLATIONS / "de" / "LC_MESSAGES" / "messages.po"
GERMAN_MO = GERMAN_PO.with_suffix(".mo")
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}

GERMAN = {"Accept-Language": "de-DE,de;q=0.9"}
ENGLISH = {"Accept-Language": "en-US,en;q=0.9"}


def _page(client: FlaskClient, path: str, headers: dict[str, str] | None = None) -> str:
    response = client.get(path, headers=headers or {})
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def _browser_language(client: FlaskClient, header: dict[str, str]) -> None:
    """Make every later request carry this Accept-Language header, as a browser does."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = header["Accept-Language"]


def _switch_language(client: FlaskClient, page: str, lang: str, next_path: str) -> str:
    """Press a language button in the page header; return where the browser is sent."""
    response = post_form(client, page, "/language", {"lang": lang, "next": next_path})
    assert response.status_code == 302
    return str(response.location)


def _conversation_id(session: Session) -> int:
    conversation = session.exec(select(Conversation)).one()
    assert conversation.id is not None
    return conversation.id


def _agent(session: Session) -> User:
    """An agent who works on every account there is."""
    user = make_user(session)
    for account in session.exec(select(Account)).all():
        make_member(session, user, account)
    return user


def _seed_dm(session: Session, fernet: MultiFernet) -> int:
    """One overdue direct message from a customer; returns its conversation's id."""
    account = make_account(session, fernet)
    ingest(
        session=session, account=account, item=make_item(created_at=utcnow() - timedelta(days=1))
    )
    return _conversation_id(session)


# The login page, by browser language ------------------------------------------------------


def test_login_page_is_german_for_a_german_browser(client: FlaskClient) -> None:
    page = _page(client, "/login", headers=GERMAN)
    assert '<html lang="de">' in page
    assert "<h1>Anmelden</h1>" in page
    assert "<title>Anmelden · socialcare</title>" in page
    assert ">Passwort</label>" in page
    assert ">E-Mail</label>" in page
    assert "Log in" not in page
    assert "Password" not in page


def test_login_page_is_english_for_an_english_browser(client: FlaskClient) -> None:
    page = _page(client, "/login", headers=ENGLISH)
    assert '<html lang="en">' in page
    assert "<h1>Log in</h1>" in page
    assert ">Password</label>" in page
    assert "Anmelden" not in page


def test_login_page_falls_back_to_english(client: FlaskClient) -> None:
    for header in ({}, {"Accept-Language": "fr-FR,fr;q=0.9"}):
        page = _page(client, "/login", headers=header)
        assert '<html lang="en">' in page
        assert "<h1>Log in</h1>" in page


def test_wrong_password_is_reported_in_german(client: FlaskClient, session: Session) -> None:
    user = _agent(session)
    _browser_language(client, GERMAN)
    response = login(client, user.email, password="not the password")
    assert response.status_code == 200
    assert "E-Mail-Adresse oder Passwort ist falsch, oder es gab zu viele Versuche" in (
        response.get_data(as_text=True)
    )


def test_login_prompt_is_german_when_a_page_needs_login(client: FlaskClient) -> None:
    _browser_language(client, GERMAN)
    response = client.get("/conversations", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "<h1>Anmelden</h1>" in page
    assert "Bitte melden Sie sich an, um fortzufahren." in page


# The language switch in the header ----------------------------------------------------------


def test_language_switch_overrides_the_browser_and_sticks(client: FlaskClient) -> None:
    _browser_language(client, ENGLISH)
    assert "<h1>Log in</h1>" in _page(client, "/login")

    assert _switch_language(client, "/login", "de", "/login") == "/login"
    # Later pages stay German although the browser keeps asking for English.
    for _ in range(2):
        page = _page(client, "/login")
        assert '<html lang="de">' in page
        assert "<h1>Anmelden</h1>" in page
        assert 'value="de" aria-current="true"' in page

    _switch_language(client, "/login", "en", "/login")
    _browser_language(client, GERMAN)
    page = _page(client, "/login")
    assert '<html lang="en">' in page
    assert "<h1>Log in</h1>" in page


def test_language_switch_ignores_unknown_languages(client: FlaskClient) -> None:
    _browser_language(client, GERMAN)
    _switch_language(client, "/login", "fr", "/login")
    assert "<h1>Anmelden</h1>" in _page(client, "/login")


def test_language_switch_needs_the_csrf_token(client: FlaskClient) -> None:
    response = client.post("/language", data={"lang": "de", "next": "/login"})
    assert response.status_code == 400
    assert "<h1>Log in</h1>" in _page(client, "/login", headers=ENGLISH)


def test_language_switch_returns_to_the_page_with_its_query(
    client: FlaskClient, session: Session
) -> None:
    user = _agent(session)
    login(client, user.email)
    page = _page(client, "/conversations?view=closed")
    assert 'name="next" value="/conversations?view=closed"' in page
    target = _switch_language(client, "/conversations", "de", "/conversations?view=closed")
    assert target == "/conversations?view=closed"


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
def test_language_switch_is_no_open_redirect(client: FlaskClient, next_path: str) -> None:
    assert _switch_language(client, "/login", "de", next_path) == "/"


def test_language_switch_keeps_a_backslash_path_on_the_site(client: FlaskClient) -> None:
    # Browsers read a backslash as a slash, so a raw "/\host" would leave the site.
    location = _switch_language(client, "/login", "de", "/\\evil.example/phish")
    target = urlsplit(location)
    assert (target.scheme, target.netloc) == ("", "")
    assert location.startswith("/")
    assert not location.startswith("//")
    assert "\\" not in location


# The agent's pages after login ----------------------------------------------------------------


def test_inbox_renders_in_german(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    _seed_dm(session, fernet)
    user = _agent(session)
    _browser_language(client, GERMAN)
    login(client, user.email)

    page = _page(client, "/conversations")
    assert "<title>Posteingang · socialcare</title>" in page
    assert "<h1>Posteingang</h1>" in page
    for label in ("Alle offenen", "Geschlossen", "Kunde", "Kanal", "Letzte Nachricht"):
        assert re.search(rf">\s*{label}\s*<", page), label
    assert "Direktnachricht · " in page
    assert '<strong class="badge">überfällig</strong>' in page
    assert "Abmelden" in page
    assert "Direct message" not in page
    assert "overdue" not in page.replace('class="conversation-row overdue"', "")

    empty = _page(client, "/conversations?view=closed")
    assert "Hier gibt es noch keine Unterhaltungen." in empty


def test_conversation_thread_renders_in_german(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    conversation_id = _seed_dm(session, fernet)
    user = _agent(session)
    _browser_language(client, GERMAN)
    login(client, user.email)

    page = _page(client, f"/conversations/{conversation_id}")
    assert "← Posteingang" in page
    assert re.search(r"Direktnachricht · [^<]+ · offen</p>", page)
    assert '<button name="status" value="closed" data-shortcut="close">Schließen</button>' in page
    assert re.search(r'<label for="reply-text">\s*Antworten als [^<]+</label>', page)
    assert '<button type="submit" class="primary">Antwort senden</button>' in page
    assert "Send reply" not in page


def test_reply_and_status_change_are_german(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    conversation_id = _seed_dm(session, fernet)
    user = _agent(session)
    _browser_language(client, GERMAN)
    login(client, user.email)
    thread = f"/conversations/{conversation_id}"

    response = post_form(client, thread, f"{thread}/reply", {"text": "Wir kümmern uns darum."})
    assert response.status_code == 302
    page = _page(client, thread)
    assert "Antwort gesendet." in page
    assert '<span class="delivery sent">gesendet</span>' in page

    post_form(client, thread, f"{thread}/status", {"status": "closed"})
    page = _page(client, thread)
    assert re.search(r"Direktnachricht · [^<]+ · geschlossen</p>", page)
    assert '<button name="status" value="open">Wieder öffnen</button>' in page


def test_failed_reply_offers_retry_in_german(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet, fail_replies=True)
    ingest(session=session, account=account, item=make_item())
    conversation_id = _conversation_id(session)
    user = _agent(session)
    _browser_language(client, GERMAN)
    login(client, user.email)
    thread = f"/conversations/{conversation_id}"

    post_form(client, thread, f"{thread}/reply", {"text": "Wir kümmern uns darum."})
    page = _page(client, thread)
    assert "Die Plattform hat die Antwort nicht angenommen." in page
    assert '<span class="delivery failed">nicht gesendet</span>' in page
    assert "Meldung der Plattform:" in page
    assert "<button>Erneut senden</button>" in page


def test_reports_and_forbidden_page_render_in_german(client: FlaskClient, session: Session) -> None:
    user = make_user(session, role=Role.marketing)
    _browser_language(client, GERMAN)
    login(client, user.email)

    page = _page(client, "/reports")
    assert "<title>Trendbericht · socialcare</title>" in page
    assert "<h1>Trendbericht</h1>" in page
    assert ">30 Tage</a>" in page
    assert "Für diesen Zeitraum liegen noch keine Daten vor." in page

    forbidden = client.get("/conversations")
    assert forbidden.status_code == 403
    page = forbidden.get_data(as_text=True)
    assert "<h1>Kein Zugriff</h1>" in page
    assert "Ihre Rolle hat keinen Zugriff auf diese Seite." in page


def test_pages_after_login_stay_english_for_an_english_browser(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    conversation_id = _seed_dm(session, fernet)
    user = _agent(session)
    _browser_language(client, ENGLISH)
    login(client, user.email)
    assert "Direct message · " in _page(client, "/conversations")
    page = _page(client, f"/conversations/{conversation_id}")
    assert '<button type="submit" class="primary">Send reply</button>' in page
    assert csrf_token(client, f"/conversations/{conversation_id}")


# The catalog -----------------------------------------------------------------------------------


def _extracted_ids() -> set[str]:
    """Every message the source marks for translation, found as `pybabel extract` finds it."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config, filename="babel.cfg")
    ids: set[str] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS
    ):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


def _read_german_po() -> Catalog:
    with GERMAN_PO.open("rb") as po:
        return read_po(po, locale="de")


def _translations(catalog: Catalog) -> dict[object, object]:
    return {message.id: message.string for message in catalog if message.id}


def test_extraction_finds_the_marked_strings_of_code_and_templates() -> None:
    ids = _extracted_ids()
    # From inbox/*.py (gettext and lazy_gettext) and from templates/**.html.
    assert {"Reply sent.", "Direct message", "Please log in to continue.", "Send reply"} <= ids
    assert "Reply as %(account)s on %(platform)s" in ids


def test_every_extracted_message_has_a_german_translation() -> None:
    ids = _extracted_ids()
    catalog = _read_german_po()
    missing = sorted(msgid for msgid in ids if msgid not in catalog)
    assert not missing, f"run pybabel update (see docs/translations.md): {missing}"
    untranslated = sorted(msgid for msgid in ids if not catalog[msgid].string)
    assert not untranslated, f"no German translation: {untranslated}"
    fuzzy = sorted(msgid for msgid in ids if catalog[msgid].fuzzy)
    assert not fuzzy, f"fuzzy German translations: {fuzzy}"


def test_template_is_up_to_date_with_the_source() -> None:
    with (TRANSLATIONS / "messages.pot").open("rb") as pot:
        template = read_po(pot)
    assert {message.id for message in template if message.id} == _extracted_ids()


def test_german_translations_keep_their_placeholders() -> None:
    catalog = _read_german_po()
    problems = [(message.id, errors) for message, errors in catalog.check()]
    assert not problems
    for message in catalog:
        if message.id:
            placeholders = re.findall(r"%\(\w+\)s", str(message.id))
            assert sorted(placeholders) == sorted(re.findall(r"%\(\w+\)s", str(message.string)))


def test_german_catalog_has_no_obsolete_messages() -> None:
    assert not _read_german_po().obsolete


def test_compiled_catalog_is_up_to_date() -> None:
    compiled = BytesIO()
    write_mo(compiled, _read_german_po())
    compiled.seek(0)
    with GERMAN_MO.open("rb") as committed:
        assert _translations(read_mo(committed)) == _translations(read_mo(compiled)), (
            "run pybabel compile -d inbox/translations"
        )
