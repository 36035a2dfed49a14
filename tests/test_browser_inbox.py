"""The agent inbox in a real browser: keyboard shortcuts, hostile text, two agents at once.

Runs the real `socialcare demo` and Debian's chromium through the fixtures of test_browser;
nothing is skipped: without /usr/bin/chromium these tests fail and say how to get it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, Request, expect
from sqlmodel import Session, select

from connectors import Author, InboundItem
from inbox.db import make_engine
from inbox.ingest import ingest
from inbox.models import Account, Role
from inbox.types import utcnow
from inbox.users import create_user
from inbox.workflow_models import AccountMember
from tests.test_browser import AGENT_EMAIL, Demo, browser, demo, log_in

pytestmark = pytest.mark.browser
__all__ = ["browser", "demo"]  # fixtures shared with test_browser, found by pytest here

SECOND_EMAIL = "ben@example.com"
SECOND_NAME = "Ben Becker"
SECOND_PASSWORD = "ben-" + uuid.uuid4().hex
ROWS = "tbody#conversation-rows tr.conversation-row"
PRESENCE_WAIT = 10_000  # ms: the promise for seeing a colleague

PWNED = "window.__pwned=1"
SCRIPT = f"<script>{PWNED}</script>"
IMG = f'<img src=x onerror="{PWNED}">'
JS_LINK = f"javascript:{PWNED}"
RLO = "\u202e"
LONG_WORD = "W" * 5_000
HANDLE = "hostile_handle"
# Where each "@handle" starts, against where the name before it ends on the same line: an
# override character in the name must not pull the handle in front of the name's last letters.
HANDLE_ORDER = """handle => Array.from(document.querySelectorAll("body *"))
    .filter(e => e.children.length === 0 && e.textContent.trim() === "@" + handle)
    .map(e => {
        const mine = e.getBoundingClientRect();
        const before = document.createRange();
        before.setStart(e.parentNode, 0);
        before.setEndBefore(e);
        const sameLine = Array.from(before.getClientRects()).filter(
            r => r.width > 0 && r.bottom > mine.top + 1 && r.top < mine.bottom - 1);
        return {handle: mine.left, name: Math.max(0, ...sameLine.map(r => r.right))};
    })"""


@dataclass
class Watch:
    """What a browser context did that no page should: dialogs and foreign requests."""

    origin: str
    dialogs: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_request(self, request: Request) -> None:
        if not request.url.startswith(self.origin + "/"):
            self.foreign.append(request.url)


@contextmanager
def watched_page(browser: Browser, demo: Demo, **options: Any) -> Iterator[Page]:
    """A page in its own browser context; afterwards, no dialogs and no foreign requests may
    have happened. `options` go to the context (e.g. accept_downloads)."""
    watch = Watch(origin=demo.origin)
    context: BrowserContext = browser.new_context(
        locale="en-US", base_url=demo.origin, viewport={"width": 1280, "height": 900}, **options
    )
    try:
        context.set_default_timeout(10_000)
        context.on("request", watch.on_request)
        page = context.new_page()
        page.on("dialog", watch.on_dialog)
        yield page
    finally:
        context.close()
    assert not watch.dialogs, f"JavaScript dialogs opened: {watch.dialogs}" + demo.output()
    assert not watch.foreign, f"requests left {demo.origin}: {watch.foreign}" + demo.output()


@contextmanager
def agent_page(browser: Browser, demo: Demo, email: str, password: str) -> Iterator[Page]:
    """A logged-in agent's page in its own, watched browser context."""
    with watched_page(browser, demo) as page:
        log_in(page, email, password)
        page.wait_for_url(re.compile(r"/conversations"))
        yield page


@contextmanager
def inbox_session(tmp_path: Path) -> Iterator[Session]:
    """A session on the demo's own database (the demo fixture keeps it under tmp_path)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'instance' / 'inbox.db'}")
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        engine.dispose()


def seed_message(
    tmp_path: Path,
    *,
    thread_key: str,
    name: str,
    text: str,
    age: timedelta,
    post: str = "",
    handle: str | None = None,
) -> int:
    """Store one customer message in the running demo, as a platform would; its conversation id."""
    with inbox_session(tmp_path) as session:
        account = session.exec(select(Account).where(Account.platform == "demo")).one()
        item = InboundItem(
            platform="demo",
            account_ref=account.platform_account_id,
            external_id=uuid.uuid4().hex,
            kind="dm",
            author=Author(platform_user_id=f"user-{thread_key}", handle=handle, display_name=name),
            text=text,
            created_at=utcnow() - age,
            thread_key=thread_key,
            context={"post_text": post} if post else {},
        )
        stored = ingest(session=session, account=account, item=item).message
    assert stored.conversation_id is not None
    return stored.conversation_id


def add_second_agent(tmp_path: Path) -> None:
    """A colleague for Jana on the demo account: the demo seeds only one agent."""
    with inbox_session(tmp_path) as session:
        colleague = create_user(
            session=session,
            email=SECOND_EMAIL,
            name=SECOND_NAME,
            role=Role.agent,
            password=SECOND_PASSWORD,
        )
        account = session.exec(select(Account).where(Account.platform == "demo")).one()
        assert account.id is not None and colleague.id is not None
        session.add(AccountMember(account_id=account.id, user_id=colleague.id))
        session.commit()


def active_id(page: Page) -> str:
    """The id of the focused element, '' for none."""
    return str(page.evaluate("document.activeElement ? document.activeElement.id : ''"))


def test_keyboard_moves_through_the_list_opens_and_answers(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    for number in range(3):
        seed_message(
            tmp_path,
            thread_key=f"keys-{number}",
            name=f"Keyboard Customer {number}",
            text=f"Question number {number}",
            age=timedelta(hours=2, minutes=number),
        )
    with agent_page(browser, demo, AGENT_EMAIL, demo.password) as page:
        page.wait_for_function(f"document.querySelectorAll({ROWS!r}).length >= 2")
        selected = page.locator(f"{ROWS}.selected")

        page.keyboard.press("j")
        first = selected.get_attribute("data-conversation-id")
        page.keyboard.press("j")
        second = selected.get_attribute("data-conversation-id")
        assert second != first, "j did not move the selection down"
        page.keyboard.press("k")
        assert selected.count() == 1, "more than one row is selected"
        assert selected.get_attribute("data-conversation-id") == first, "k did not move back up"
        assert selected.get_attribute("aria-selected") == "true"

        href = selected.get_attribute("data-href")
        assert href, "the selected row has no data-href"
        page.keyboard.press("Enter")
        page.wait_for_url(demo.origin + href)
        reply = page.locator("#reply-text")
        reply.wait_for()

        page.keyboard.press("r")
        assert active_id(page) == "reply-text", "r did not put the cursor into the reply box"
        assert reply.input_value() == "", "the r of the shortcut was typed into the reply"
        # While typing, letters are letters and '?' and '/' open nothing.
        page.keyboard.type("jk? /e")
        assert reply.input_value() == "jk? /e"
        assert active_id(page) == "reply-text"
        page.keyboard.press("Escape")
        assert active_id(page) != "reply-text", "Esc did not leave the reply box"

        help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
        assert not help_dialog.is_visible()
        page.keyboard.press("?")
        help_dialog.wait_for(state="visible")
        assert help_dialog.get_attribute("aria-modal") == "true"
        assert "Write a reply" in help_dialog.inner_text()
        page.keyboard.press("Escape")
        help_dialog.wait_for(state="hidden")

        page.keyboard.press("/")
        assert active_id(page) == "search-q", "/ did not put the cursor into the search field"
        page.keyboard.press("Escape")

        # Ctrl+R and friends stay the browser's.
        page.keyboard.press("Control+e")
        assert page.url == demo.origin + href

        with page.expect_navigation():
            page.keyboard.press("a")
        assert page.locator(".assignee").inner_text().strip() == "Assigned to you"
        assert page.locator('[data-shortcut="assign-me"]').count() == 0

        with page.expect_navigation():
            page.keyboard.press("e")
        assert page.locator('[data-shortcut="close"]').count() == 0, "e did not close it"
        assert page.get_by_role("button", name="Reopen").is_visible()


def test_hostile_text_renders_inert(browser: Browser, demo: Demo, tmp_path: Path) -> None:
    name = f"{SCRIPT} {IMG} {RLO}evil"
    text = f"{IMG} {SCRIPT} [click me]({JS_LINK}) {JS_LINK} {RLO}gnp.exe {LONG_WORD} end"
    post = f'<a href="{JS_LINK}">our post</a>'
    conversation_id = seed_message(
        tmp_path,
        thread_key="hostile",
        name=name,
        text=text,
        age=timedelta(hours=3),
        post=post,
        handle=HANDLE,
    )
    inert = f"""() => ({{
        pwned: typeof window.__pwned,
        images: document.querySelectorAll('img[src="x"], [onerror]').length,
        jsLinks: document.querySelectorAll('a[href^="javascript:" i]').length,
        dataScripts: Array.from(document.scripts).filter(s =>
            (!s.type || /javascript|module/i.test(s.type))
            && !s.src.startsWith({demo.origin!r} + "/static/")).length,
        overflow: document.documentElement.scrollWidth - window.innerWidth,
    }})"""
    with agent_page(browser, demo, AGENT_EMAIL, demo.password) as page:
        row = page.locator(f'{ROWS}[data-conversation-id="{conversation_id}"]')
        row.wait_for()
        # One more refresh of the rows (by polling) must not change anything either.
        page.wait_for_timeout(4_500)
        row.wait_for()
        assert name.replace(RLO, "") in row.inner_text().replace(RLO, "")
        assert IMG in row.inner_text(), "the preview does not show the message as text"
        found = page.evaluate(inert)
        assert found["pwned"] == "undefined", "hostile text ran as script in the list"
        assert found["images"] == 0 and found["jsLinks"] == 0 and found["dataScripts"] == 0, found
        assert found["overflow"] <= 2, f"the list is wider than the window: {found}"
        assert_handles_follow_names(page)

        page.goto(f"/conversations/{conversation_id}")
        shown = page.locator("li.message.inbound .text").last
        assert shown.inner_text().strip() == text, "the message is not shown as the text it is"
        assert shown.is_visible()
        assert SCRIPT in page.locator("h1").inner_text()
        assert "our post" in page.locator(".context").first.inner_text()
        found = page.evaluate(inert)
        assert found["pwned"] == "undefined", "hostile text ran as script in the thread"
        assert found["images"] == 0 and found["jsLinks"] == 0 and found["dataScripts"] == 0, found
        assert found["overflow"] <= 2, (
            f"a 5,000-character word makes the thread {found['overflow']}px wider than the window"
        )
        assert_handles_follow_names(page)


def assert_handles_follow_names(page: Page) -> None:
    """The customer's @handle shows after the name, whatever direction marks the name holds."""
    places = page.evaluate(HANDLE_ORDER, HANDLE)
    assert places, f"@{HANDLE} is not shown on {page.url}"
    flipped = [place for place in places if place["handle"] < place["name"] - 1]
    assert not flipped, (
        f"the right-to-left override in the name moves @{HANDLE} in front of it on {page.url}: "
        f"{flipped} (isolate the name, e.g. <bdi>)"
    )


def test_two_agents_see_each_other_and_get_the_collision_warning(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    add_second_agent(tmp_path)
    conversation_id = seed_message(
        tmp_path,
        thread_key="shared",
        name="Shared Customer",
        text="Where is my parcel?",
        age=timedelta(minutes=5),
    )
    url = f"/conversations/{conversation_id}"
    with (
        agent_page(browser, demo, AGENT_EMAIL, demo.password) as jana,
        agent_page(browser, demo, SECOND_EMAIL, SECOND_PASSWORD) as ben,
    ):
        jana.goto(url)
        ben.goto(url)
        presence = jana.locator("#presence")
        viewing = re.compile(re.escape(SECOND_NAME) + r".*viewing", re.I | re.S)
        expect(presence).to_contain_text(viewing, timeout=PRESENCE_WAIT)

        # Ben keeps typing, as people do, until Jana sees it (or the promise is broken).
        reply = ben.locator("#reply-text")
        reply.click()
        ben.keyboard.type("Your parcel left our warehouse today.")
        typing = re.compile(re.escape(SECOND_NAME) + r".*typing", re.I | re.S)
        deadline = time.monotonic() + PRESENCE_WAIT / 1000
        while not typing.search(presence.inner_text()):
            assert time.monotonic() < deadline, (
                f"Jana never saw Ben typing; the presence box says {presence.inner_text()!r}"
            )
            ben.keyboard.type(" Thanks.")
            jana.wait_for_timeout(500)
        draft = reply.input_value()

        # The customer writes again after Ben opened the composer.
        seed_message(
            tmp_path,
            thread_key="shared",
            name="Shared Customer",
            text="Hello? Anyone there?",
            age=timedelta(0),
        )
        ben.locator("form.composer").get_by_role("button", name="Send reply").click()
        warning = ben.locator("[data-collision]")
        warning.wait_for(state="visible")
        assert warning.get_attribute("role") == "alert"
        assert ben.locator("#reply-text").input_value().startswith(draft), "the draft was lost"
        assert ben.locator("li.message.outbound", has_text=draft).count() == 0, (
            "the reply was sent despite the collision"
        )
        assert ben.locator("li.message.inbound", has_text="Hello? Anyone there?").is_visible(), (
            "the message that caused the warning is not shown"
        )

        # Having read it, Ben sends his reply after all.
        ben.locator("form.composer").get_by_role("button", name="Send reply").click()
        sent = ben.locator("li.message.outbound", has_text=draft.strip())
        sent.wait_for()
        assert ben.locator("[data-collision]").count() == 0
        assert sent.locator(".author").inner_text().strip() == SECOND_NAME
        assert sent.locator(".delivery").inner_text().strip() == "sent"
