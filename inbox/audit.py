"""The audit trail: who touched whose data, when and from where, as a tamper-evident chain.

Every event's `hash` is SHA-256 over the previous event's hash and the event's own fields, so
changing, removing or reordering a row breaks the chain from there on; `verify_chain` walks it.

The hash is computed when the row is inserted, never afterwards: the table's triggers refuse
every UPDATE. A `before_flush` hook seals each new event right before its INSERT, under a
lock that keeps the chain linear across processes (see `_lock_chain`). The row id is not part
of the hash, because ids are only known after the INSERT; the chain's order is the id order,
and the lock makes ids and links agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, event, inspect, select, text
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col

from inbox.models import AuditEvent, Conversation
from inbox.types import utcnow

# The hash the first sealed event chains to.
GENESIS = "0" * 64
# Any constant works; it names the one PostgreSQL advisory lock that serializes audit inserts.
CHAIN_LOCK_KEY = 0x5C_A0D1_7C4A_1E
# Sorted keys, no spaces, ASCII only: one byte string per event on every backend and version.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def record(
    *,
    session: Session,
    action: str,
    user_id: int | None,
    target_type: str | None = None,
    target_id: int | None = None,
    contact_id: int | None = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Add an audit event to the session; it is written with the caller's transaction."""
    if contact_id is None:
        contact_id = _contact_of(session=session, target_type=target_type, target_id=target_id)
    audit_event = AuditEvent(
        at=now or utcnow(),
        action=action,
        user_id=user_id,
        target_type=target_type,
        target_id=target_id,
        contact_id=contact_id,
        ip=ip,
        detail=detail or {},
    )
    session.add(audit_event)
    return audit_event


def _contact_of(*, session: Session, target_type: str | None, target_id: int | None) -> int | None:
    # Whoever forgets to say whose data a conversation event touched still names the person:
    # access requests list every event by contact. The conversation is usually loaded already.
    if target_id is None:
        return None
    if target_type == "contact":
        return target_id
    if target_type == "conversation":
        conversation = session.get(Conversation, target_id)
        return conversation.contact_id if conversation is not None else None
    return None


def canonical(
    *,
    at: datetime,
    user_id: int | None,
    action: str,
    target_type: str | None,
    target_id: int | None,
    contact_id: int | None,
    ip: str | None,
    detail: dict[str, Any],
) -> bytes:
    """The bytes of an event that its hash covers: the same on every backend and version."""
    fields = {
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "user_id": user_id,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "contact_id": contact_id,
        "ip": ip,
        "detail": detail,
    }
    return _CANONICAL_JSON.encode(fields).encode()


def link_hash(previous: str, fields: bytes) -> str:
    """The hash of an event given the previous event's hash and its canonical fields."""
    return hashlib.sha256(previous.encode() + b"\n" + fields).hexdigest()


def _hash_of(previous: str, audit_event: AuditEvent) -> str:
    return link_hash(
        previous,
        canonical(
            at=audit_event.at,
            user_id=audit_event.user_id,
            action=audit_event.action,
            target_type=audit_event.target_type,
            target_id=audit_event.target_id,
            contact_id=audit_event.contact_id,
            ip=audit_event.ip,
            # What the database will hand back: JSON turns tuples into lists, keys into text.
            detail=json.loads(json.dumps(audit_event.detail or {})),
        ),
    )


def _lock_chain(connection: Connection) -> None:
    """Make this transaction the only one that appends to the chain until it ends.

    PostgreSQL: a transaction-scoped advisory lock, taken before the previous hash is read and
    before the sequence hands out ids; it is released at commit, when the next writer (under
    READ COMMITTED, the default) sees the row it must chain to.

    SQLite: Python's driver runs a SELECT outside any transaction until the first write, so a
    previous hash read there could be stale by the time our INSERT gets the write lock. Taking
    the write lock first (BEGIN IMMEDIATE) closes that window. A transaction that wrote
    already holds it; one that only read inside an explicit BEGIN fails with SQLITE_BUSY
    rather than chaining to a stale hash.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        driver = connection.connection.dbapi_connection
        if driver is not None and not getattr(driver, "in_transaction", True):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _seal_new_events(session: OrmSession, _context: Any, _instances: Any) -> None:
    """Hash the session's new audit events, in the order they will be inserted."""
    pending = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    if not pending:
        return
    pending.sort(key=lambda obj: inspect(obj).insert_order)
    connection = session.connection()
    _lock_chain(connection)
    last = select(col(AuditEvent.hash)).order_by(col(AuditEvent.id).desc()).limit(1)
    previous = connection.execute(last).scalar() or GENESIS
    for audit_event in pending:
        audit_event.hash = previous = _hash_of(previous, audit_event)


# Declarative wiring, not work: every session that flushes an audit event seals it, whichever
# code added it. The model module cannot hold it (it must not depend on this one).
if not event.contains(OrmSession, "before_flush", _seal_new_events):
    event.listen(OrmSession, "before_flush", _seal_new_events)


# Verification --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """The first event where the chain does not hold, and why."""

    id: int
    at: datetime
    action: str
    # "mismatch": the stored hash is not what the fields and the previous hash give;
    # "unsealed": no hash, though events before it have one.
    reason: str

    def describe(self) -> str:
        """One line naming the event, for the command line."""
        when = self.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        what = (
            "hash does not match"
            if self.reason == "mismatch"
            else "has no hash, though events before it have one"
        )
        return (
            f"event #{self.id} ({when}, {self.action}): {what} "
            "— changed, or an event before it was removed"
        )


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of walking the chain."""

    events: int
    # Events from before the chain existed (no hash), allowed only before the first sealed one.
    unsealed_prefix: int
    head: str | None
    broken: BrokenLink | None

    @property
    def intact(self) -> bool:
        """Whether every link holds."""
        return self.broken is None


def _columns() -> list[Any]:
    # Plain rows, not ORM objects: nothing piles up in the session on a long walk.
    return [
        col(column)
        for column in (
            AuditEvent.id,
            AuditEvent.at,
            AuditEvent.user_id,
            AuditEvent.action,
            AuditEvent.target_type,
            AuditEvent.target_id,
            AuditEvent.contact_id,
            AuditEvent.ip,
            AuditEvent.detail,
            AuditEvent.hash,
        )
    ]


def _rows(session: Session, batch_size: int) -> Iterator[Any]:
    # Keyset batches: constant memory and one index seek per batch, whatever the table's size.
    after = 0
    while True:
        batch = session.execute(
            select(*_columns())
            .where(col(AuditEvent.id) > after)
            .order_by(col(AuditEvent.id))
            .limit(batch_size)
        ).all()
        if not batch:
            return
        yield from batch
        after = batch[-1].id


def verify_chain(*, session: Session, batch_size: int = 5000) -> Verification:
    """Walk the audit trail in id order and report the first broken link, if any."""
    previous, events, unsealed = GENESIS, 0, 0
    head: str | None = None
    # Plain tuples: named access on a million rows costs more than the hashing.
    for row_id, at, user_id, action, target_type, target_id, contact_id, ip, detail, stored in (
        tuple(row) for row in _rows(session, batch_size)
    ):
        events += 1
        if stored is None and head is None:
            unsealed += 1
            continue
        fields = canonical(
            at=at,
            user_id=user_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            contact_id=contact_id,
            ip=ip,
            detail=detail or {},
        )
        if stored is None or link_hash(previous, fields) != stored:
            reason = "unsealed" if stored is None else "mismatch"
            broken = BrokenLink(id=row_id, at=at, action=action, reason=reason)
            return Verification(events, unsealed, head, broken)
        previous = head = stored
    return Verification(events, unsealed, head, None)


# Reading the trail ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which events to show; None means any. `since` is inclusive, `until` exclusive (UTC)."""

    user_id: int | None = None
    contact_id: int | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def as_detail(self) -> dict[str, Any]:
        """The filter as it is itself audited: only what is set."""
        values = {
            "user_id": self.user_id,
            "contact_id": self.contact_id,
            "action": self.action,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {name: value for name, value in values.items() if value is not None}


def find_events(
    *, session: Session, where: AuditFilter, before_id: int | None = None, limit: int = 50
) -> list[Any]:
    """Events matching the filter, newest first, with ids below `before_id` (the next page)."""
    query = select(*_columns()).order_by(col(AuditEvent.id).desc()).limit(limit)
    if where.user_id is not None:
        query = query.where(col(AuditEvent.user_id) == where.user_id)
    if where.contact_id is not None:
        query = query.where(col(AuditEvent.contact_id) == where.contact_id)
    if where.action is not None:
        query = query.where(col(AuditEvent.action) == where.action)
    if where.since is not None:
        query = query.where(col(AuditEvent.at) >= where.since)
    if where.until is not None:
        query = query.where(col(AuditEvent.at) < where.until)
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    return list(session.execute(query).all())


def iter_events(*, session: Session, where: AuditFilter, batch_size: int = 1000) -> Iterator[Any]:
    """Every event matching the filter, newest first, read in keyset batches (for exports)."""
    before: int | None = None
    while True:
        batch = find_events(session=session, where=where, before_id=before, limit=batch_size)
        yield from batch
        if len(batch) < batch_size:
            return
        before = batch[-1].id
