"""Service KPIs for the trend report: inbox conversations aggregated per day, never per person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, Select, case, cast, func, literal_column
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


def rank(count: int, share: float) -> int:
    """The 1-based nearest rank of `share` among `count` values (as PostgreSQL's percentile_disc).

    Both compute ceil(count * share) in double precision, so they agree on every edge.
    """
    return max(1, int(-(-count * share // 1)))


def percentile(values: list[int], share: float) -> int | None:
    """The nearest-rank percentile of sorted values (share 0.5 is the median)."""
    if not values:
        return None
    return values[rank(len(values), share) - 1]


SHARES = (0.5, 0.9)


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _utc_day(column: Any, dialect: str) -> Any:
    """The UTC day of a UTCDateTime column, as SQL (literals inline so GROUP BY matches)."""
    if dialect == "postgresql":
        return cast(func.timezone(literal_column("'UTC'"), column), Date)
    # SQLite keeps UTCDateTime as UTC text "YYYY-MM-DD HH:MM:SS.ffffff".
    return func.substr(column, literal_column("1"), literal_column("10"))


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class _Filter:
    account_label: str | None
    platform: str | None
    channel_kind: str | None

    def apply(self, statement: Select[Any]) -> Select[Any]:
        """Spam never counts; the optional account, platform and channel filters."""
        statement = statement.where(col(Conversation.is_spam).is_(False))
        if self.account_label is not None or self.platform is not None:
            statement = statement.join(Account, col(Account.id) == Conversation.account_id)
        if self.account_label is not None:
            statement = statement.where(col(Account.display_name) == self.account_label)
        if self.platform is not None:
            statement = statement.where(col(Account.platform) == self.platform)
        if self.channel_kind is not None:
            statement = statement.where(col(Conversation.kind) == self.channel_kind)
        return statement

    def opened(self, since: date, until: date) -> Select[Any]:
        """The ids of the conversations opened in [since, until) that pass the filters."""
        opened_at = col(Conversation.opened_at)
        return self.apply(sa_select(col(Conversation.id))).where(_in_range(opened_at, since, until))


def _in_range(column: Any, since: date, until: date) -> Any:
    return (column >= _start(since)) & (column < _start(until))


def _percentiles(
    session: Session, opened: Select[Any], dialect: str, answered: int
) -> list[int | None]:
    """The first-response percentiles (SHARES) of the conversations `opened` selects."""
    seconds = col(Conversation.first_response_seconds)
    opened = opened.where(seconds.is_not(None))
    if answered == 0:
        return [None for _ in SHARES]
    if dialect == "postgresql":
        aggregates = [func.percentile_disc(share).within_group(seconds) for share in SHARES]
        row = session.execute(opened.with_only_columns(*aggregates)).one()
        return [None if value is None else int(value) for value in row]
    # SQLite has no percentile aggregate: number the sorted durations and pick the ranks.
    ranks = [rank(answered, share) for share in SHARES]
    numbered = opened.with_only_columns(
        seconds.label("seconds"),
        func.row_number().over(order_by=seconds).label("n"),
        func.count().over().label("total"),
    ).subquery()
    chosen = sa_select(numbered.c.n, numbered.c.seconds, numbered.c.total).where(
        numbered.c.n.in_(ranks)
    )
    picked = {int(n): (int(value), int(total)) for n, value, total in session.execute(chosen)}
    if all(r in picked and picked[r][1] == answered for r in ranks):
        return [picked[r][0] for r in ranks]
    # Conversations were answered between the two statements: read the durations once more.
    values = sorted(int(v) for v in session.execute(opened.with_only_columns(seconds)).scalars())
    return [percentile(values, share) for share in SHARES]


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
    """KPIs of conversations opened (and closed) in [since, until), optionally filtered.

    Days are UTC days. Aggregated in the database: per day a count, and for the percentiles
    PostgreSQL's percentile_disc or, on SQLite, two ranked rows.
    """
    dialect = session.get_bind().dialect.name
    where = _Filter(account_label, platform, channel_kind)
    opened_at, due = col(Conversation.opened_at), col(Conversation.sla_due_at)
    first_at = col(Conversation.first_response_at)
    # Decided once answered, or once the deadline passed unanswered.
    decided = due.is_not(None) & (first_at.is_not(None) | (due <= now))
    within = due.is_not(None) & first_at.is_not(None) & (first_at <= due)
    opened = where.opened(since, until)
    day = _utc_day(opened_at, dialect)
    per_day = opened.with_only_columns(
        day,
        func.count(),
        func.count(col(Conversation.first_response_seconds)),
        func.coalesce(func.sum(case((decided, 1), else_=0)), 0),
        func.coalesce(func.sum(case((within, 1), else_=0)), 0),
    ).group_by(day)
    counts: dict[date, tuple[int, int, int, int]] = {
        _as_date(key): (int(a), int(b), int(c), int(d))
        for key, a, b, c, d in session.execute(per_day)
    }
    closed_day = _utc_day(col(Conversation.closed_at), dialect)
    closing = (
        where.apply(sa_select(closed_day, func.count()))
        .where(_in_range(col(Conversation.closed_at), since, until))
        .group_by(closed_day)
    )
    closed = {_as_date(key): int(n) for key, n in session.execute(closing)}
    days = []
    for n in range((until - since).days):
        key = since + timedelta(days=n)
        opened_n, answered_n, decided_n, within_n = counts.get(key, (0, 0, 0, 0))
        days.append(
            ServiceDay(
                day=key,
                opened=opened_n,
                answered=answered_n,
                within_sla=within_n,
                sla_decided=decided_n,
                closed=closed.get(key, 0),
            )
        )
    answered = sum(day.answered for day in days)
    decided_total = sum(day.sla_decided for day in days)
    median, p90 = _percentiles(session, opened, dialect, answered)
    return ServiceSummary(
        conversations=sum(day.opened for day in days),
        median_seconds=median,
        p90_seconds=p90,
        within_sla_share=sum(day.within_sla for day in days) / decided_total
        if decided_total
        else None,
        days=days,
    )
