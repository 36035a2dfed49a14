"""The service KPIs aggregated in SQL agree with a plain Python count over random conversations."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from inbox.models import Account, Contact, Conversation
from inbox.reports_kpis import (
    ServiceDay,
    ServiceSummary,
    _Filter,
    _percentiles,
    percentile,
    rank,
    service_summary,
)

SINCE = date(2026, 3, 1)
UNTIL = date(2026, 3, 8)
NOW = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
FILTERS = ("account_label", "platform", "channel_kind")


def _moment(rng: random.Random) -> datetime:
    """A time around the range, often right on or next to a UTC midnight."""
    day = datetime.combine(SINCE - timedelta(days=1), time(), tzinfo=UTC)
    day += timedelta(days=rng.randrange((UNTIL - SINCE).days + 2))
    edge = rng.choice([timedelta(0), -timedelta(microseconds=1), timedelta(microseconds=1)])
    return day + (edge if rng.random() < 0.3 else timedelta(seconds=rng.randrange(86400)))


def _seed(session: Session, rng: random.Random) -> None:
    accounts = [
        Account(
            platform=platform,
            display_name=f"Shop {n}",
            platform_account_id=str(n),
            credentials_encrypted=b"unused",
        )
        for n, platform in enumerate(["demo", "demo", "other"])
    ]
    contact = Contact(platform="demo", platform_user_id="c1")
    session.add_all([*accounts, contact])
    session.flush()
    account_ids = [account.id for account in accounts if account.id is not None]
    assert contact.id is not None
    for n in range(rng.randrange(0, 400)):
        opened = _moment(rng)
        # Few distinct durations, so ties around the percentiles are common.
        seconds = rng.choice([None, rng.randrange(1, 20) * 60, rng.randrange(1, 100000)])
        due = None if rng.random() < 0.15 else opened + timedelta(minutes=rng.choice([30, 60]))
        first_at = None if seconds is None else opened + timedelta(seconds=seconds)
        if first_at is not None and due is not None and rng.random() < 0.1:
            first_at = due  # answered exactly on the deadline counts as within
        session.add(
            Conversation(
                account_id=rng.choice(account_ids),
                contact_id=contact.id,
                kind=rng.choice(["dm", "comment"]),
                thread_key=f"t{n}",
                opened_at=opened,
                last_message_at=opened,
                sla_due_at=due,
                first_response_at=first_at,
                first_response_seconds=seconds,
                closed_at=None if rng.random() < 0.4 else _moment(rng),
                is_spam=rng.random() < 0.1,
            )
        )
    session.commit()


def _in(moment: datetime | None) -> bool:
    start = datetime.combine(SINCE, time(), tzinfo=UTC)
    return moment is not None and start <= moment < datetime.combine(UNTIL, time(), tzinfo=UTC)


def _expected(session: Session, **filters: str) -> ServiceSummary:
    """The same figures, counted conversation by conversation in Python."""
    accounts = {a.id: a for a in session.exec(select(Account))}
    rows = [
        c
        for c in session.exec(select(Conversation))
        if not c.is_spam
        and filters.get("account_label", accounts[c.account_id].display_name)
        == accounts[c.account_id].display_name
        and filters.get("platform", accounts[c.account_id].platform)
        == accounts[c.account_id].platform
        and filters.get("channel_kind", c.kind) == c.kind
    ]
    opened = [c for c in rows if _in(c.opened_at)]
    count: Counter[tuple[str, date]] = Counter()
    for c in opened:
        day = c.opened_at.astimezone(UTC).date()
        count["opened", day] += 1
        count["answered", day] += c.first_response_seconds is not None
        if c.sla_due_at is not None and (c.first_response_at is not None or c.sla_due_at <= NOW):
            count["decided", day] += 1
            count["within", day] += (
                c.first_response_at is not None and c.first_response_at <= c.sla_due_at
            )
    for c in rows:
        if c.closed_at is not None and _in(c.closed_at):
            count["closed", c.closed_at.astimezone(UTC).date()] += 1
    days = [SINCE + timedelta(days=n) for n in range((UNTIL - SINCE).days)]
    seconds = sorted(
        c.first_response_seconds for c in opened if c.first_response_seconds is not None
    )
    decided = sum(count["decided", d] for d in days)
    return ServiceSummary(
        conversations=len(opened),
        median_seconds=percentile(seconds, 0.5),
        p90_seconds=percentile(seconds, 0.9),
        within_sla_share=sum(count["within", d] for d in days) / decided if decided else None,
        days=[
            ServiceDay(
                day=d,
                opened=count["opened", d],
                answered=count["answered", d],
                within_sla=count["within", d],
                sla_decided=count["decided", d],
                closed=count["closed", d],
            )
            for d in days
        ],
    )


@pytest.mark.parametrize("seed", range(6))
def test_sql_aggregates_match_python_over_random_conversations(session: Session, seed: int) -> None:
    _seed(session, random.Random(seed))
    if session.get_bind().dialect.name == "postgresql":
        # Days are UTC days whatever the database session's time zone.
        session.execute(text("SET LOCAL TIME ZONE 'Pacific/Kiritimati'"))
    for filters in [{}, {"account_label": "Shop 1"}, {"platform": "demo", "channel_kind": "dm"}]:
        got = service_summary(session=session, since=SINCE, until=UNTIL, now=NOW, **filters)
        assert got == _expected(session, **filters), filters
        # The ranked-rows way (SQLite's) agrees with percentile_disc on PostgreSQL too.
        opened = _Filter(**{name: filters.get(name) for name in FILTERS}).opened(SINCE, UNTIL)
        answered = sum(day.answered for day in got.days)
        ranked = _percentiles(session, opened, "sqlite", answered)
        assert ranked == [got.median_seconds, got.p90_seconds]


def test_ranked_percentiles_recount_when_answers_arrive_meanwhile(session: Session) -> None:
    _seed(session, random.Random(7))
    opened = _Filter(None, None, None).opened(SINCE, UNTIL)
    summary = service_summary(session=session, since=SINCE, until=UNTIL, now=NOW)
    answered = sum(day.answered for day in summary.days)
    assert answered > 10

    # A count taken before (or after) more answers came in must not shift the percentiles.
    for stale in (answered - 3, answered + 3):
        ranked = _percentiles(session, opened, "sqlite", stale)
        assert ranked == [summary.median_seconds, summary.p90_seconds]


def test_percentiles_of_no_answered_conversation_are_empty(session: Session) -> None:
    summary = service_summary(session=session, since=SINCE, until=UNTIL, now=NOW)

    assert (summary.median_seconds, summary.p90_seconds, summary.within_sla_share) == (
        None,
        None,
        None,
    )
    assert [d.opened for d in summary.days] == [0] * 7


def test_rank_is_the_nearest_rank_postgresql_uses() -> None:
    assert [rank(n, 0.5) for n in (1, 2, 3, 4)] == [1, 1, 2, 2]
    assert [rank(n, 0.9) for n in (1, 9, 10, 11, 30)] == [1, 9, 9, 10, 27]
