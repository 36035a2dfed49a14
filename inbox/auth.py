"""Login, logout, roles and CSRF protection."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from inbox import audit, db
from inbox.models import Role, User
from inbox.users import authenticate

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()

F = TypeVar("F", bound=Callable[..., Any])


class SessionUser(UserMixin):  # type: ignore[misc]
    """The logged-in user as Flask-Login sees it: only id, name and role live in memory."""

    def __init__(self, user: User) -> None:
        assert user.id is not None
        self.id = user.id
        self.name = user.name
        self.role = user.role

    def get_id(self) -> str:
        """Flask-Login's key of the user in the session cookie."""
        return str(self.id)


class LoginForm(FlaskForm):  # type: ignore[misc]
    """E-mail and password."""

    email = EmailField(_l("E-mail"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


@login_manager.user_loader  # type: ignore[untyped-decorator]
def _load_user(user_id: str) -> SessionUser | None:
    user = db.session().get(User, int(user_id))
    return SessionUser(user) if user is not None and user.active else None


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Let only logged-in users with one of these roles through; others get 403."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate


def audit_request(
    *, action: str, target_type: str, target_id: int | None, detail: dict[str, Any] | None = None
) -> None:
    """Audit what the logged-in user does in this request; it commits with the request's work."""
    audit.record(
        session=db.session(),
        action=action,
        user_id=current_user.id,
        target_type=target_type,
        target_id=target_id,
        ip=request.remote_addr,
        detail=detail,
    )


def home_for(role: Role) -> str:
    """Where each role starts."""
    return url_for("reports.index") if role == Role.marketing else url_for("agent.conversations")


@bp.get("/")
def index() -> Response:
    """Send each user to the start page of their role."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(home_for(current_user.role))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    """Log in with e-mail and password."""
    form = LoginForm()
    if form.validate_on_submit():
        session = db.session()
        user = authenticate(session=session, email=form.email.data, password=form.password.data)
        audit.record(
            session=session,
            action="login" if user else "login_failed",
            user_id=user.id if user else None,
            ip=request.remote_addr,
        )
        session.commit()
        if user is not None:
            login_user(SessionUser(user))
            return redirect(home_for(user.role))
        flash(_l("E-mail or password is wrong."), "error")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
def logout() -> Response:
    """Log out and go back to the login page."""
    logout_user()
    return redirect(url_for("auth.login"))


def init_app(app: Flask) -> None:
    """Wire Flask-Login, CSRF protection and the auth views into the app."""
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to continue.")
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    app.register_blueprint(bp)
    for code in (400, 403, 404):
        app.register_error_handler(code, _error_page)


def _error_page(error: HTTPException) -> tuple[str, int]:
    code = error.code or 500
    return render_template("errors/error.html", code=code), code
