"""Admin page for one account's settings: polling, SLA, research policy for DMs, the
anonymizer's ID patterns (with a check against a sample text) and the Messenger tag."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from inbox import db
from inbox.admin import bp
from inbox.auth import audit_request, roles_required
from inbox.models import Account, Role
from inbox.settings import (
    HUMAN_AGENT_PLATFORMS,
    PATTERN_MAX,
    PATTERNS_MAX,
    POLL_MAX,
    POLL_MIN,
    SLA_MAX,
    SLA_MIN,
    SettingsError,
    check_patterns,
    parse_patterns,
    update_account_settings,
)

ERRORS = {
    "poll_interval_seconds": _l(
        "The polling interval is a whole number of seconds from %(min)s to %(max)s.",
        min=POLL_MIN,
        max=POLL_MAX,
    ),
    "sla_minutes": _l(
        "The SLA target is a whole number of minutes from %(min)s to %(max)s.",
        min=SLA_MIN,
        max=SLA_MAX,
    ),
    "id_patterns_count": _l("At most %(count)s ID patterns.", count=PATTERNS_MAX),
    "id_pattern_long": _l("An ID pattern has at most %(count)s characters.", count=PATTERN_MAX),
    "id_pattern_invalid": _l("This ID pattern is not a valid regular expression:"),
    "id_pattern_empty": _l("This ID pattern matches empty text, so it would match everywhere:"),
    "id_pattern_nested": _l(
        "This ID pattern repeats a repetition, which can take very long on some texts:"
    ),
}


def _account(account_id: int) -> Account:
    account = db.session().get(Account, account_id)
    if account is None:
        abort(404)
    return account


def _page(account: Account, entered: dict[str, str] | None = None, **extra: object) -> str:
    current = {
        "poll_interval_seconds": str(account.poll_interval_seconds),
        "sla_minutes": str(account.sla_minutes),
        "research_dms": "1" if account.research_dms else "",
        "id_patterns": "\n".join(str(p) for p in account.settings.get("id_patterns", [])),
        "human_agent_enabled": "1"
        if account.settings.get("human_agent_enabled", False) is True
        else "",
        "sample": "",
    }
    return render_template(
        "admin/account_settings.html",
        account=account,
        values={**current, **(entered or {})},
        human_agent=account.platform in HUMAN_AGENT_PLATFORMS,
        limits={"poll": (POLL_MIN, POLL_MAX), "sla": (SLA_MIN, SLA_MAX)},
        **extra,
    )


def _entered() -> dict[str, str]:
    names = ("poll_interval_seconds", "sla_minutes", "research_dms", "id_patterns")
    entered = {name: request.form.get(name, "") for name in names}
    entered["human_agent_enabled"] = request.form.get("human_agent_enabled", "")
    entered["sample"] = request.form.get("sample", "")
    return entered


def _error(exc: SettingsError) -> str:
    message = str(ERRORS[exc.field])
    return (
        f"{message} {exc.value}" if exc.field.startswith("id_pattern_") and exc.value else message
    )


@bp.get("/accounts/<int:account_id>/settings")
@roles_required(Role.admin)
def account_settings(account_id: int) -> str:
    """One account's settings."""
    return _page(_account(account_id))


@bp.post("/accounts/<int:account_id>/settings")
@roles_required(Role.admin)
def account_settings_save(account_id: int) -> Response | tuple[str, int]:
    """Save one account's settings, or (the check button) test the ID patterns on a sample."""
    session = db.session()
    account = _account(account_id)
    entered = _entered()
    if request.form.get("action") == "check":
        try:
            patterns = parse_patterns(entered["id_patterns"])
        except SettingsError as exc:
            flash(_error(exc), "error")
            return _page(account, entered), 422
        checks = check_patterns(patterns=patterns, sample=entered["sample"])
        return _page(account, entered, checks=checks), 200
    try:
        changes = update_account_settings(session=session, account=account, form=entered)
    except SettingsError as exc:
        session.rollback()
        flash(_error(exc), "error")
        return _page(account, entered), 422
    if changes:
        audit_request(
            action="account_settings_changed",
            target_type="account",
            target_id=account_id,
            detail={"changes": changes},
        )
        session.commit()
    flash(_("Settings of %(name)s saved.", name=account.display_name), "success")
    return redirect(url_for("admin.account_settings", account_id=account_id))
