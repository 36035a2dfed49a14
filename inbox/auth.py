"""Sessions, roles, the login steps' bookkeeping and CSRF protection; the views are in
`inbox.auth_views`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from inbox import audit, db, settings, throttle, twofactor
from inbox.accounts import SessionFacts, user_and_accounts
from inbox.models import Role, User
from inbox.types import utcnow
from inbox.users import mark_logged_in

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()

F = TypeVar("F", bound=Callable[..., Any])

# The same words for every failed login, whatever went wrong: nothing tells an attacker whether
# the e-mail exists, the password was right or the address is locked.
LOGIN_FAILED = _l("E-mail or password is wrong, or too many attempts — try again in a few minutes.")
# Keys of our own in the signed session cookie.
VERSION, STARTED, SEEN, PENDING, HINT_HIDDEN, WROTE = (
    "auth_version",
    "auth_started",
    "auth_seen",
    "auth_pending",
    "auth_hint_hidden",
    "auth_wrote",
)
SEEN_GRANULARITY_SECONDS = 30
# What survives logging in and out: the chosen language.
_KEPT = ("lang",)
# Pages a user who must set up a second factor may still open.
_OPEN_WHILE_ENROLLING = frozenset({"auth.enrol", "auth.logout", "i18n.switch_language", "static"})
# Pages a user who must choose their own password may still open.
_OPEN_WHILE_CHANGING = frozenset(
    {"auth.change_password_view", "auth.logout", "i18n.switch_language", "static"}
)


class SessionUser(UserMixin):  # type: ignore[misc]
    """The logged-in user as Flask-Login sees it: only id, name and role live in memory."""

    def __init__(self, user: User | SessionFacts, *, must_enrol: bool = False) -> None:
        assert user.id is not None
        self.id = user.id
        self.name = user.name
        self.role = user.role
        self.has_2fa = twofactor.is_enabled(user)
        # Two factors are required but none is set up: only the enrolment page opens.
        self.must_enrol = must_enrol
        # Invited with a password an admin has seen: only the password page opens.
        self.must_change_password = user.password_change_required

    def get_id(self) -> str:
        """Flask-Login's key of the user in the session cookie."""
        return str(self.id)


@login_manager.user_loader  # type: ignore[untyped-decorator]
def _load_user(user_id: str) -> SessionUser | None:
    dbs = db.session()
    user, accounts = user_and_accounts(session=dbs, user_id=int(user_id))
    if user is None or not user.active or session.get(VERSION) != user.session_version:
        return None
    # They came along in the same query; inbox.agent.visible_account_ids reads them from here.
    g.visible_accounts = accounts
    # twofactor.is_required, with the instance-wide setting read through the per-process cache
    # (seconds old at most, see inbox.settings): this runs on every request.
    must_enrol = not twofactor.is_enabled(user) and (
        user.role in twofactor.REQUIRED_ROLES
        or bool(settings.cached_setting(session=dbs, key=twofactor.REQUIRE_ALL_SETTING))
    )
    return SessionUser(user, must_enrol=must_enrol)


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
    *,
    action: str,
    target_type: str,
    target_id: int | None,
    detail: dict[str, Any] | None = None,
    contact_id: int | None = None,
) -> None:
    """Audit what the logged-in user does in this request; it commits with the request's work."""
    audit.record(
        session=db.session(),
        action=action,
        user_id=current_user.id,
        target_type=target_type,
        target_id=target_id,
        contact_id=contact_id,
        ip=request.remote_addr,
        detail=detail,
    )


def home_for(role: Role) -> str:
    """Where each role starts."""
    if role == Role.marketing:
        return url_for("reports.index")
    if role == Role.dpo:
        return url_for("privacy.find")
    return url_for("agent.conversations")


def safe_next(target: str | None) -> str | None:
    """A local path to go on to, or None: the parameter must not become an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def throttle_policy() -> throttle.Policy:
    """The login throttling limits of this app's configuration."""
    config = current_app.config
    return throttle.Policy(
        email_limit=int(config["LOGIN_EMAIL_MAX_FAILURES"]),
        ip_limit=int(config["LOGIN_IP_MAX_FAILURES"]),
        window=timedelta(minutes=float(config["LOGIN_WINDOW_MINUTES"])),
        lockout=timedelta(minutes=float(config["LOGIN_LOCKOUT_MINUTES"])),
    )


def is_locked(email: str) -> bool:
    """Whether logins for this e-mail address or from this client are locked out now."""
    return throttle.is_locked(
        session=db.session(), email=email, ip=request.remote_addr, now=utcnow()
    )


def fail_login(*, email: str, step: str, user_id: int | None = None) -> bool:
    """Count and audit a failed login step (no e-mail in the trail); True once locked out."""
    dbs = db.session()
    dbs.rollback()  # nothing of the failed attempt is kept but the count and the audit
    failure = throttle.record_failure(
        session=dbs, email=email, ip=request.remote_addr, policy=throttle_policy(), now=utcnow()
    )
    events: list[tuple[str, dict[str, Any]]] = [("login_failed", {"step": step})]
    if failure.locked_now:
        events.append(("login_locked", {"scopes": list(failure.locked_now)}))
    for action, detail in events:
        audit.record(
            session=dbs,
            action=action,
            user_id=None,
            target_type="user" if user_id is not None else None,
            target_id=user_id,
            ip=request.remote_addr,
            detail=detail,
        )
    dbs.commit()
    return bool(failure.locked_now) or is_locked(email)


def complete_login(user: User, *, method: str | None) -> None:
    """Log the user in on a fresh session, note and audit it, and forget earlier failures."""
    dbs = db.session()
    throttle.clear(session=dbs, email=user.email)
    mark_logged_in(session=dbs, user=user)
    audit.record(
        session=dbs,
        action="login",
        user_id=user.id,
        ip=request.remote_addr,
        detail={"second_factor": method} if method else None,
    )
    dbs.commit()
    start_session(user)


def begin_second_step(user: User, *, target: str | None) -> None:
    """Remember, for a few minutes, whose password was right; nobody is logged in yet."""
    end_session()  # a new login starts clean, even if someone was logged in here
    session[PENDING] = {
        "user": user.id,
        "version": user.session_version,
        "until": utcnow().timestamp() + float(current_app.config["LOGIN_CODE_MINUTES"]) * 60,
        "next": target,
    }


def pending_user() -> User | None:
    """The user whose password was right a moment ago and who still owes the second factor."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or float(pending.get("until") or 0) < utcnow().timestamp():
        return None
    user = db.session().get(User, int(pending.get("user") or 0))
    if user is None or not user.active or user.session_version != pending.get("version"):
        return None
    return user


def start_session(user: User) -> None:
    """Replace whatever the session held by a new login (no fixation), keeping the language."""
    kept = {key: session[key] for key in _KEPT if key in session}
    session.clear()
    session.update(kept)
    login_user(SessionUser(user))
    now = utcnow().timestamp()
    session[VERSION] = user.session_version
    session[STARTED] = now
    session[SEEN] = now


def end_session() -> None:
    """Log out and drop everything of the session but the language."""
    logout_user()
    kept = {key: session[key] for key in _KEPT if key in session}
    session.clear()
    session.update(kept)


def _is_background() -> bool:
    # The list refresh and idle presence beats run on their own in an open tab: they must not
    # keep a forgotten session alive. A beat that says the agent is typing is activity.
    if request.endpoint == "agent.conversation_rows":
        return True
    return request.endpoint == "agent.presence" and request.form.get("typing") != "1"


def _guard_session() -> Response | tuple[str, int] | None:
    if request.endpoint == "static" or "_user_id" not in session:
        return None
    config = current_app.config
    now = utcnow().timestamp()
    seen, started = session.get(SEEN), session.get(STARTED)
    if (
        not isinstance(seen, int | float)
        or not isinstance(started, int | float)
        or now - seen > float(config["SESSION_IDLE_MINUTES"]) * 60
        or now - started > float(config["SESSION_MAX_HOURS"]) * 3600
    ):
        end_session()
        flash(_l("Your session has ended. Please log in again."), "error")
        if _is_background():
            return "", 401  # nothing a script would paste into the page
        if request.method != "GET":
            return redirect(url_for("auth.login"))
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    # Activity is noted to the half minute: the cookie is then re-signed and sent again twice a
    # minute at most, not on every request (the idle limit counts in minutes).
    if not _is_background() and now - seen >= SEEN_GRANULARITY_SECONDS:
        session[SEEN] = now
    if current_user.is_authenticated and current_user.must_enrol:
        if request.endpoint not in _OPEN_WHILE_ENROLLING:
            return redirect(url_for("auth.enrol"))
    if current_user.is_authenticated and current_user.must_change_password:
        if request.endpoint not in _OPEN_WHILE_CHANGING:
            if _is_background():
                return "", 401
            return redirect(url_for("auth.change_password_view"))
    return None


def _note_write(response: Response) -> Response:
    """Note in the session when the user last changed something (a form sent and accepted):
    pages that may show what others see a moment late show this user their own change at once
    (see inbox.agent.conversation_list). Background beats do not count, nor logging in or out
    or choosing a language, which change nothing others see."""
    if (
        request.method in ("POST", "PUT", "PATCH", "DELETE")
        and response.status_code < 400
        and "_user_id" in session
        and request.blueprint not in ("auth", "i18n")
        and not _is_background()
    ):
        session[WROTE] = utcnow().timestamp()
    return response


def wrote_within(seconds: float) -> bool:
    """Whether this user sent a change in the last `seconds`."""
    wrote = session.get(WROTE)
    return isinstance(wrote, int | float) and utcnow().timestamp() - wrote < seconds


def _template_globals() -> dict[str, Any]:
    show = (
        current_user.is_authenticated
        and not current_user.has_2fa
        and not current_user.must_enrol
        and not session.get(HINT_HIDDEN)
        and request.endpoint not in ("auth.enrol", "auth.security")
    )
    return {"two_factor_hint": show}


def init_app(app: Flask) -> None:
    """Wire Flask-Login, CSRF protection, the session guard and the auth views into the app."""
    from inbox import auth_views, password_views  # noqa: F401  (add the views to the blueprint)

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to continue.")
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    # After CSRF protection: a forged request is refused before it can touch the session.
    app.before_request(_guard_session)
    app.after_request(_note_write)
    app.context_processor(_template_globals)
    app.register_blueprint(bp)
    for code in (400, 403, 404):
        app.register_error_handler(code, _error_page)


def _error_page(error: HTTPException) -> tuple[str, int]:
    code = error.code or 500
    return render_template("errors/error.html", code=code), code
