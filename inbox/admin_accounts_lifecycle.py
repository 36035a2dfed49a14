"""Admin pages to connect, reconnect and remove official accounts."""

from __future__ import annotations

import logging

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from connectors import ConnectorError
from inbox import db
from inbox.account_lifecycle import reconnect_account, removal_counts, remove_account
from inbox.accounts import PLATFORM_FIELDS, AlreadyConnected, connect_account
from inbox.admin import bp
from inbox.auth import audit_request, roles_required
from inbox.config import multi_fernet
from inbox.models import Account, Role
from inbox.settings import POLL_MAX, POLL_MIN, SLA_MAX, SLA_MIN, SettingsError, bounded_int

log = logging.getLogger(__name__)


def _account(account_id: int) -> Account:
    account = db.session().get(Account, account_id)
    if account is None:
        abort(404)
    return account


def _platform(name: str) -> str:
    if name not in PLATFORM_FIELDS:
        abort(400)
    return name


def _form_page(platform: str, account: Account | None, error: str | None = None) -> str:
    secrets, settings = PLATFORM_FIELDS[platform]
    # Settings the admin typed come back; credentials never do.
    values = {
        name: request.form.get(name, str(account.settings.get(name, "")) if account else "")
        for name in settings
    }
    return render_template(
        "admin/account_connect.html",
        platform=platform,
        account=account,
        secrets=secrets,
        settings=settings,
        values=values,
        error=error,
        poll=request.form.get("poll_interval_seconds", "60"),
        sla=request.form.get("sla_minutes", "30"),
        limits={"poll": (POLL_MIN, POLL_MAX), "sla": (SLA_MIN, SLA_MAX)},
    )


def _credentials(platform: str) -> dict[str, str] | None:
    """The credential fields of the form, or None if one is empty."""
    found = {name: request.form.get(name, "").strip() for name in PLATFORM_FIELDS[platform][0]}
    return None if any(not value for value in found.values()) else found


def _scrubbed(message: str, credentials: dict[str, str]) -> str:
    """The connector's error without any of the credentials in it."""
    for value in credentials.values():
        if value:
            message = message.replace(value, "***")
    return message


@bp.route("/accounts/connect", methods=["GET", "POST"])
@roles_required(Role.admin)
def account_connect() -> Response | str | tuple[str, int]:
    """Connect an official account: choose the platform, then enter its credentials and
    settings; the platform is asked whose credentials these are."""
    if request.method == "GET":
        chosen = request.args.get("platform", "")
        if chosen not in PLATFORM_FIELDS:
            return render_template("admin/account_platforms.html", platforms=list(PLATFORM_FIELDS))
        return _form_page(chosen, None)
    platform = _platform(request.form.get("platform", ""))
    session = db.session()
    credentials = _credentials(platform)
    if credentials is None:
        return _form_page(platform, None, _("Fill in every credential.")), 422
    try:
        poll = bounded_int(
            "poll", request.form.get("poll_interval_seconds", ""), POLL_MIN, POLL_MAX
        )
        sla = bounded_int("sla", request.form.get("sla_minutes", ""), SLA_MIN, SLA_MAX)
    except SettingsError:
        error = _("Polling interval or SLA target is out of range.")
        return _form_page(platform, None, error), 422
    settings = {name: request.form.get(name, "").strip() for name in PLATFORM_FIELDS[platform][1]}
    try:
        account = connect_account(
            session=session,
            fernet=multi_fernet(current_app.config["ENCRYPTION_KEYS"]),
            platform=platform,
            credentials=credentials,
            settings=settings,
            sla_minutes=sla,
            poll_interval_seconds=poll,
            only_new=True,
        )
    except AlreadyConnected as exc:
        session.rollback()
        error = _(
            "%(name)s is connected already. To give it new credentials, use “Reconnect” on the"
            " accounts page; its settings stay as they are.",
            name=exc.account.display_name,
        )
        return _form_page(platform, None, error), 409
    except ConnectorError as exc:
        session.rollback()
        message = _scrubbed(str(exc), credentials)
        return _form_page(platform, None, _("Not connected: %(error)s", error=message)), 422
    audit_request(
        action="account_connected",
        target_type="account",
        target_id=account.id,
        detail={"platform": platform, "via": "admin"},
    )
    session.commit()
    flash(_("%(name)s is connected.", name=account.display_name), "success")
    return redirect(url_for("admin.accounts"))


@bp.route("/accounts/<int:account_id>/reconnect", methods=["GET", "POST"])
@roles_required(Role.admin)
def account_reconnect(account_id: int) -> Response | str | tuple[str, int]:
    """Give an account new credentials (a revoked or expired token); polling resumes."""
    account = _account(account_id)
    platform = _platform(account.platform)
    if request.method == "GET":
        return _form_page(platform, account)
    session = db.session()
    credentials = _credentials(platform)
    if credentials is None:
        return _form_page(platform, account, _("Fill in every credential.")), 422
    settings = {name: request.form.get(name, "").strip() for name in PLATFORM_FIELDS[platform][1]}
    try:
        reconnect_account(
            session=session,
            fernet=multi_fernet(current_app.config["ENCRYPTION_KEYS"]),
            account=account,
            credentials=credentials,
            settings=settings,
        )
    except ConnectorError as exc:
        session.rollback()
        message = _scrubbed(str(exc), credentials)
        page = _form_page(platform, account, _("Not reconnected: %(error)s", error=message))
        return page, 422
    audit_request(
        action="account_reconnected",
        target_type="account",
        target_id=account_id,
        detail={"platform": platform},
    )
    session.commit()
    flash(_("%(name)s is reconnected; polling resumes.", name=account.display_name), "success")
    return redirect(url_for("admin.accounts"))


@bp.route("/accounts/<int:account_id>/remove", methods=["GET", "POST"])
@roles_required(Role.admin)
def account_remove(account_id: int) -> Response | str | tuple[str, int]:
    """Remove an account and its data, after a confirmation that says what will go."""
    session = db.session()
    account = _account(account_id)
    if request.method == "GET" or request.form.get("confirm", "") != account.display_name:
        counts = removal_counts(session=session, account_id=account_id)
        page = render_template("admin/account_remove.html", account=account, counts=counts)
        if request.method == "POST":
            flash(_("Type the account’s name exactly to remove it."), "error")
            return page, 422
        return page
    platform = account.platform
    counts = remove_account(session=session, account=account)
    audit_request(
        action="account_removed",
        target_type="account",
        target_id=account_id,
        detail={"platform": platform, **counts.detail()},
    )
    session.commit()
    flash(_("The account and its data are removed."), "success")
    return redirect(url_for("admin.accounts"))
