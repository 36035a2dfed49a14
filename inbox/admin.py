"""Admins' pages: the official accounts and what the worker does with them."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlmodel import col, func, select
from werkzeug.wrappers import Response

from inbox import db
from inbox.accounts import set_status
from inbox.auth import audit_request, roles_required
from inbox.dead_letters import discard_dead_letter, list_dead_letters, retry_dead_letter
from inbox.models import Account, AccountStatus, DeadLetter, Direction, Message, PollRun, Role
from inbox.types import utcnow

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/accounts")
@roles_required(Role.admin)
def accounts() -> str:
    """Every official account with its polling state, waits, last error and items today."""
    session = db.session()
    now = utcnow()
    rows = session.exec(select(Account).order_by(col(Account.id))).all()
    latest = select(func.max(PollRun.id)).group_by(col(PollRun.account_id))
    last_runs = {
        run.account_id: run
        for run in session.exec(select(PollRun).where(col(PollRun.id).in_(latest))).all()
    }
    # Customers' items of the team's day (not UTC's), in one grouped query that the index
    # ix_message_account_received serves; the agents' own replies are not items.
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    midnight = datetime.combine(now.astimezone(zone).date(), time(), tzinfo=zone).astimezone(UTC)
    today = dict(
        session.exec(
            select(Message.account_id, func.count())
            .where(
                col(Message.received_at) >= midnight, col(Message.direction) == Direction.inbound
            )
            .group_by(col(Message.account_id))
        ).all()
    )
    return render_template(
        "admin/accounts.html", accounts=rows, runs=last_runs, today=today, now=now
    )


@bp.post("/accounts/<int:account_id>/status")
@roles_required(Role.admin)
def account_status(account_id: int) -> Response:
    """Pause or resume an account's polling."""
    session = db.session()
    account = session.get(Account, account_id)
    if account is None:
        abort(404)
    try:
        status = AccountStatus(request.form.get("status", ""))
    except ValueError:
        abort(400)
    if status == AccountStatus.needs_reconnection:
        abort(400)
    set_status(session=session, account=account, status=status)
    audit_request(
        action=f"account_{status.value}",
        target_type="account",
        target_id=account_id,
    )
    session.commit()
    if status == AccountStatus.paused:
        flash(_("Polling paused for %(name)s.", name=account.display_name), "success")
    else:
        flash(_("Polling resumed for %(name)s.", name=account.display_name), "success")
    return redirect(url_for("admin.accounts"))


@bp.get("/dead-letters")
@roles_required(Role.admin)
def dead_letters() -> str:
    """Payloads that could not be parsed, with their error and raw text, to retry or discard."""
    session = db.session()
    include_resolved = request.args.get("all") == "1"
    letters = list_dead_letters(session=session, include_resolved=include_resolved)
    names = {a.id: a.display_name for a in session.exec(select(Account)).all()}
    return render_template(
        "admin/dead_letters.html",
        letters=letters,
        names=names,
        include_resolved=include_resolved,
    )


def _letter(letter_id: int) -> DeadLetter:
    letter = db.session().get(DeadLetter, letter_id)
    if letter is None:
        abort(404)
    return letter


@bp.post("/dead-letters/<int:letter_id>/retry")
@roles_required(Role.admin)
def dead_letter_retry(letter_id: int) -> Response:
    """Parse a dead letter again with the current parser; ingest it if it parses now."""
    session = db.session()
    outcome = retry_dead_letter(session=session, letter=_letter(letter_id))
    audit_request(
        action="dead_letter_retried",
        target_type="dead_letter",
        target_id=letter_id,
        detail={"outcome": outcome.outcome, "message": outcome.message},
    )
    session.commit()
    if outcome.outcome == "ingested":
        flash(_("Dead letter #%(id)s parsed and stored as a message.", id=letter_id), "success")
    elif outcome.outcome == "duplicate":
        flash(
            _("Dead letter #%(id)s was already stored; marked resolved.", id=letter_id), "success"
        )
    elif outcome.outcome == "failed":
        flash(
            _(
                "Dead letter #%(id)s still cannot be parsed: %(error)s",
                id=letter_id,
                error=outcome.message,
            ),
            "error",
        )
    else:
        flash(
            _(
                "Dead letter #%(id)s was not retried: %(reason)s",
                id=letter_id,
                reason=outcome.message,
            ),
            "error",
        )
    return redirect(url_for("admin.dead_letters"))


@bp.post("/dead-letters/<int:letter_id>/discard")
@roles_required(Role.admin)
def dead_letter_discard(letter_id: int) -> Response:
    """Mark a dead letter resolved without ingesting it."""
    session = db.session()
    discard_dead_letter(session=session, letter=_letter(letter_id))
    audit_request(
        action="dead_letter_discarded",
        target_type="dead_letter",
        target_id=letter_id,
    )
    session.commit()
    flash(_("Dead letter #%(id)s discarded.", id=letter_id), "success")
    return redirect(url_for("admin.dead_letters"))


# Further admin pages register themselves on `bp`; they import it from here, so they come last.
from inbox import admin_account_settings as _admin_account_settings  # noqa: E402,F401
from inbox import admin_accounts_lifecycle as _admin_accounts_lifecycle  # noqa: E402,F401
from inbox import admin_canned as _admin_canned  # noqa: E402,F401
from inbox import admin_consent as _admin_consent  # noqa: E402,F401
from inbox import admin_report_privacy as _admin_report_privacy  # noqa: E402,F401
from inbox import admin_retention as _admin_retention  # noqa: E402,F401
from inbox import admin_topics as _admin_topics  # noqa: E402,F401
from inbox import admin_users as _admin_users  # noqa: E402,F401
