"""Service KPIs on the trend report: first-response times and SLA share, no names."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography.fernet import MultiFernet
from flask.testing import FlaskClient
from sqlmodel import Session

from connectors.base import Author
from inbox.ingest import ingest
from inbox.models import Account, Conversation, Role
from inbox.reports_kpis import percentile, service_summary
from inbox.types import utcnow
from tests.conftest import login, make_account, make_item, make_user

HOSTILE = "<script>alert(1)</script>"


def _conversation(
    session: Session,
    account: Account,
    n: int,
    opened: datetime,
    first_seconds: int | None,
    due_minutes: int = 60,
) -> Conversation:
    item = make_item(
        external_id=f"dm-{n}",
        thread_key=f"dm-{n}",
        created_at=opened,
        author=Author(platform_user_id=f"u{n}", handle=f"kundin{n}", display_name=HOSTILE),
    )
    message = ingest(session=session, account=account, item=item).message
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation is not None
    conversation.opened_at = opened
    conversation.sla_due_at = opened + timedelta(minutes=due_minutes)
    if first_seconds is not None:
        conversation.first_response_seconds = first_seconds
        conversation.first_response_at = opened + timedelta(seconds=first_seconds)
    session.add(conversation)
    session.commit()
    return conversation


@pytest.fixture
def day() -> datetime:
    return (utcnow() - timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)


def test_median_p90_and_sla_share(session: Session, fernet: MultiFernet, day: datetime) -> None:
    account = make_account(session, fernet)
    minutes = [5, 10, 20, 30, 45, 90, 120, None]
    for n, value in enumerate(minutes):
        _conversation(session, account, n, day, None if value is None else value * 60)

    summary = service_summary(
        session=session,
        since=day.date() - timedelta(days=1),
        until=day.date() + timedelta(days=1),
        now=utcnow(),
    )

    assert summary.conversations == 8
    assert summary.median_seconds == 30 * 60
    assert summary.p90_seconds == 120 * 60
    # 5 within an hour out of 8 decided (the unanswered one is past its deadline).
    assert summary.within_sla_share == pytest.approx(5 / 8)
    assert [d.opened for d in summary.days] == [0, 8]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1, 2, 3, 4], 0.5) == 2
    assert percentile(list(range(1, 11)), 0.9) == 9


def test_report_page_shows_service_figures_without_names(
    client: FlaskClient, session: Session, fernet: MultiFernet, day: datetime
) -> None:
    account = make_account(session, fernet)
    for n in range(6):
        _conversation(session, account, n, day, 600 + n * 60)
    marketing = make_user(session, role=Role.marketing)
    login(client, marketing.email)

    body = client.get("/reports?days=7").get_data(as_text=True)

    assert "First response, median" in body
    assert "0 h 12 min" in body  # median of 10..15 minutes (nearest rank: 12)
    assert "100 %" in body
    assert HOSTILE not in body and "kundin" not in body
    csv = client.get("/reports?days=7&format=csv&table=service").get_data(as_text=True)
    assert csv.splitlines()[0] == "label,opened,answered,within_sla,closed"
    assert f"{day.date().isoformat()},6,6,100 %,0" in csv


def test_fewer_than_k_conversations_show_no_service_figures(
    client: FlaskClient, session: Session, fernet: MultiFernet, day: datetime
) -> None:
    account = make_account(session, fernet)
    for n in range(3):
        _conversation(session, account, n, day, 600)
    marketing = make_user(session, role=Role.marketing)
    login(client, marketing.email)

    body = client.get("/reports?days=7").get_data(as_text=True)

    assert "Fewer than 5 conversations in this range" in body
    assert "First response, median" not in body
