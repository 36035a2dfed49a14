"""Dead letters: admins see them escaped, retry them after a fix, or discard them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlmodel import Session, col, select

from connectors import FailedPayload
from connectors.demo import DemoConnector
from inbox.dead_letters import discard_dead_letter, list_dead_letters, retry_dead_letter
from inbox.ingest import keep_failed
from inbox.models import Account, AuditEvent, DeadLetter, Message, Role
from inbox.types import utcnow
from inbox.worker import context_from_app, poll_account
from tests.conftest import login, login_admin, make_account, make_user, post_form

PAGE = "/admin/dead-letters"


def _polled(app: Flask, session: Session, fernet: MultiFernet) -> tuple[Account, list[DeadLetter]]:
    """A demo account polled once: every fifth payload is broken and kept as a dead letter."""
    start = (utcnow() - timedelta(hours=1)).isoformat()
    account = make_account(session, fernet, start=start, rate=1, backlog=0, malformed_every=5)
    assert account.id is not None
    poll_account(context_from_app(app), account.id)
    letters = list(session.exec(select(DeadLetter).order_by(col(DeadLetter.id))).all())
    assert len(letters) == 10
    return account, letters


def _fix(account: Account, letter: DeadLetter) -> None:
    """What a corrected parser would accept: the stored payload with its broken field restored."""
    kept = json.loads(letter.raw)
    entry = kept["entry"]
    found = entry.get("data") or (entry["message"] if "sender" in entry else entry)
    index = int(found["id"].rsplit("-", 1)[1])
    settings = {k: v for k, v in account.settings.items() if k != "malformed_every"}
    kept["entry"] = DemoConnector(settings=settings).payload(index)
    letter.raw = json.dumps(kept, ensure_ascii=False)


def _messages(session: Session) -> int:
    return len(session.exec(select(Message.id)).all())


def test_a_broken_payload_stays_open_with_its_error_until_fixed_then_is_stored_once(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account, letters = _polled(app, session, fernet)
    before = _messages(session)
    letter = letters[0]
    outcome = retry_dead_letter(session=session, letter=letter)
    assert outcome.outcome == "failed" and "payload" in outcome.message
    session.expire_all()
    letter = session.get(DeadLetter, letter.id)
    assert letter.resolved_at is None and letter.retries == 1 and letter.error == outcome.message

    _fix(account, letter)
    session.add(letter)
    session.commit()
    outcome = retry_dead_letter(session=session, letter=letter)
    assert outcome.outcome == "ingested" and outcome.message_id is not None
    assert letter.resolved_at is not None and _messages(session) == before + 1
    # Retrying a resolved letter, or one reopened after it was stored, stores nothing twice.
    assert retry_dead_letter(session=session, letter=letter).outcome == "refused"
    letter.resolved_at = None
    assert retry_dead_letter(session=session, letter=letter).outcome == "duplicate"
    assert _messages(session) == before + 1
    assert letter not in list_dead_letters(session=session)
    assert letter in list_dead_letters(session=session, include_resolved=True)


def test_discard_resolves_without_a_message(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    _, letters = _polled(app, session, fernet)
    before = _messages(session)
    discard_dead_letter(session=session, letter=letters[0])
    assert letters[0].resolved_at is not None and _messages(session) == before
    assert len(list_dead_letters(session=session)) == 9


def test_letters_without_a_retry_parser_or_an_account_are_refused_clearly(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    letter = keep_failed(
        session=session, account=account, failure=FailedPayload("{}", "boom"), source="poll"
    )
    letter.platform = "mastodon"
    assert retry_dead_letter(session=session, letter=letter).message == (
        "Platform 'mastodon' has no retry parser; discard the letter"
    )
    letter.platform, letter.account_id = "demo", None
    outcome = retry_dead_letter(session=session, letter=letter)
    assert outcome.outcome == "refused" and "belongs to no account" in outcome.message
    assert letter.resolved_at is None and letter.retries == 0


def test_a_payload_for_another_account_is_not_ingested_into_this_one(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account, letters = _polled(app, session, fernet)
    _fix(account, letters[0])
    kept = json.loads(letters[0].raw)
    kept["entry"]["recipient"] = {"id": "someone-else"}
    kept["entry"].setdefault("post", {})["owner_id"] = "someone-else"
    kept["entry"]["for_user_id"] = "someone-else"
    letters[0].raw = json.dumps(kept)
    outcome = retry_dead_letter(session=session, letter=letters[0])
    assert outcome.outcome == "failed" and "'someone-else'" in outcome.message


def test_admins_see_dead_letters_escaped(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    hostile = FailedPayload('{"text": "<script>alert(1)</script>"}', "bad <b>field</b>")
    keep_failed(session=session, account=account, failure=hostile, source="webhook")
    login_admin(client, session)
    page = client.get(PAGE).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "bad &lt;b&gt;field&lt;/b&gt;" in page
    assert 'name="csrf_token"' in page
    assert PAGE in client.get("/admin/accounts").get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.agent, Role.marketing])
def test_only_admins_may_see_or_act_on_dead_letters(
    client: FlaskClient, session: Session, fernet: MultiFernet, role: Role
) -> None:
    account = make_account(session, fernet)
    letter = keep_failed(
        session=session, account=account, failure=FailedPayload("{}", "boom"), source="poll"
    )
    login(client, make_user(session, role=role).email)
    assert client.get(PAGE).status_code == 403
    for action in ("retry", "discard"):
        assert client.post(f"{PAGE}/{letter.id}/{action}").status_code in (400, 403)
    session.expire_all()
    assert session.get(DeadLetter, letter.id).resolved_at is None


def test_admin_retries_and_discards_with_flash_and_audit(
    app: Flask, client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    account, letters = _polled(app, session, fernet)
    broken, fixed, unwanted = letters[0], letters[1], letters[2]
    _fix(account, fixed)
    session.add(fixed)
    session.commit()
    before = _messages(session)
    login_admin(client, session)

    response = post_form(client, PAGE, f"{PAGE}/{broken.id}/retry", {})
    assert response.status_code == 302
    page = client.get(PAGE).get_data(as_text=True)
    assert f"Dead letter #{broken.id} still cannot be parsed" in page

    post_form(client, PAGE, f"{PAGE}/{fixed.id}/retry", {})
    assert f"Dead letter #{fixed.id} parsed and stored" in client.get(PAGE).get_data(as_text=True)
    post_form(client, PAGE, f"{PAGE}/{unwanted.id}/discard", {})
    assert f"Dead letter #{unwanted.id} discarded." in client.get(PAGE).get_data(as_text=True)

    session.expire_all()
    assert _messages(session) == before + 1
    assert session.get(DeadLetter, broken.id).resolved_at is None
    assert session.get(DeadLetter, fixed.id).resolved_at is not None
    assert session.get(DeadLetter, unwanted.id).resolved_at is not None
    events = session.exec(select(AuditEvent).where(AuditEvent.target_type == "dead_letter")).all()
    assert sorted((e.action, e.target_id) for e in events) == sorted(
        [
            ("dead_letter_retried", broken.id),
            ("dead_letter_retried", fixed.id),
            ("dead_letter_discarded", unwanted.id),
        ]
    )
    assert all(e.user_id is not None for e in events)


def test_admin_page_is_german_for_german_admins(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    keep_failed(session=session, account=account, failure=FailedPayload("{}", "x"), source="poll")
    login_admin(client, session)
    page = client.get(PAGE, headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "Nicht lesbare Eingänge" in page and "Verwerfen" in page


def _cli(runner: FlaskCliRunner, *args: str) -> Any:
    return runner.invoke(args=["dead-letters", *args])


def test_cli_lists_retries_and_discards_with_audit(
    app: Flask, runner: FlaskCliRunner, session: Session, fernet: MultiFernet
) -> None:
    account, letters = _polled(app, session, fernet)
    listed = _cli(runner, "list")
    assert listed.exit_code == 0, listed.output
    assert f"#{letters[0].id} demo poll" in listed.output
    assert letters[0].error in listed.output and repr(letters[0].raw[:120]) in listed.output

    failed = _cli(runner, "retry", str(letters[0].id))
    assert failed.exit_code == 1 and "failed" in failed.output
    _fix(account, letters[1])
    session.add(letters[1])
    session.commit()
    stored = _cli(runner, "retry", str(letters[1].id))
    assert stored.exit_code == 0 and "ingested" in stored.output
    discarded = _cli(runner, "discard", str(letters[2].id))
    assert discarded.exit_code == 0 and "discarded" in discarded.output
    everything = _cli(runner, "retry", "--all")
    assert everything.exit_code == 0 and everything.output.count(": failed: ") == 8
    assert _cli(runner, "retry").exit_code == 2
    assert "No dead letter #999" in _cli(runner, "discard", "999").output

    session.expire_all()
    assert len(list_dead_letters(session=session)) == 8
    assert session.get(DeadLetter, letters[0].id).retries == 2
    actions = session.exec(
        select(AuditEvent.action).where(AuditEvent.target_type == "dead_letter")
    ).all()
    assert actions.count("dead_letter_retried") == 2 + 8
    assert actions.count("dead_letter_discarded") == 1
