"""Admin pages for users: invite, role, account memberships, second factor, (de)activation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlmodel import Session, col, func, select
from werkzeug.wrappers import Response

from inbox import db, twofactor
from inbox.admin import bp
from inbox.auth import audit_request, roles_required
from inbox.canned import CannedError, remove_member, set_member
from inbox.models import Account, Role, User
from inbox.users import UserError, create_user, end_sessions, generate_password, set_role
from inbox.workflow_models import AccountMember

ROLE_LABELS = {
    Role.agent: _l("Agent"),
    Role.marketing: _l("Marketing"),
    Role.admin: _l("Admin"),
    Role.dpo: _l("Data-protection officer"),
}
# Roles that answer customers on accounts; other roles hold no memberships.
ANSWERING = (Role.agent, Role.admin)


@dataclass(frozen=True, slots=True)
class UserRow:
    """One line of the user list."""

    id: int
    name: str
    email: str
    role: Role
    active: bool
    has_2fa: bool
    last_login_at: datetime | None
    accounts: list[str]


def _rows(session: Session) -> list[UserRow]:
    names = {a.id: a.display_name for a in session.exec(select(Account)).all()}
    by_user: dict[int, list[str]] = {}
    for m in session.exec(select(AccountMember)).all():
        by_user.setdefault(m.user_id, []).append(names.get(m.account_id, ""))
    users = session.exec(select(User).order_by(col(User.name), col(User.id))).all()
    return [
        UserRow(
            id=u.id or 0,
            name=u.name,
            email=u.email,
            role=u.role,
            active=u.active,
            has_2fa=twofactor.is_enabled(u),
            last_login_at=u.last_login_at,
            accounts=sorted(by_user.get(u.id or 0, [])),
        )
        for u in users
    ]


def _is_last_admin(session: Session, user: User) -> bool:
    """Whether the user is the only active admin: the instance would have no one to run it."""
    if user.role != Role.admin or not user.active:
        return False
    others = select(func.count()).where(
        col(User.role) == Role.admin, col(User.active), col(User.id) != user.id
    )
    return session.exec(others).one() == 0


def _user(user_id: int) -> User:
    user = db.session().get(User, user_id)
    if user is None:
        abort(404)
    return user


def _accounts(session: Session) -> list[Account]:
    return list(session.exec(select(Account).order_by(col(Account.display_name))).all())


@bp.get("/users")
@roles_required(Role.admin)
def users() -> str:
    """Every user with role, state, second factor, last login and accounts."""
    session = db.session()
    return render_template("admin/users.html", users=_rows(session), roles=ROLE_LABELS)


@bp.route("/users/invite", methods=["GET", "POST"])
@roles_required(Role.admin)
def user_invite() -> Response | str | tuple[str, int]:
    """Create a user with a random password that the admin sees once and passes on."""
    if request.method == "GET":
        return render_template("admin/users_invite.html", roles=ROLE_LABELS, entered={})
    session = db.session()
    form = request.form
    name, email = form.get("name", "").strip(), form.get("email", "").strip()
    try:
        role = Role(form.get("role", ""))
    except ValueError:
        role = None
    error = None
    if not name or len(name) > 200:
        error = _("Give a name of at most 200 characters.")
    elif "@" not in email or len(email) > 320:
        error = _("Give a valid e-mail address.")
    elif role is None:
        error = _("Choose a role.")
    password = generate_password()
    if error is None and role is not None:
        try:
            user = create_user(
                session=session, email=email, name=name, role=role, password=password
            )
            # The admin has seen this password: the user chooses their own at first login.
            user.password_change_required = True
        except UserError:
            session.rollback()
            error = _("A user with this e-mail address exists already.")
    if error is not None or role is None:
        flash(error or "", "error")
        entered = {"name": name, "email": email, "role": form.get("role", "")}
        page = render_template("admin/users_invite.html", roles=ROLE_LABELS, entered=entered)
        return page, 422
    audit_request(
        action="user_created",
        target_type="user",
        target_id=user.id,
        detail={"role": role.value, "via": "admin"},
    )
    session.commit()
    # Shown on this response only: not in the session, not in a redirect, not cached.
    response = make_response(
        render_template("admin/users_created.html", user=user, password=password)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/users/<int:user_id>")
@roles_required(Role.admin)
def user_edit(user_id: int) -> str:
    """One user: role, memberships, second factor and whether they can log in."""
    session = db.session()
    user = _user(user_id)
    member_of = set(
        session.exec(select(AccountMember.account_id).where(AccountMember.user_id == user_id)).all()
    )
    return render_template(
        "admin/users_edit.html",
        user=user,
        roles=ROLE_LABELS,
        accounts=_accounts(session),
        member_of=member_of,
        answering=user.role in ANSWERING,
        has_2fa=twofactor.is_enabled(user),
        last_admin=_is_last_admin(session, user),
    )


def _back(user_id: int) -> Response:
    return redirect(url_for("admin.user_edit", user_id=user_id))


@bp.post("/users/<int:user_id>/role")
@roles_required(Role.admin)
def user_role(user_id: int) -> Response:
    """Give a user another role; the last active admin keeps theirs."""
    session = db.session()
    user = _user(user_id)
    try:
        role = Role(request.form.get("role", ""))
    except ValueError:
        abort(400)
    if role == user.role:
        return _back(user_id)
    if _is_last_admin(session, user):
        flash(_("The last active admin cannot get another role."), "error")
        return _back(user_id)
    old = set_role(session=session, user=user, role=role)
    removed = []
    if role not in ANSWERING:
        # Marketing and the dpo never answer customers: their memberships would only mislead.
        for account_id in session.exec(
            select(AccountMember.account_id).where(AccountMember.user_id == user_id)
        ).all():
            remove_member(session=session, account_id=account_id, user_id=user_id)
            removed.append(account_id)
    audit_request(
        action="role_changed",
        target_type="user",
        target_id=user_id,
        detail={"old": old.value, "new": role.value, "memberships_removed": removed},
    )
    session.commit()
    flash(_("%(name)s is now %(role)s.", name=user.name, role=ROLE_LABELS[role]), "success")
    return _back(user_id)


@bp.post("/users/<int:user_id>/accounts")
@roles_required(Role.admin)
def user_accounts(user_id: int) -> Response:
    """Set which accounts the user answers on (signatures of kept memberships stay)."""
    session = db.session()
    user = _user(user_id)
    wanted = {int(v) for v in request.form.getlist("account_id") if v.isdigit()}
    have = set(
        session.exec(select(AccountMember.account_id).where(AccountMember.user_id == user_id)).all()
    )
    known = {a.id for a in _accounts(session)}
    added, removed = sorted((wanted & known) - have), sorted(have - wanted)
    try:
        for account_id in added:
            set_member(session=session, account_id=account_id, user_id=user_id, signature="")
    except CannedError:
        session.rollback()
        flash(_("Only agents and admins can answer on an account."), "error")
        return _back(user_id)
    for account_id in removed:
        remove_member(session=session, account_id=account_id, user_id=user_id)
    if added or removed:
        audit_request(
            action="user_accounts_changed",
            target_type="user",
            target_id=user_id,
            detail={"added": added, "removed": removed},
        )
        session.commit()
    flash(_("Accounts of %(name)s saved.", name=user.name), "success")
    return _back(user_id)


@bp.post("/users/<int:user_id>/reset-2fa")
@roles_required(Role.admin)
def user_reset_2fa(user_id: int) -> Response:
    """Remove a user's second factor (lost phone and codes) and end their sessions."""
    session = db.session()
    user = _user(user_id)
    twofactor.disable(session=session, user=user)
    end_sessions(session=session, user=user)
    audit_request(
        action="2fa_reset", target_type="user", target_id=user_id, detail={"via": "admin"}
    )
    session.commit()
    flash(
        _("The second factor of %(name)s is removed; they are logged out.", name=user.name),
        "success",
    )
    return _back(user_id)


@bp.post("/users/<int:user_id>/active")
@roles_required(Role.admin)
def user_active(user_id: int) -> Response:
    """Deactivate a user (their sessions end at once) or let them log in again."""
    session = db.session()
    user = _user(user_id)
    active = request.form.get("active") == "1"
    if active == user.active:
        return _back(user_id)
    if not active and _is_last_admin(session, user):
        flash(_("The last active admin cannot be deactivated."), "error")
        return _back(user_id)
    user.active = active
    session.add(user)
    if not active:
        end_sessions(session=session, user=user)
    audit_request(
        action="user_reactivated" if active else "user_deactivated",
        target_type="user",
        target_id=user_id,
    )
    session.commit()
    if active:
        flash(_("%(name)s can log in again.", name=user.name), "success")
    else:
        flash(_("%(name)s is deactivated and logged out.", name=user.name), "success")
    return _back(user_id)
