"""What the worker and the reply service do when X misbehaves, through the real tweepy client.

The HTTP transport is intercepted with `responses`; everything above it is the real code: the
X connector, the worker's poll job, ingestion and the reply service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from apscheduler.schedulers.background import BackgroundScheduler
from cryptography.fernet import MultiFernet
from flask import Flask
from sqlmodel import Session, func, select

from inbox.accounts import connect_account
from inbox.ingest import ingest
from inbox.models import Account, AccountStatus, Conversation, Delivery, Message, PollRun, Role
from inbox.replies import deliver, send_reply
from inbox.types import utcnow
from inbox.worker import configure, context_from_app, poll_account, sync_jobs
from tests.conftest import make_item, make_user

API = "https://api.twitter.com/2"
FIXTURES = Path(__file__).parent / "fixtures" / "x"
ME = json.loads((FIXTURES / "me.json").read_text())
ACCOUNT_ID = ME["data"]["id"]
MENTIONS = f"{API}/users/{ACCOUNT_ID}/mentions"
CREDENTIALS = {
    "consumer_key": "ck-1",
    "consumer_secret": "cs-1",
    "access_token": "at-1",
    "access_token_secret": "ats-1",
}


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def x_api() -> Iterator[responses.RequestsMock]:
    """X's API as seen by tweepy, answering what each test registers."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{API}/users/me", json=ME)
        mock.get(f"{API}/dm_events", json={"meta": {"result_count": 0}})
        yield mock


@pytest.fixture
def account(session: Session, fernet: MultiFernet, x_api: responses.RequestsMock) -> Account:
    """The official X account, connected through the real identity check."""
    connected = connect_account(
        session=session,
        fernet=fernet,
        platform="x",
        credentials=CREDENTIALS,
        settings={"username": ME["data"]["username"]},
    )
    connected.cursor = {
        "v": 1,
        "mentions": {"since_id": "1800000000000000001", "next_token": None, "pending_newest": None},
        "dms": {"last_id": None, "next_token": None, "pending_newest": None},
    }
    session.add(connected)
    session.commit()
    return connected


def _poll(app: Flask, session: Session, account: Account) -> Account:
    assert account.id is not None
    poll_account(context_from_app(app), account.id)
    session.expire_all()
    fresh = session.get(Account, account.id)
    assert fresh is not None
    return fresh


def test_a_rate_limit_pauses_that_account_until_the_reset_time(
    app: Flask, session: Session, account: Account, x_api: responses.RequestsMock
) -> None:
    reset = int((utcnow() + timedelta(minutes=7)).timestamp())
    x_api.get(
        MENTIONS,
        json=_fixture("error_429.json"),
        status=429,
        headers={"x-rate-limit-reset": str(reset)},
    )
    polled = _poll(app, session, account)
    assert polled.rate_limited_until == datetime.fromtimestamp(reset, UTC)
    assert polled.status == AccountStatus.active and polled.last_error
    calls = len(x_api.calls)
    # Until the reset time the account is not polled at all: no calls, no new poll run.
    assert not poll_account(context_from_app(app), account.id or 0).polled
    assert len(x_api.calls) == calls
    assert session.exec(select(func.count()).select_from(PollRun)).one() == 1


def test_revoked_credentials_stop_polling_until_an_admin_reconnects(
    app: Flask, session: Session, account: Account, x_api: responses.RequestsMock
) -> None:
    x_api.get(MENTIONS, json=_fixture("error_401.json"), status=401)
    polled = _poll(app, session, account)
    assert polled.status == AccountStatus.needs_reconnection
    assert "reconnect" in (polled.last_error or "")
    assert "at-1" not in (polled.last_error or "")  # no token in what admins read
    ctx = context_from_app(app)
    scheduler = configure(BackgroundScheduler(timezone="UTC"), ctx)
    sync_jobs(ctx, scheduler)
    assert f"poll:{account.id}" not in {job.id for job in scheduler.get_jobs()}
    calls = len(x_api.calls)
    assert not poll_account(ctx, account.id or 0).polled
    assert len(x_api.calls) == calls  # no retry storm


def test_transient_failures_back_off_exponentially_and_a_good_poll_resets(
    app: Flask, session: Session, account: Account, x_api: responses.RequestsMock
) -> None:
    x_api.get(MENTIONS, json={"title": "Service Unavailable", "status": 503}, status=503)
    first = _poll(app, session, account)
    assert first.consecutive_failures == 1 and first.backoff_until is not None
    first_wait = first.backoff_until - utcnow()
    assert timedelta(seconds=10) < first_wait <= timedelta(seconds=30)

    first.backoff_until = utcnow() - timedelta(seconds=1)  # the wait is over
    session.add(first)
    session.commit()
    second = _poll(app, session, account)
    assert second.consecutive_failures == 2
    assert second.backoff_until is not None
    assert second.backoff_until - utcnow() > timedelta(seconds=29)

    second.backoff_until = utcnow() - timedelta(seconds=1)
    session.add(second)
    session.commit()
    x_api.replace(responses.GET, MENTIONS, json=_fixture("mentions_p3.json"))
    recovered = _poll(app, session, account)
    assert recovered.consecutive_failures == 0 and recovered.backoff_until is None
    assert session.exec(select(func.count()).select_from(Message)).one() > 0


def _conversation(session: Session, account: Account) -> Conversation:
    item = make_item(
        platform="x",
        account_ref=ACCOUNT_ID,
        external_id="1800000000000000105",
        kind="mention",
        thread_key="tweet:1800000000000000100",
        text="@Quendelmarkt Wo bleibt meine Bestellung?",
    )
    ingest(session=session, account=account, item=item)
    return session.exec(select(Conversation)).one()


def test_a_retry_after_an_unclear_failure_never_posts_twice(
    session: Session, fernet: MultiFernet, account: Account, x_api: responses.RequestsMock
) -> None:
    conversation = _conversation(session, account)
    agent = make_user(session, role=Role.agent)
    text = "@jodoe Danke für Ihre Geduld & Ihr Vertrauen! Details: https://example.com/x"
    # The post reached X, but the answer never came back.
    x_api.post(f"{API}/tweets", body=requests.ConnectionError("connection reset"))
    message = send_reply(
        session=session, fernet=fernet, conversation=conversation, agent=agent, text=text
    )
    assert message.delivery == Delivery.failed and "could not be reached" in (
        message.delivery_error or ""
    )
    # X's timeline shows the reply (with X's &amp; and t.co link rewriting).
    x_api.get(f"{API}/users/{ACCOUNT_ID}/tweets", json=_fixture("users_tweets.json"))
    posts_before = sum(1 for c in x_api.calls if c.request.method == "POST")
    deliver(session=session, fernet=fernet, message=message)
    assert message.delivery == Delivery.sent
    assert message.external_id == "1800000000000000998"
    assert sum(1 for c in x_api.calls if c.request.method == "POST") == posts_before


def test_a_retry_posts_again_when_the_platform_has_no_such_reply(
    session: Session, fernet: MultiFernet, account: Account, x_api: responses.RequestsMock
) -> None:
    conversation = _conversation(session, account)
    agent = make_user(session, role=Role.agent)
    x_api.post(f"{API}/tweets", json={"title": "Service Unavailable", "status": 503}, status=503)
    message = send_reply(
        session=session,
        fernet=fernet,
        conversation=conversation,
        agent=agent,
        text="Ihre Bestellung ist unterwegs.",
    )
    assert message.delivery == Delivery.failed
    x_api.get(f"{API}/users/{ACCOUNT_ID}/tweets", json={"meta": {"result_count": 0}})
    x_api.replace(responses.POST, f"{API}/tweets", json=_fixture("tweet_created.json"), status=201)
    deliver(session=session, fernet=fernet, message=message)
    assert message.delivery == Delivery.sent and message.attempts == 2
    posted = [json.loads(c.request.body) for c in x_api.calls if c.request.method == "POST"]
    assert posted[-1]["reply"] == {"in_reply_to_tweet_id": "1800000000000000105"}
