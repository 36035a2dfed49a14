"""Admin page for retention: each account's policy, and a dry run of what the next run deletes."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlmodel import select
from werkzeug.wrappers import Response

from inbox import db
from inbox.admin import bp
from inbox.auth import audit_request, roles_required
from inbox.models import Account, Role
from inbox.retention import plan
from inbox.retention_policy import (
    MAX_DAYS,
    MIN_DAYS,
    POLICY_FIELDS,
    PolicyError,
    last_run,
    next_run,
    set_policy,
)
from inbox.types import utcnow

FIELD_LABELS = {
    "retention_days": _l("Delete closed conversations after (days)"),
    "raw_retention_days": _l("Empty raw platform payloads after (days)"),
    "pseudonym_key_days": _l("Destroy research pseudonym keys after the month ends (days)"),
}


def _page(entered: dict[str, str] | None = None, account_id: int | None = None) -> str:
    session = db.session()
    now = utcnow()
    preview = plan(
        session=session,
        now=now,
        default_key_days=current_app.config["PSEUDONYM_KEY_RETENTION_DAYS"],
    )
    accounts = {a.id: a for a in session.exec(select(Account)).all()}
    return render_template(
        "admin/retention.html",
        preview=preview,
        accounts=accounts,
        labels=FIELD_LABELS,
        fields=POLICY_FIELDS,
        min_days=MIN_DAYS,
        max_days=MAX_DAYS,
        last=last_run(session=session),
        next_at=next_run(now=now, timezone=current_app.config["BABEL_DEFAULT_TIMEZONE"]),
        entered=entered or {},
        entered_for=account_id,
    )


@bp.get("/retention")
@roles_required(Role.admin)
def retention() -> str:
    """Every account's retention policy, and what the next run will delete."""
    return _page()


@bp.post("/retention/<int:account_id>")
@roles_required(Role.admin)
def retention_save(account_id: int) -> Response | tuple[str, int]:
    """Change one account's retention policy."""
    session = db.session()
    account = session.get(Account, account_id)
    if account is None:
        abort(404)
    entered = {name: request.form.get(name, "").strip() for name in POLICY_FIELDS}
    try:
        days = {name: int(value) for name, value in entered.items()}
        changes = set_policy(session=session, account=account, days=days)
    except (ValueError, PolicyError) as exc:
        session.rollback()
        label = FIELD_LABELS[exc.field] if isinstance(exc, PolicyError) else None
        flash(
            _(
                "Each figure must be a whole number of days from %(min)s to %(max)s.",
                min=MIN_DAYS,
                max=MAX_DAYS,
            )
            + (f" ({label})" if label else ""),
            "error",
        )
        return _page(entered, account_id), 422
    if changes:
        audit_request(
            action="retention_changed",
            target_type="account",
            target_id=account_id,
            detail={"changes": changes},
        )
        session.commit()
        flash(_("Retention policy of %(name)s saved.", name=account.display_name), "success")
    if account.raw_retention_days > account.retention_days:
        # Allowed: raw payloads of open conversations are still emptied on time.
        flash(
            _(
                "Raw payloads are kept longer than closed conversations: a closed conversation "
                "is deleted with its payloads first."
            ),
            "warning",
        )
    return redirect(url_for("admin.retention"))
