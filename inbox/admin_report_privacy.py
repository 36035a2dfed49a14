"""Admin page for the instance's report privacy defaults: k and epsilon."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from inbox import db
from inbox.admin import bp
from inbox.auth import audit_request, roles_required
from inbox.models import Role
from inbox.settings import (
    EPSILON_MAX,
    EPSILON_MIN,
    K_MAX,
    K_MIN,
    SettingsError,
    report_privacy,
    set_report_privacy,
)


def _page(k: str, epsilon: str) -> str:
    return render_template(
        "admin/report_privacy.html",
        k=k,
        epsilon=epsilon,
        limits={"k": (K_MIN, K_MAX), "epsilon": (EPSILON_MIN, EPSILON_MAX)},
    )


@bp.get("/report-privacy")
@roles_required(Role.admin)
def report_privacy_page() -> str:
    """The smallest group reports show (k) and the noise added to counts (epsilon)."""
    k, epsilon = report_privacy(session=db.session())
    return _page(str(k), "" if epsilon is None else str(epsilon))


@bp.post("/report-privacy")
@roles_required(Role.admin)
def report_privacy_save() -> Response | tuple[str, int]:
    """Save k and epsilon."""
    session = db.session()
    k, epsilon = request.form.get("k", ""), request.form.get("epsilon", "")
    try:
        changes = set_report_privacy(session=session, k=k, epsilon=epsilon)
    except SettingsError:
        session.rollback()
        flash(
            _(
                "k is a whole number from %(k_min)s to %(k_max)s; epsilon is empty or a number "
                "from %(e_min)s to %(e_max)s.",
                k_min=K_MIN,
                k_max=K_MAX,
                e_min=EPSILON_MIN,
                e_max=EPSILON_MAX,
            ),
            "error",
        )
        return _page(k, epsilon), 422
    if changes:
        audit_request(
            action="report_privacy_changed",
            target_type="setting",
            target_id=None,
            detail={"changes": changes},
        )
    session.commit()
    flash(_("Report privacy defaults saved."), "success")
    return redirect(url_for("admin.report_privacy_page"))
