"""Every route × every role against the written permission table in docs/permissions.md, and
no personal data for marketing (or anyone logged out) from any route or error page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session
from werkzeug.routing import Rule

from connectors import Author
from inbox.ingest import ingest
from inbox.models import Account, Contact, DeadLetter, Delivery, Direction, Message, Role
from inbox.privacy_models import ConsentRecord
from inbox.workflow_models import CannedReply
from tests.conftest import login, make_account, make_item, make_member, make_user

TABLE = Path(__file__).parent.parent / "docs" / "permissions.md"
ROLES = ("anonymous", "agent", "stranger", "marketing", "admin", "dpo")

# What must never reach marketing or a logged-out visitor: the customer's name, handle, words,
# e-mail and phone, and the platform's id of them.
CANARIES = {
    "name": "Zyprian Quellmalz",
    "handle": "zyq_canary",
    "text": "Kanarienvogel-Nachricht 4711",
    "email": "zyprian@canary.example",
    "phone": "+49 171 5550199",
    "platform_user_id": "880055",
}

# Actions that end the session or destroy what later requests need come last, in this order.
LAST = ("admin.canned_delete", "privacy.erase", "auth.logout_everywhere", "auth.logout")


def permission_table() -> dict[tuple[str, str], dict[str, str]]:
    """The table of docs/permissions.md: (endpoint, method) → role → expected outcome."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 2 + len(ROLES) or cells[0] in ("endpoint", "") or cells[0].startswith("-"):
            continue
        endpoint, method, *outcomes = cells
        assert (endpoint, method) not in rows, f"{endpoint} {method} twice in the table"
        rows[(endpoint, method)] = dict(zip(ROLES, outcomes, strict=True))
    return rows


def routes(app: Flask) -> list[tuple[Rule, str]]:
    """Every route and method of the app but static files: GETs first, then the rest, with
    the destructive ones last."""
    found = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    ]

    def order(entry: tuple[Rule, str]) -> tuple[int, int, str]:
        rule, method = entry
        last = LAST.index(rule.endpoint) if rule.endpoint in LAST else -1
        return (last, 0 if method == "GET" else 1, rule.rule)

    return sorted(found, key=order)


def test_the_table_names_every_route_of_the_app_and_no_other(app: Flask) -> None:
    table = permission_table()
    present = {(rule.endpoint, method) for rule, method in routes(app)}
    assert sorted(present - table.keys()) == [], "routes missing from docs/permissions.md"
    assert sorted(table.keys() - present) == [], "docs/permissions.md names routes that are gone"
    for outcomes in table.values():
        assert set(outcomes.values()) <= {"ok", "403", "404", "login", "signed", "probe", "token"}


@dataclass
class World:
    """What the routes' ids point at: one customer's conversation and everything around it."""

    args: dict[str, int]


@pytest.fixture
def world(session: Session, fernet: MultiFernet) -> World:
    account = make_account(session, fernet)
    assert account.id is not None
    item = make_item(
        author=Author(
            platform_user_id=CANARIES["platform_user_id"],
            handle=CANARIES["handle"],
            display_name=CANARIES["name"],
        ),
        text=f"{CANARIES['text']}, ruft mich an: {CANARIES['phone']}, {CANARIES['email']}",
        thread_key=f"dm-{CANARIES['platform_user_id']}",
        created_at=datetime.now(UTC) - timedelta(minutes=5),
    )
    inbound = ingest(session=session, account=account, item=item).message
    contact = session.get(Contact, inbound.author_contact_id)
    assert contact is not None and contact.id is not None
    contact.email, contact.phone = CANARIES["email"], CANARIES["phone"]
    failed = Message(
        conversation_id=inbound.conversation_id,
        account_id=account.id,
        direction=Direction.outbound,
        text=f"Hallo {CANARIES['name']}",
        created_at=datetime.now(UTC),
        delivery=Delivery.failed,
        delivery_error="simulated",
    )
    canned = CannedReply(account_id=account.id, title="Hallo", text="Hallo {first_name}")
    letter = DeadLetter(
        account_id=account.id,
        platform="demo",
        source="poll",
        error="bad payload",
        raw=f'{{"from": "{CANARIES["handle"]}"}}',
    )
    consent = ConsentRecord(
        contact_id=contact.id,
        channel="dm",
        purpose="service",
        given_at=datetime.now(UTC),
        source="web form",
    )
    session.add_all([contact, failed, canned, letter, consent])
    session.commit()
    assert failed.id and canned.id and letter.id and consent.id
    # The user the admin pages for users act on: not the one logged in, since the walk
    # deactivates them.
    colleague = make_user(session, role=Role.agent, name="Kolja Kollege")
    assert colleague.id is not None
    return World(
        args={
            "conversation_id": inbound.conversation_id,
            "message_id": failed.id,
            "contact_id": contact.id,
            "record_id": consent.id,
            "canned_id": canned.id,
            "letter_id": letter.id,
            "account_id": account.id,
            "user_id": colleague.id,
        }
    )


def browser_for(role: str, client: FlaskClient, session: Session, world: World) -> FlaskClient:
    """A client logged in as a fresh user of the role (`stranger`: an agent of no account)."""
    if role == "anonymous":
        return client
    user = make_user(session, role=Role.agent if role == "stranger" else Role(role))
    if role == "agent":
        account = session.get(Account, world.args["account_id"])
        assert account is not None
        make_member(session, user, account)
    response = login(client, user.email)
    assert response.status_code == 302, f"{role} could not log in"
    return client


_TOKEN = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def csrf_of(client: FlaskClient) -> str:
    """A CSRF token of this browser's session, from a page every user can open."""
    for path in ("/login", "/reports", "/conversations", "/privacy/"):
        found = _TOKEN.search(client.get(path, follow_redirects=True).get_data(as_text=True))
        if found:
            return found.group(1)
    raise AssertionError("no page with a CSRF token")


def outcome_of(response: Any) -> str:
    """How a response reads in the table's words."""
    status = response.status_code
    if status == 503 and response.headers.get("Content-Type", "").startswith("application/json"):
        return "probe"  # a readiness probe saying what is not ready (here: no worker runs)
    assert status < 500, f"server error {status}"
    if status in (301, 302, 303) and urlsplit(response.headers["Location"]).path == "/login":
        return "login"
    if status in (403, 404):
        return str(status)
    return "ok"


def walk(client: FlaskClient, app: Flask, world: World) -> Iterator[tuple[str, str, Any]]:
    """Request every route once: (endpoint, method, response)."""
    token = csrf_of(client)
    for rule, method in routes(app):
        path = rule.build({name: world.args[name] for name in rule.arguments})[1]
        if rule.endpoint in ("agent.canned_json", "agent.canned_fill"):
            path += f"?canned={world.args['canned_id']}"
        if method == "GET":
            response = client.get(path)
        else:
            response = client.open(path, method=method, data={"csrf_token": token})
        yield rule.endpoint, method, response


@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_each_role_as_the_table_says(
    role: str, app: Flask, client: FlaskClient, session: Session, world: World
) -> None:
    table = permission_table()
    browser = browser_for(role, client, session, world)
    wrong = []
    for endpoint, method, response in walk(browser, app, world):
        expected = table[(endpoint, method)][role]
        got = outcome_of(response)
        if expected in ("signed", "token"):
            # Webhooks answer 404 while the platform's secret is not configured, as here, and
            # the metrics while no metrics token is.
            expected = "404"
        if expected == "probe" and got in ("ok", "probe"):
            got = "probe"  # 200 or 503 to anyone, whoever asks
        if got != expected:
            wrong.append(f"{endpoint} {method}: {got} ({response.status_code}), table: {expected}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", ["marketing", "anonymous"])
def test_no_route_or_error_page_shows_personal_data_to_marketing_or_visitors(
    role: str, app: Flask, client: FlaskClient, session: Session, world: World
) -> None:
    browser = browser_for(role, client, session, world)
    leaks = []
    for endpoint, method, response in walk(browser, app, world):
        body = response.get_data(as_text=True) + str(response.headers)
        leaks += [f"{endpoint} {method}: {what}" for what, v in CANARIES.items() if v in body]
    assert leaks == []


@pytest.mark.parametrize("role", ["agent", "marketing", "admin", "dpo"])
def test_the_navigation_offers_each_role_exactly_the_pages_it_may_open(
    role: str, app: Flask, client: FlaskClient, session: Session, world: World
) -> None:
    table = permission_table()
    browser = browser_for(role, client, session, world)
    start = browser.get("/", follow_redirects=True).get_data(as_text=True)
    nav = re.search(r"<nav>(.*?)</nav>", start, re.S)
    assert nav is not None
    offered = set(re.findall(r'<a href="([^"?#]+)"', nav.group(1)))
    adapter = app.url_map.bind("localhost")
    pages = {
        rule.build({})[1]
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or set())
        and not rule.arguments
        and rule.endpoint.split(".")[0] in ("agent", "reports", "admin", "privacy", "audit")
        and not rule.rule.endswith((".csv", ".json", "/rows", "/search"))
        and table[(rule.endpoint, "GET")][role] == "ok"
    }
    for path in offered:
        assert browser.get(path).status_code == 200, path
        endpoint = adapter.match(path)[0]
        assert table[(endpoint, "GET")][role] == "ok", path
    # Every page of the role's own areas is reachable from the navigation, or from a page
    # that is (the members page from the accounts page, the new canned reply from its list).
    reachable = set(offered)
    for path in offered:
        body = browser.get(path).get_data(as_text=True)
        reachable |= set(re.findall(r'href="([^"?#]+)"', body))
    assert pages <= reachable, sorted(pages - reachable)
