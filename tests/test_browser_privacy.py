"""A data-protection officer answers an access request and an erasure request in a real browser.

Runs the real `socialcare demo` and Debian's chromium through the fixtures of test_browser;
the dpo enrols a second factor on first login, as the product requires.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import col, func, select

from connectors import Author, InboundItem
from inbox.ingest import ingest
from inbox.models import Account, Contact, Conversation, Message, Role
from inbox.types import utcnow
from inbox.users import create_user
from tests.test_browser import Demo, browser, demo, log_in
from tests.test_browser_inbox import inbox_session, watched_page

pytestmark = pytest.mark.browser
__all__ = ["browser", "demo"]  # fixtures shared with test_browser, found by pytest here

DPO_EMAIL = "dora@example.com"
DPO_PASSWORD = "dora-" + uuid.uuid4().hex
HANDLE = "erase_me_" + uuid.uuid4().hex[:6]
HOSTILE_NAME = "<script>window.__pwned=1</script>"
SECRET_TEXT = "Meine Kundennummer ist K-4711, bitte löschen Sie alles."
_T = TypeVar("_T")


def seed_person(tmp_path: Path) -> int:
    """A person with two conversations in the running demo; their contact id."""
    with inbox_session(tmp_path) as session:
        account = session.exec(select(Account).where(Account.platform == "demo")).one()
        author = Author(platform_user_id=f"u-{HANDLE}", handle=HANDLE, display_name=HOSTILE_NAME)
        for thread, text in (("a", SECRET_TEXT), ("b", "Und noch eine Frage")):
            item = InboundItem(
                platform="demo",
                account_ref=account.platform_account_id,
                external_id=f"{HANDLE}-{thread}",
                kind="dm",
                author=author,
                text=text,
                created_at=utcnow() - timedelta(minutes=5),
                thread_key=f"{HANDLE}-{thread}",
            )
            message = ingest(session=session, account=account, item=item).message
        create_user(
            session=session,
            email=DPO_EMAIL,
            name="Dora Datenschutz",
            role=Role.dpo,
            password=DPO_PASSWORD,
        )
    assert message.author_contact_id is not None
    return message.author_contact_id


def stored_about(tmp_path: Path, contact_id: int) -> tuple[int, int, int]:
    """Contacts, conversations and messages left of the person in the demo's database."""
    with inbox_session(tmp_path) as session:
        return (
            session.exec(select(func.count()).where(col(Contact.id) == contact_id)).one(),
            session.exec(
                select(func.count()).where(col(Conversation.contact_id) == contact_id)
            ).one(),
            session.exec(select(func.count()).where(col(Message.text) == SECRET_TEXT)).one(),
        )


@contextmanager
def dpo_page(browser: Browser, demo: Demo) -> Iterator[Page]:
    """The dpo logged in, with a second factor enrolled on the way if the product asks for one."""
    with watched_page(browser, demo, accept_downloads=True) as page:
        log_in(page, DPO_EMAIL, DPO_PASSWORD)
        page.wait_for_load_state()
        if page.locator("code.totp-secret").count():
            secret = "".join(page.locator("code.totp-secret").inner_text().split())
            page.fill("#code", pyotp.TOTP(secret).now())
            page.click("form button[type=submit]")
            expect(page.locator("ul.recovery-codes li").first).to_be_visible()
        yield page


def test_a_dpo_exports_and_erases_a_person_in_under_a_minute(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    contact_id = seed_person(tmp_path)
    timings: list[tuple[str, float]] = []

    def timed(step: str, action: Callable[[], _T]) -> _T:
        started = time.perf_counter()
        result = action()
        timings.append((step, time.perf_counter() - started))
        return result

    with dpo_page(browser, demo) as page:
        flow_started = time.perf_counter()
        timed("find page", lambda: page.goto("/privacy/"))
        page.fill("#dsr-q", "@" + HANDLE[:-2])
        timed("search", lambda: page.click("form.dsr-find button"))
        expect(page.locator("table.dsr-results")).to_contain_text(HOSTILE_NAME)
        timed("request page", lambda: page.click(f"a.dsr-contact:text-is('{contact_id}')"))
        expect(page.locator(".count-conversations")).to_have_text("2")
        expect(page.locator(".count-messages")).to_have_text("2")

        started = time.perf_counter()
        with page.expect_download() as download_info:
            page.click("#dsr-download")
        download = download_info.value
        saved = Path(download.path())
        timings.append(("download JSON", time.perf_counter() - started))
        assert re.fullmatch(
            rf"contact-{contact_id}-\d{{4}}-\d{{2}}-\d{{2}}\.json", download.suggested_filename
        )
        data = json.loads(saved.read_text(encoding="utf-8"))
        assert SECRET_TEXT in {m["text"] for m in data["messages"]}
        assert data["contact"]["display_name"] == HOSTILE_NAME

        timed("summary", lambda: page.click("#dsr-summary"))
        expect(page.locator("body.dsr-summary")).to_contain_text(SECRET_TEXT)
        expect(page.locator(".contact-name")).to_have_text(HOSTILE_NAME)
        page.go_back()

        timed("erase confirmation", lambda: page.click("#dsr-erase"))
        expect(page.locator("main")).to_contain_text("The research store is not touched")
        page.fill("#dsr-confirm", "@" + HANDLE)
        timed("erase", lambda: page.click("form.dsr-erase button"))
        expect(page.locator("h1")).to_contain_text(f"Contact {contact_id} erased")
        expect(page.locator(".erased-messages")).to_have_text("2")
        flow = time.perf_counter() - flow_started

        page.goto(f"/privacy/?q={HANDLE}")
        expect(page.locator("main")).to_contain_text("No contact matches")
        assert page.evaluate("window.__pwned === undefined")

    for step, seconds in timings:
        print(f"{step:<20} {seconds * 1000:7.0f} ms")
    print(f"{'whole flow':<20} {flow:7.1f} s")
    assert flow < 60, f"the dpo needed {flow:.1f} s"
    assert stored_about(tmp_path, contact_id) == (0, 0, 0)
