"""Service KPIs for the trend report: inbox conversations aggregated per day, never per person."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from inbox.models import Account, Conversation


@dataclass(frozen=True, slots=True)
class ServiceDay:
    """One UTC day of service: conversations opened and closed, first answers, within SLA."""

    day: date
    opened: int
    answered: int
    within_sla: int
    sla_decided: int
    closed: int


@dataclass(frozen=True, slots=True)
class ServiceSummary:
    """First-response times over the range (seconds) and the share answered within the SLA."""

    conversations: int
    median_seconds: int | None
    p90_seconds: int | None
    within_sla_share: float | None
    days: list[ServiceDay]


def percentile(values: list[int], share: float) -> int | None:
    """The nearest-rank percentile of sorted values (share 0.5 is the median)."""
    if not values:
        return None
    rank = max(1, -(-len(values) * share // 1))
    return values[int(rank) - 1]


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def service_summary(
    *,
    session: Session,
    since: date,
    until: date,
    now: datetime,
    account_label: str | None = None,
    platform: str | None = None,
    channel_kind: str | None = None,
) -> ServiceSummary:
    """KPIs of conversations opened (and closed) in [since, until), optionally filtered."""
    statement = (
        sa_select(
            col(Conversation.opened_at),
            col(Conversation.first_response_seconds),
            col(Conversation.first_response_at),
            col(Conversation.sla_due_at),
            col(Conversation.closed_at),
        )
        .join(Account, col(Account.id) == Conversation.account_id)
        .where(
            col(Conversation.is_spam).is_(False),
            or_(
                (col(Conversation.opened_at) >= _start(since))
                & (col(Conversation.opened_at) < _start(until)),
                (col(Conversation.closed_at) >= _start(since))
                & (col(Conversation.closed_at) < _start(until)),
            ),
        )
    )
    if account_label is not None:
        statement = statement.where(col(Account.display_name) == account_label)
    if platform is not None:
        statement = statement.where(col(Account.platform) == platform)
    if channel_kind is not None:
        statement = statement.where(col(Conversation.kind) == channel_kind)
    counts: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    seconds: list[int] = []
    for opened_at, first_seconds, first_at, due, closed_at in session.execute(statement):
        if closed_at is not None and _start(since) <= closed_at < _start(until):
            counts[closed_at.date()]["closed"] += 1
        if not _start(since) <= opened_at < _start(until):
            continue
        day = counts[opened_at.date()]
        day["opened"] += 1
        if first_seconds is not None:
            day["answered"] += 1
            seconds.append(int(first_seconds))
        # Decided once answered, or once the deadline passed unanswered.
        if due is not None and (first_at is not None or due <= now):
            day["decided"] += 1
            day["within"] += int(first_at is not None and first_at <= due)
    seconds.sort()
    decided = sum(day["decided"] for day in counts.values())
    within = sum(day["within"] for day in counts.values())
    days = [
        ServiceDay(
            day=since + timedelta(days=n),
            opened=counts[since + timedelta(days=n)]["opened"],
            answered=counts[since + timedelta(days=n)]["answered"],
            within_sla=counts[since + timedelta(days=n)]["within"],
            sla_decided=counts[since + timedelta(days=n)]["decided"],
            closed=counts[since + timedelta(days=n)]["closed"],
        )
        for n in range((until - since).days)
    ]
    return ServiceSummary(
        conversations=sum(day.opened for day in days),
        median_seconds=percentile(seconds, 0.5),
        p90_seconds=percentile(seconds, 0.9),
        within_sla_share=within / decided if decided else None,
        days=days,
    )
