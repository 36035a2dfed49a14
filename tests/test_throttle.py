"""Login throttling: repeated failures lock an e-mail address or a client address for a while,
with the same answer whether or not the e-mail exists, and everything is audited."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from inbox import throttle
from inbox.models import AuditEvent, Role
from inbox.privacy_models import LoginThrottle
from tests.conftest import PASSWORD, TOTP_SECRETS, csrf_token, login, make_user, post_form

GENERIC = "E-mail or password is wrong, or too many attempts — try again in a few minutes."
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
POLICY = throttle.Policy(
    email_limit=5, ip_limit=8, window=timedelta(minutes=15), lockout=timedelta(minutes=15)
)


def flashes(body: str) -> list[str]:
    """The flash messages shown on a page."""
    return re.findall(r'<p class="flash (?:\w+)" role="status">(.*?)</p>', body, re.S)


def events(session: Session, action: str) -> list[AuditEvent]:
    """Audit events with an action."""
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def fail(session: Session, email: str, *, at: datetime, ip: str = "192.0.2.1") -> None:
    """One failed login at a moment."""
    throttle.record_failure(session=session, email=email, ip=ip, policy=POLICY, now=at)


def locked(session: Session, email: str, *, at: datetime, ip: str = "192.0.2.1") -> bool:
    """Whether a login would be refused at a moment."""
    return throttle.is_locked(session=session, email=email, ip=ip, now=at)


def attempt(client: FlaskClient, email: str, password: str) -> str:
    """Try to log in; returns the flash messages of the answer."""
    response = login(client, email, password=password)
    return "".join(flashes(response.get_data(as_text=True))) if response.status_code == 200 else ""


# The service, on a controllable clock -------------------------------------------------------


def test_five_failures_lock_an_address_for_fifteen_minutes(session: Session) -> None:
    for minute in range(4):
        fail(session, "jana@example.com", at=T0 + timedelta(minutes=minute))
    assert not locked(session, "jana@example.com", at=T0 + timedelta(minutes=4))

    fail(session, "Jana@Example.com ", at=T0 + timedelta(minutes=4))

    assert locked(session, "jana@example.com", at=T0 + timedelta(minutes=5))
    assert locked(session, "jana@example.com", at=T0 + timedelta(minutes=18))
    assert not locked(session, "jana@example.com", at=T0 + timedelta(minutes=19, seconds=1))
    assert not locked(session, "someone.else@example.com", at=T0 + timedelta(minutes=5), ip="x")


def test_failures_spread_beyond_the_window_never_lock(session: Session) -> None:
    for minute in range(0, 80, 16):
        fail(session, "jana@example.com", at=T0 + timedelta(minutes=minute))

    assert not locked(session, "jana@example.com", at=T0 + timedelta(minutes=80))


def test_attempts_while_locked_neither_extend_nor_shorten_the_lock(session: Session) -> None:
    # From ever new addresses, as a botnet would: only the e-mail's count matters here.
    for second in range(5):
        fail(session, "jana@example.com", at=T0 + timedelta(seconds=second), ip=f"a{second}")
    for minute in range(1, 14):
        fail(session, "jana@example.com", at=T0 + timedelta(minutes=minute), ip=f"b{minute}")

    assert locked(session, "jana@example.com", at=T0 + timedelta(minutes=14), ip="c")
    assert not locked(session, "jana@example.com", at=T0 + timedelta(minutes=15, seconds=5), ip="c")
    # After the lock the count starts afresh: one more failure does not lock again.
    fail(session, "jana@example.com", at=T0 + timedelta(minutes=16), ip="d")
    assert not locked(session, "jana@example.com", at=T0 + timedelta(minutes=16), ip="d")


def test_one_address_trying_many_e_mails_is_locked(session: Session) -> None:
    for n in range(8):
        fail(session, f"guess{n}@example.com", at=T0 + timedelta(seconds=n), ip="198.51.100.7")

    assert locked(session, "anyone@example.com", at=T0 + timedelta(minutes=1), ip="198.51.100.7")
    assert not locked(session, "anyone@example.com", at=T0 + timedelta(minutes=1), ip="192.0.2.9")


def test_the_table_holds_hashes_not_e_mails_or_addresses(session: Session) -> None:
    fail(session, "jana@example.com", at=T0, ip="192.0.2.55")

    keys = [row.key for row in session.exec(select(LoginThrottle)).all()]
    assert sorted(keys) == sorted(
        [throttle.email_key("jana@example.com"), throttle.ip_key("192.0.2.55")]
    )
    assert all(re.fullmatch(r"[0-9a-f]{64}", key) for key in keys)


def test_old_rows_are_pruned(session: Session) -> None:
    fail(session, "old@example.com", at=T0)

    fail(session, "new@example.com", at=T0 + timedelta(hours=2), ip="192.0.2.2")

    keys = {row.key for row in session.exec(select(LoginThrottle)).all()}
    assert throttle.email_key("old@example.com") not in keys
    assert throttle.email_key("new@example.com") in keys


# Through the login page ---------------------------------------------------------------------


def test_after_five_wrong_passwords_even_the_right_one_fails_alike(
    client: FlaskClient, session: Session
) -> None:
    agent = make_user(session, role=Role.agent)
    for _ in range(5):
        assert attempt(client, agent.email, "wrong password!") == GENERIC

    assert attempt(client, agent.email, PASSWORD) == GENERIC

    assert client.get("/conversations").status_code == 302
    [locked_event] = events(session, "login_locked")
    assert locked_event.user_id is None and locked_event.detail == {"scopes": ["email"]}
    failed = events(session, "login_failed")
    assert len(failed) == 6
    assert all(agent.email not in str(event.detail) for event in failed + [locked_event])
    assert events(session, "login") == []


def test_unknown_e_mails_are_locked_just_the_same(client: FlaskClient, session: Session) -> None:
    for _ in range(5):
        assert attempt(client, "nobody@example.com", "wrong password!") == GENERIC

    assert len(events(session, "login_locked")) == 1
    assert attempt(client, "nobody@example.com", PASSWORD) == GENERIC


def test_the_lock_ends_and_a_login_clears_the_count(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    for _ in range(5):
        attempt(client, agent.email, "wrong password!")
    row = session.get(LoginThrottle, throttle.email_key(agent.email))
    assert row is not None
    row.locked_until = datetime.now(UTC) - timedelta(seconds=1)
    session.add(row)
    session.commit()

    assert login(client, agent.email).status_code == 302

    session.expire_all()
    assert session.get(LoginThrottle, throttle.email_key(agent.email)) is None


def test_a_lock_on_one_address_leaves_other_people_alone(
    client: FlaskClient, session: Session
) -> None:
    victim = make_user(session, role=Role.agent)
    colleague = make_user(session, role=Role.agent)
    for _ in range(5):
        attempt(client, victim.email, "wrong password!")

    assert login(client, colleague.email).status_code == 302


def test_wrong_codes_count_toward_the_lock(client: FlaskClient, session: Session) -> None:
    admin = make_user(session, role=Role.admin)
    login(client, admin.email)
    post_form(client, "/conversations", "/logout", {})
    token = csrf_token(client, "/login")
    client.post("/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": token})

    for _ in range(5):
        page = post_form(client, "/login/code", "/login/code", {"code": "000000"})
    assert page.status_code == 302  # locked: back to the start

    assert "".join(flashes(client.get("/login").get_data(as_text=True))) == GENERIC
    failed = events(session, "login_failed")
    assert [e.detail for e in failed] == [{"step": "code"}] * 5
    assert all(e.target_id == admin.id and e.user_id is None for e in failed)
    assert len(events(session, "login_locked")) == 1
    # The right password does not even reach the code step while the lock lasts.
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": token}
    )
    assert "".join(flashes(response.get_data(as_text=True))) == GENERIC
    assert TOTP_SECRETS[admin.email]  # the admin has a second factor, but no step asks for it


@pytest.mark.parametrize("limit", [3])
def test_limits_come_from_the_configuration(
    client: FlaskClient, session: Session, limit: int
) -> None:
    client.application.config["LOGIN_EMAIL_MAX_FAILURES"] = limit
    for _ in range(limit):
        attempt(client, "jana@example.com", "wrong password!")

    assert len(events(session, "login_locked")) == 1
