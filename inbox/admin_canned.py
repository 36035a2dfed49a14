"""Admin pages for canned replies and for agents' memberships and signatures per account."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlmodel import col, select
from werkzeug.wrappers import Response

from inbox import db
from inbox.admin import bp
from inbox.auth import audit_request, roles_required
from inbox.canned import (
    PLACEHOLDERS,
    CannedError,
    all_canned,
    members,
    remove_member,
    save_canned,
    set_member,
)
from inbox.models import Account, Role
from inbox.users import active_agents
from inbox.workflow_models import CannedReply

FIELD_ERRORS = {
    "account": _l("Choose an existing account."),
    "language": _l("The language must be empty or a two- or three-letter code such as de."),
    "title": _l("Give the canned reply a title of at most 120 characters."),
    "text": _l("The canned reply needs a text."),
    "signature": _l("A signature has at most 16 characters."),
    "user": _l("Only agents and admins can answer on an account."),
}


def _accounts() -> list[Account]:
    return list(db.session().exec(select(Account).order_by(col(Account.display_name))).all())


def _canned(canned_id: int) -> CannedReply:
    reply = db.session().get(CannedReply, canned_id)
    if reply is None:
        abort(404)
    return reply


@bp.get("/canned")
@roles_required(Role.admin)
def canned_list() -> str:
    """Every canned reply with its account and language."""
    names = {a.id: a.display_name for a in _accounts()}
    return render_template(
        "admin/canned.html", replies=all_canned(session=db.session()), names=names
    )


@bp.route("/canned/new", methods=["GET", "POST"])
@roles_required(Role.admin)
def canned_new() -> Response | str | tuple[str, int]:
    """Write a new canned reply."""
    return _canned_form(None)


@bp.route("/canned/<int:canned_id>/edit", methods=["GET", "POST"])
@roles_required(Role.admin)
def canned_edit(canned_id: int) -> Response | str | tuple[str, int]:
    """Change a canned reply."""
    return _canned_form(_canned(canned_id))


def _canned_form(reply: CannedReply | None) -> Response | str | tuple[str, int]:
    form = request.form
    if request.method == "GET":
        return render_template(
            "admin/canned_form.html", reply=reply, accounts=_accounts(), placeholders=PLACEHOLDERS
        )
    session = db.session()
    account = form.get("account_id", "")
    try:
        saved = save_canned(
            session=session,
            reply=reply,
            account_id=int(account) if account.isdigit() else None,
            language=form.get("language", ""),
            title=form.get("title", ""),
            text=form.get("text", ""),
        )
    except CannedError as exc:
        session.rollback()
        flash(str(FIELD_ERRORS[exc.field]), "error")
        page = render_template(
            "admin/canned_form.html",
            reply=reply,
            accounts=_accounts(),
            placeholders=PLACEHOLDERS,
            entered=form,
        )
        return page, 422
    audit_request(
        action="canned_reply_updated" if reply else "canned_reply_created",
        target_type="canned_reply",
        target_id=saved.id,
        detail={"title": saved.title},
    )
    session.commit()
    flash(_("Canned reply “%(title)s” saved.", title=saved.title), "success")
    return redirect(url_for("admin.canned_list"))


@bp.post("/canned/<int:canned_id>/delete")
@roles_required(Role.admin)
def canned_delete(canned_id: int) -> Response:
    """Delete a canned reply."""
    session = db.session()
    reply = _canned(canned_id)
    title = reply.title
    session.delete(reply)
    audit_request(
        action="canned_reply_deleted",
        target_type="canned_reply",
        target_id=canned_id,
        detail={"title": title},
    )
    session.commit()
    flash(_("Canned reply “%(title)s” deleted.", title=title), "success")
    return redirect(url_for("admin.canned_list"))


@bp.get("/members")
@roles_required(Role.admin)
def account_members() -> str:
    """Who answers on which account, and with which signature."""
    session = db.session()
    by_account: dict[int, list[object]] = {}
    for member in members(session=session):
        by_account.setdefault(member.account_id, []).append(member)
    return render_template(
        "admin/members.html",
        accounts=_accounts(),
        members=by_account,
        users=active_agents(session=session),
    )


def _member_form() -> tuple[int, int]:
    """The account and user a membership form is about, or a 400."""
    account_id = request.form.get("account_id", type=int)
    user_id = request.form.get("user_id", type=int)
    if account_id is None or user_id is None:
        abort(400)
    return account_id, user_id


@bp.post("/members")
@roles_required(Role.admin)
def member_save() -> Response:
    """Add an agent to an account, or change their signature there."""
    session = db.session()
    account_id, user_id = _member_form()
    try:
        set_member(
            session=session,
            account_id=account_id,
            user_id=user_id,
            signature=request.form.get("signature", ""),
        )
    except CannedError as exc:
        session.rollback()
        flash(str(FIELD_ERRORS[exc.field]), "error")
        return redirect(url_for("admin.account_members"))
    audit_request(
        action="account_member_saved",
        target_type="account",
        target_id=account_id,
        detail={"user_id": user_id},
    )
    session.commit()
    flash(_("Membership saved."), "success")
    return redirect(url_for("admin.account_members"))


@bp.post("/members/remove")
@roles_required(Role.admin)
def member_remove() -> Response:
    """Take an agent off an account."""
    session = db.session()
    account_id, user_id = _member_form()
    if remove_member(session=session, account_id=account_id, user_id=user_id):
        audit_request(
            action="account_member_removed",
            target_type="account",
            target_id=account_id,
            detail={"user_id": user_id},
        )
        session.commit()
        flash(_("Membership removed."), "success")
    return redirect(url_for("admin.account_members"))
