"""The audit trail: who touched whose data, when and from where."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from inbox.models import AuditEvent


def record(
    *,
    session: Session,
    action: str,
    user_id: int | None,
    target_type: str | None = None,
    target_id: int | None = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the session; it is written with the caller's transaction."""
    event = AuditEvent(
        action=action,
        user_id=user_id,
        target_type=target_type,
        target_id=target_id,
        ip=ip,
        detail=detail or {},
    )
    session.add(event)
    return event
