"""Logging in (password, then the second factor), logging out, and the security pages: each
user's own second factor and sessions, and the admins' switch requiring two factors for all."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken, MultiFernet
from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlmodel import col, select
from werkzeug.wrappers import Response
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired

from inbox import db, twofactor
from inbox.auth import (
    HINT_HIDDEN,
    LOGIN_FAILED,
    PENDING,
    VERSION,
    audit_request,
    begin_second_step,
    bp,
    complete_login,
    end_session,
    fail_login,
    home_for,
    is_locked,
    pending_user,
    roles_required,
    safe_next,
)
from inbox.config import multi_fernet
from inbox.models import Role, User
from inbox.types import utcnow
from inbox.users import check_password, end_sessions

# A re-enrolment's new secret, encrypted, until its first code confirms it: the old factor
# keeps working meanwhile.
_REENROL = "auth_reenrol"
_ANY_ROLE = tuple(Role)


class LoginForm(FlaskForm):  # type: ignore[misc]
    """E-mail and password."""

    email = EmailField(_l("E-mail"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class CodeForm(FlaskForm):  # type: ignore[misc]
    """A code from the authenticator app (or, when logging in, a recovery code)."""

    code = StringField(_l("Code"), validators=[DataRequired()])


class RequireAllForm(FlaskForm):  # type: ignore[misc]
    """The admins' switch: a second factor for every user."""

    require_all = BooleanField(_l("Require a second factor for every user"))


def _fernet() -> MultiFernet:
    return multi_fernet(current_app.config["ENCRYPTION_KEYS"])


def _me() -> User:
    user = db.session().get(User, current_user.id)
    assert user is not None  # the user loader has just read it
    return user


@bp.get("/")
def index() -> Response:
    """Send each user to the start page of their role."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(home_for(current_user.role))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    """Log in with e-mail and password; users with a second factor go on to the code page."""
    form = LoginForm()
    target = safe_next(request.args.get("next"))
    if form.validate_on_submit():
        email = form.email.data
        user = check_password(session=db.session(), email=email, password=form.password.data)
        if user is not None and not is_locked(email):
            if twofactor.is_enabled(user):
                begin_second_step(user, target=target)
                return redirect(url_for("auth.login_code"))
            complete_login(user, method=None)
            if twofactor.is_required(session=db.session(), user=user):
                return redirect(url_for("auth.enrol"))
            return redirect(target or home_for(user.role))
        fail_login(email=email, step="password")
        flash(LOGIN_FAILED, "error")
    return render_template("auth/login.html", form=form, next=target)


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> Response | str:
    """The second step: a code from the authenticator app, or a recovery code."""
    user = pending_user()
    if user is None:
        session.pop(PENDING, None)
        flash(_("Please log in again."), "error")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        method: str | None = None
        if not is_locked(user.email):
            try:
                method = twofactor.verify(
                    session=db.session(),
                    user=user,
                    fernet=_fernet(),
                    code=form.code.data,
                    now=utcnow(),
                )
            except twofactor.TwoFactorError:
                current_app.logger.error("TOTP secret of user %s is unreadable", user.id)
        if method is not None:
            target = safe_next(session[PENDING].get("next"))
            complete_login(user, method=method)
            if method == "recovery_code":
                flash(
                    _(
                        "You logged in with a recovery code. Recovery codes left: %(count)s. "
                        "You can make new ones on your security page.",
                        count=len(user.recovery_codes),
                    ),
                    "message",
                )
            return redirect(target or home_for(user.role))
        assert user.id is not None
        if fail_login(email=user.email, step="code", user_id=user.id):
            session.pop(PENDING, None)
            flash(LOGIN_FAILED, "error")
            return redirect(url_for("auth.login"))
        flash(_("The code is wrong or was used already. Please wait for the next one."), "error")
    return render_template("auth/two_factor.html", form=form)


@bp.post("/logout")
def logout() -> Response:
    """Log out and go back to the login page."""
    end_session()
    return redirect(url_for("auth.login"))


@bp.get("/security")
@roles_required(*_ANY_ROLE)
def security() -> str:
    """The user's own second factor and sessions."""
    user = _me()
    return render_template(
        "auth/security.html",
        user=user,
        enabled=twofactor.is_enabled(user),
        required=twofactor.is_required(session=db.session(), user=user),
        form=CodeForm(),
    )


@bp.route("/security/enrol", methods=["GET", "POST"])
@roles_required(*_ANY_ROLE)
def enrol() -> Response | str:
    """Set up the authenticator app (again): QR code, then a code to confirm it."""
    dbs, user, fernet = db.session(), _me(), _fernet()
    reenrol = twofactor.is_enabled(user)
    if reenrol:
        secret = _held_secret(fernet) or twofactor.new_secret()
        session[_REENROL] = fernet.encrypt(secret.encode()).decode()
    else:
        secret = twofactor.pending_secret(session=dbs, user=user, fernet=fernet)
    form = CodeForm()
    if form.validate_on_submit():
        step = twofactor.matching_step(secret=secret, code=form.code.data, now=utcnow())
        if step is not None:
            codes = twofactor.enable(
                session=dbs, user=user, fernet=fernet, secret=secret, step=step
            )
            audit_request(
                action="2fa_enabled",
                target_type="user",
                target_id=user.id,
                detail={"again": reenrol},
            )
            dbs.commit()
            session.pop(_REENROL, None)
            return render_template("auth/recovery_codes.html", codes=codes)
        flash(_("That code does not match. Check the time on your phone and try again."), "error")
    uri = twofactor.provisioning_uri(secret=secret, email=user.email)
    return render_template(
        "auth/enrol.html",
        form=form,
        # Our own markup from segno: the e-mail inside the URI is encoded in the QR modules.
        qr=Markup(twofactor.qr_svg(uri)),  # noqa: S704
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        reenrol=reenrol,
        must_enrol=current_user.must_enrol,
    )


def _held_secret(fernet: MultiFernet) -> str | None:
    held = session.get(_REENROL)
    if not isinstance(held, str):
        return None
    try:
        return fernet.decrypt(held.encode()).decode()
    except InvalidToken:
        return None


def _confirmed_by_code(user: User) -> bool:
    # Changing the second factor takes a current code, so a borrowed session alone cannot.
    form = CodeForm()
    if form.validate_on_submit() and not is_locked(user.email):
        if twofactor.check_current_code(
            user=user, fernet=_fernet(), code=form.code.data, now=utcnow()
        ):
            return True
        assert user.id is not None
        fail_login(email=user.email, step="confirm", user_id=user.id)
    flash(_("That code does not match. Check the time on your phone and try again."), "error")
    return False


@bp.post("/security/recovery-codes")
@roles_required(*_ANY_ROLE)
def new_recovery_codes() -> Response | str:
    """Replace the recovery codes and show the new ones once."""
    user = _me()
    if not _confirmed_by_code(user):
        return redirect(url_for("auth.security"))
    codes = twofactor.new_recovery_codes(session=db.session(), user=user)
    audit_request(action="2fa_recovery_codes_renewed", target_type="user", target_id=user.id)
    db.session().commit()
    return render_template("auth/recovery_codes.html", codes=codes)


@bp.post("/security/disable")
@roles_required(*_ANY_ROLE)
def disable() -> Response:
    """Turn the second factor off, where the role and the instance allow it."""
    user = _me()
    if twofactor.is_required(session=db.session(), user=user):
        flash(_("Your account must keep a second factor. You can set up a new phone instead."))
        return redirect(url_for("auth.security"))
    if _confirmed_by_code(user):
        twofactor.disable(session=db.session(), user=user)
        audit_request(action="2fa_disabled", target_type="user", target_id=user.id)
        db.session().commit()
        flash(_("The second factor is off."), "success")
    return redirect(url_for("auth.security"))


@bp.post("/security/logout-everywhere")
@roles_required(*_ANY_ROLE)
def logout_everywhere() -> Response:
    """End every other session of the user; this browser stays logged in."""
    dbs, user = db.session(), _me()
    end_sessions(session=dbs, user=user)
    audit_request(action="logout_everywhere", target_type="user", target_id=user.id)
    dbs.commit()
    session[VERSION] = user.session_version
    flash(_("You are logged out on every other device and browser."), "success")
    return redirect(url_for("auth.security"))


@bp.post("/security/hint")
@roles_required(*_ANY_ROLE)
def hide_hint() -> Response:
    """Hide the second-factor hint for the rest of this session."""
    session[HINT_HIDDEN] = True
    return redirect(safe_next(request.form.get("next")) or url_for("auth.index"))


@bp.route("/admin/security", methods=["GET", "POST"])
@roles_required(Role.admin)
def admin_security() -> Response | str:
    """Require a second factor for every user, and see who has none yet."""
    dbs = db.session()
    current = twofactor.require_for_all(session=dbs)
    form = RequireAllForm(data={"require_all": current})
    if form.validate_on_submit():
        wanted = bool(form.require_all.data)
        if wanted != current:
            twofactor.set_require_for_all(session=dbs, value=wanted)
            audit_request(
                action="setting_changed",
                target_type="setting",
                target_id=None,
                detail={"key": twofactor.REQUIRE_ALL_SETTING, "old": current, "new": wanted},
            )
            dbs.commit()
        flash(_("Saved."), "success")
        return redirect(url_for("auth.admin_security"))
    without: list[Any] = list(
        dbs.exec(
            select(User)
            .where(col(User.active), col(User.totp_enabled_at).is_(None))
            .order_by(col(User.name), col(User.id))
        ).all()
    )
    return render_template(
        "admin/security.html", form=form, without=without, required_roles=twofactor.REQUIRED_ROLES
    )
