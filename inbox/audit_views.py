"""The audit viewer for admins and the data-protection officer: filter, page back, export."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
)
from flask_babel import lazy_gettext as _l
from sqlmodel import Session, col, select

from inbox import audit, db
from inbox.auth import audit_request, roles_required
from inbox.models import Role, User
from inbox.types import utcnow

bp = Blueprint("audit", __name__, url_prefix="/audit")
PAGE_SIZE = 50
_ACTION = re.compile(r"^[a-z0-9_]{1,64}$")

# Every action the product writes, in words. Unknown ones (from a newer release) show as is.
ACTION_LABELS: dict[str, Any] = {
    "login": _l("Logged in"),
    "login_failed": _l("Failed login"),
    "login_locked": _l("Login locked after failures"),
    "logout_everywhere": _l("Logged out everywhere"),
    "password_changed": _l("Changed their password"),
    "2fa_enabled": _l("Second factor set up"),
    "2fa_disabled": _l("Second factor removed"),
    "2fa_reset": _l("Second factor reset"),
    "2fa_recovery_codes_renewed": _l("Recovery codes renewed"),
    "user_created": _l("Created a user"),
    "role_changed": _l("Role changed"),
    "setting_changed": _l("Setting changed"),
    "view_conversation": _l("Viewed a conversation"),
    "view_contact": _l("Viewed a contact"),
    "search": _l("Searched conversations"),
    "reply": _l("Replied"),
    "reply_refused": _l("Reply refused by the outbound gate"),
    "canned_reply_inserted": _l("Inserted a canned reply"),
    "status_open": _l("Reopened a conversation"),
    "status_pending": _l("Set a conversation pending"),
    "status_closed": _l("Closed a conversation"),
    "assign": _l("Assigned a conversation"),
    "unassign": _l("Unassigned a conversation"),
    "snooze": _l("Snoozed a conversation"),
    "unsnooze": _l("Woke a snoozed conversation"),
    "tag_add": _l("Added a tag"),
    "tag_remove": _l("Removed a tag"),
    "note_add": _l("Added a note"),
    "spam": _l("Marked as spam"),
    "not_spam": _l("Marked as not spam"),
    "consent_recorded": _l("Recorded consent"),
    "consent_withdrawn": _l("Withdrew consent"),
    "consent_text_created": _l("Created a consent text"),
    "research_objection": _l("Recorded an objection to research"),
    "research_objection_cleared": _l("Cleared an objection to research"),
    "dsr_search": _l("Searched contacts for a request"),
    "dsr_view": _l("Opened a contact's data"),
    "dsr_export": _l("Exported a contact's data"),
    "dsr_summary": _l("Printed a contact's data summary"),
    "erase_contact": _l("Erased a contact"),
    "retention_changed": _l("Changed the retention policy"),
    "retention_applied": _l("Applied the retention policy"),
    "account_connected": _l("Connected an account"),
    "account_active": _l("Resumed an account"),
    "account_paused": _l("Paused an account"),
    "account_research_policy": _l("Changed an account's research policy"),
    "account_member_saved": _l("Saved an account member"),
    "account_member_removed": _l("Removed an account member"),
    "canned_reply_created": _l("Created a canned reply"),
    "canned_reply_updated": _l("Changed a canned reply"),
    "canned_reply_deleted": _l("Deleted a canned reply"),
    "dead_letter_retried": _l("Retried a dead letter"),
    "dead_letter_discarded": _l("Discarded a dead letter"),
    "research_leak_rejected": _l("Kept a message out of research"),
    "keys_rotated": _l("Re-encrypted the secrets"),
    "view_audit": _l("Viewed the audit trail"),
    "export_audit": _l("Exported the audit trail"),
}
TARGET_LABELS: dict[str, Any] = {
    "conversation": _l("Conversation"),
    "contact": _l("Contact"),
    "user": _l("User"),
    "account": _l("Account"),
    "message": _l("Message"),
    "dead_letter": _l("Dead letter"),
    "consent_text": _l("Consent text"),
    "canned_reply": _l("Canned reply"),
    "search": _l("Search"),
    "audit": _l("Audit trail"),
}


def action_label(action: str) -> str:
    """An action in the reader's language."""
    return str(ACTION_LABELS.get(action, action))


def _id(args: Mapping[str, str], name: str) -> int | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    # Beyond 9 digits no id exists, and PostgreSQL would refuse to compare it with an integer.
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise ValueError(name)
    return int(value)


def _day(args: Mapping[str, str], name: str) -> date | None:
    value = (args.get(name) or "").strip()
    return date.fromisoformat(value) if value else None


def parse_filter(args: Mapping[str, str], *, zone: ZoneInfo) -> audit.AuditFilter:
    """The filter from query parameters: dates are whole days in the team's zone, `to`
    included. Malformed values raise ValueError."""
    action = (args.get("action") or "").strip() or None
    if action is not None and not _ACTION.match(action):
        raise ValueError("action")
    first, last = _day(args, "from"), _day(args, "to")
    return audit.AuditFilter(
        user_id=_id(args, "user"),
        contact_id=_id(args, "contact"),
        action=action,
        since=datetime.combine(first, time(), zone) if first else None,
        until=datetime.combine(last + timedelta(days=1), time(), zone) if last else None,
    )


def _filter() -> tuple[audit.AuditFilter, dict[str, str]]:
    """The request's filter, and its query parameters to carry into links."""
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    try:
        where = parse_filter(request.args, zone=zone)
    except ValueError:
        abort(400)
    names = ("user", "contact", "action", "from", "to")
    given = {name: request.args.get(name, "").strip() for name in names}
    return where, {name: value for name, value in given.items() if value}


def _user_names(session: Session) -> dict[int, str]:
    # Staff only, a few dozen at most: the filter's choices and the table's names.
    rows = session.exec(select(User.id, User.name).order_by(col(User.name))).all()
    return {user_id: name for user_id, name in rows if user_id is not None}


@bp.get("")
@roles_required(Role.admin, Role.dpo)
def index() -> str:
    """The audit trail, newest first, filtered by user, contact, action and days."""
    session = db.session()
    where, args = _filter()
    try:
        before = _id(request.args, "before")
    except ValueError:
        abort(400)
    rows = audit.find_events(session=session, where=where, before_id=before, limit=PAGE_SIZE + 1)
    older = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
    rows = rows[:PAGE_SIZE]
    audit_request(
        action="view_audit",
        target_type="audit",
        target_id=None,
        contact_id=where.contact_id,
        detail={
            **where.as_detail(),
            **({"before": before} if before is not None else {}),
            "events": len(rows),
        },
    )
    session.commit()
    return render_template(
        "audit/index.html",
        rows=rows,
        args=args,
        older=older,
        paged=before is not None,
        users=_user_names(session),
        actions=sorted(ACTION_LABELS, key=action_label),
        action_label=action_label,
        target_label=lambda target: str(TARGET_LABELS.get(target, target)),
        detail_text=detail_text,
    )


def detail_text(detail: Mapping[str, Any] | None) -> str:
    """An event's detail as short `key: value` pairs (escaped by the template)."""
    parts = []
    for key, value in sorted((detail or {}).items()):
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}: {shown}")
    text = ", ".join(parts)
    return text if len(text) <= 300 else text[:299] + "…"


CSV_COLUMNS = (
    "id",
    "time_utc",
    "user_id",
    "user",
    "action",
    "target_type",
    "target_id",
    "contact_id",
    "ip",
    "detail",
    "hash",
)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs cells that start like a formula; details may hold anyone's words.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_lines(
    *, session: Session, where: audit.AuditFilter, names: Mapping[int, str]
) -> Iterator[str]:
    """The filtered events as CSV text, a line at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in audit.iter_events(session=session, where=where):
        writer.writerow(
            [
                _cell(value)
                for value in (
                    row.id,
                    row.at.isoformat(timespec="seconds"),
                    row.user_id,
                    names.get(row.user_id, "") if row.user_id is not None else "",
                    row.action,
                    row.target_type,
                    row.target_id,
                    row.contact_id,
                    row.ip,
                    json.dumps(row.detail or {}, ensure_ascii=False, sort_keys=True),
                    row.hash,
                )
            ]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


@bp.get("/export.csv")
@roles_required(Role.admin, Role.dpo)
def export() -> Response:
    """The filtered events as a CSV file."""
    session = db.session()
    where, _args = _filter()
    audit_request(
        action="export_audit",
        target_type="audit",
        target_id=None,
        contact_id=where.contact_id,
        detail=where.as_detail(),
    )
    session.commit()
    names = _user_names(session)
    engine = db.databases().inbox

    def generate() -> Iterator[str]:
        # Its own session: the response streams after the view has returned.
        with Session(engine) as reading:
            yield from csv_lines(session=reading, where=where, names=names)

    filename = f"audit-{utcnow():%Y%m%d-%H%M}.csv"
    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
