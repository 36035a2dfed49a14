"""The user's own password: changed on the security page, and required after an invitation.

An invited user's first password was shown to an admin; until they choose their own, every
page but this one (and logging out) sends them here.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from inbox import db
from inbox.auth import VERSION, audit_request, bp, home_for, roles_required
from inbox.models import Role, User
from inbox.users import MIN_PASSWORD_LENGTH, UserError, change_password

PROBLEMS = {
    "current": _l("The current password is wrong."),
    "short": _l("The new password needs at least %(n)s characters.", n=MIN_PASSWORD_LENGTH),
    "repeat": _l("The two new passwords differ."),
    "same": _l("The new password must differ from the current one."),
    "email": _l("The new password must not contain your e-mail address."),
}


@bp.route("/security/password", methods=["GET", "POST"])
@roles_required(*tuple(Role))
def change_password_view() -> Response | str | tuple[str, int]:
    """Choose a new password: the current one, then the new one twice."""
    dbs = db.session()
    user = dbs.get(User, current_user.id)
    assert user is not None
    required = user.password_change_required
    if request.method == "GET":
        return render_template("auth/password.html", required=required, minimum=MIN_PASSWORD_LENGTH)
    form = request.form
    try:
        change_password(
            session=dbs,
            user=user,
            current=form.get("current", ""),
            new=form.get("new", ""),
            repeat=form.get("repeat", ""),
        )
    except UserError as problem:
        dbs.rollback()
        flash(str(PROBLEMS[str(problem)]), "error")
        page = render_template("auth/password.html", required=required, minimum=MIN_PASSWORD_LENGTH)
        return page, 422
    audit_request(
        action="password_changed",
        target_type="user",
        target_id=user.id,
        detail={"required": required},
    )
    dbs.commit()
    # Other sessions ended with the change; this one goes on under the new version.
    session[VERSION] = user.session_version
    flash(_("Your password is changed. Other sessions of yours have ended."), "success")
    if required:
        return redirect(home_for(user.role))
    return redirect(url_for("auth.security"))
