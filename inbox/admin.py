"""Admins' pages: the official accounts and what the worker does with them."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlmodel import col, func, select
from werkzeug.wrappers import Response

from inbox import audit, db
from inbox.accounts import set_status
from inbox.auth import roles_required
from inbox.models import Account, AccountStatus, PollRun, Role
from inbox.types import utcnow

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/accounts")
@roles_required(Role.admin)
def accounts() -> str:
    """Every official account with its polling state, waits and last error."""
    session = db.session()
    rows = session.exec(select(Account).order_by(col(Account.id))).all()
    latest = select(func.max(PollRun.id)).group_by(col(PollRun.account_id))
    last_runs = {
        run.account_id: run
        for run in session.exec(select(PollRun).where(col(PollRun.id).in_(latest))).all()
    }
    return render_template("admin/accounts.html", accounts=rows, runs=last_runs, now=utcnow())


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
    audit.record(
        session=session,
        action=f"account_{status.value}",
        user_id=current_user.id,
        target_type="account",
        target_id=account_id,
        ip=request.remote_addr,
    )
    session.commit()
    if status == AccountStatus.paused:
        flash(_("Polling paused for %(name)s.", name=account.display_name), "success")
    else:
        flash(_("Polling resumed for %(name)s.", name=account.display_name), "success")
    return redirect(url_for("admin.accounts"))
