"""Business gauges read from the inbox database at scrape time.

Read at scrape time, they are right however many web nodes and workers run: every node
reports the same figures (take max() across them, not sum()). Each is one cheap grouped query;
labels are account ids and platforms, never contact data.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from inbox.heartbeat import WorkerHeartbeat
from inbox.models import (
    Account,
    AccountStatus,
    DeadLetter,
    Delivery,
    Direction,
    Message,
    ResearchOutbox,
)
from inbox.types import utcnow

log = logging.getLogger(__name__)


_AccountRow = tuple[
    int | None, str, AccountStatus, datetime | None, datetime | None, datetime | None
]


def _age(now: datetime, moment: datetime | None) -> float:
    return max(0.0, (now - moment).total_seconds()) if moment is not None else 0.0


class DatabaseCollector(Collector):
    """Outbox, dead letters, accounts, undelivered replies and worker beats, from the database."""

    def __init__(self, engine: Engine, *, heartbeat_max_age: float = 90) -> None:
        self.engine = engine
        self.heartbeat_max_age = heartbeat_max_age

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield one family per figure, and `socialcare_database_up` (0 when the query failed)."""
        up = GaugeMetricFamily(
            "socialcare_database_up", "Whether the scrape could read the inbox database."
        )
        try:
            families = list(self._families())
        except SQLAlchemyError as exc:
            # The class only: a driver's message may carry the database URL.
            log.warning("metrics could not read the database: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        with Session(self.engine) as session:
            # SQLAlchemy's select: SQLModel's typed overloads stop at four columns.
            accounts = list(
                session.execute(
                    sa_select(
                        col(Account.id),
                        col(Account.platform),
                        col(Account.status),
                        col(Account.rate_limited_until),
                        col(Account.backoff_until),
                        col(Account.last_polled_at),
                    )
                ).all()
            )
            depth, oldest = session.exec(
                select(func.count(col(ResearchOutbox.id)), func.min(ResearchOutbox.created_at))
            ).one()
            letters = session.exec(
                select(DeadLetter.account_id, DeadLetter.platform, func.count(col(DeadLetter.id)))
                .where(col(DeadLetter.resolved_at).is_(None))
                .group_by(col(DeadLetter.account_id), col(DeadLetter.platform))
            ).all()
            replies = session.exec(
                select(Message.account_id, Message.delivery, func.count(col(Message.id)))
                .where(
                    Message.direction == Direction.outbound,
                    col(Message.delivery).in_([Delivery.pending, Delivery.failed]),
                )
                .group_by(col(Message.account_id), col(Message.delivery))
            ).all()
            beats = session.exec(select(WorkerHeartbeat.seen_at)).all()

        platform_of = {account_id: platform for account_id, platform, *_ in accounts}
        outbox = GaugeMetricFamily(
            "socialcare_outbox_depth", "Messages waiting to be anonymized into the research store."
        )
        outbox.add_metric([], depth)
        yield outbox
        age = GaugeMetricFamily(
            "socialcare_outbox_oldest_age_seconds",
            "Age of the oldest message waiting in the research outbox (0 when empty).",
        )
        age.add_metric([], _age(now, oldest))
        yield age

        dead = GaugeMetricFamily(
            "socialcare_dead_letters",
            'Unresolved dead letters, per account ("none": no account known).',
            labels=["account", "platform"],
        )
        for account_id, platform, count in letters:
            dead.add_metric([str(account_id or "none"), platform], count)
        yield dead

        yield from self._account_families(accounts, now)

        undelivered = GaugeMetricFamily(
            "socialcare_replies_undelivered",
            "Replies not delivered yet, per account and state (pending, failed).",
            labels=["account", "platform", "delivery"],
        )
        for account_id, delivery, count in replies:
            platform = platform_of.get(account_id, "unknown")
            undelivered.add_metric([str(account_id), platform, str(delivery)], count)
        yield undelivered

        alive = GaugeMetricFamily(
            "socialcare_workers_alive", "Workers that beat within the heartbeat limit."
        )
        alive.add_metric([], sum(1 for seen in beats if _age(now, seen) <= self.heartbeat_max_age))
        yield alive
        newest = GaugeMetricFamily(
            "socialcare_worker_heartbeat_age_seconds",
            "Seconds since any worker last beat (-1: none ever did).",
        )
        newest.add_metric([], _age(now, max(beats)) if beats else -1)
        yield newest

    def _account_families(
        self,
        accounts: Sequence[_AccountRow],
        now: datetime,
    ) -> Iterator[GaugeMetricFamily]:
        by_status: Counter[tuple[str, str]] = Counter()
        limited: Counter[str] = Counter()
        backing_off: Counter[str] = Counter()
        last_poll = GaugeMetricFamily(
            "socialcare_account_last_poll_age_seconds",
            "Seconds since an active account was last polled (-1: never).",
            labels=["account", "platform"],
        )
        for account_id, platform, status, rate_limited, backoff, polled in accounts:
            by_status[(platform, status.value)] += 1
            limited[platform] += rate_limited is not None and rate_limited > now
            backing_off[platform] += backoff is not None and backoff > now
            if status == AccountStatus.active:
                last_poll.add_metric(
                    [str(account_id), platform], _age(now, polled) if polled else -1
                )
        states = GaugeMetricFamily(
            "socialcare_accounts", "Official accounts per platform and status.",
            labels=["platform", "status"],
        )  # fmt: skip
        for (platform, state), count in sorted(by_status.items()):
            states.add_metric([platform, state], count)
        yield states
        for name, documentation, counts in (
            ("socialcare_accounts_rate_limited", "Accounts a platform asked to wait.", limited),
            ("socialcare_accounts_backing_off", "Accounts waiting after failures.", backing_off),
        ):
            family = GaugeMetricFamily(name, documentation, labels=["platform"])
            for platform in sorted({p for p, _ in by_status}):
                family.add_metric([platform], counts[platform])
            yield family
        yield last_poll
