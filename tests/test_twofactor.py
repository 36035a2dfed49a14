"""The second factor as users meet it: setting it up, logging in with a code or a recovery
code, who must have one, and the admin's and the command line's ways to manage it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pyotp
from flask.testing import FlaskClient, FlaskCliRunner
from sqlmodel import Session, select

from inbox import twofactor
from inbox.models import AuditEvent, Role, User
from tests.conftest import PASSWORD, TOTP_SECRETS, csrf_token, login, make_user, post_form

HOSTILE = "<script>alert(1)</script>"


def path_of(response: object) -> str:
    """The path a redirect points to."""
    return urlsplit(response.headers["Location"]).path  # type: ignore[attr-defined]


def flashes(body: str) -> list[str]:
    """The flash messages shown on a page."""
    return re.findall(r'<p class="flash (?:\w+)" role="status">(.*?)</p>', body, re.S)


def stored(session: Session, user: User) -> User:
    """The user as the database holds it now."""
    session.expire_all()
    found = session.get(User, user.id)
    assert found is not None
    return found


def events(session: Session, action: str) -> list[AuditEvent]:
    """Audit events with an action."""
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def shown_secret(page: str) -> str:
    """The key for manual entry on the enrolment page."""
    found = re.search(r'<code class="totp-secret">([A-Z2-7 ]+)</code>', page)
    assert found, "no secret on the enrolment page"
    return found.group(1).replace(" ", "")


def shown_codes(page: str) -> list[str]:
    """The recovery codes on the page that shows them once."""
    return re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", page)


def code_at(secret: str, when: datetime) -> str:
    """The authenticator app's code at a moment."""
    return pyotp.TOTP(secret).at(when)


def next_code(secret: str) -> str:
    """The code of the coming 30-second step: the current one went into confirming the set-up."""
    return code_at(secret, datetime.now(UTC) + timedelta(seconds=30))


def enrol(client: FlaskClient) -> tuple[str, list[str]]:
    """Set up the second factor through the pages; returns the secret and recovery codes."""
    page = client.get("/security/enrol").get_data(as_text=True)
    secret = shown_secret(page)
    response = post_form(
        client, "/security/enrol", "/security/enrol", {"code": pyotp.TOTP(secret).now()}
    )
    assert response.status_code == 200
    codes = shown_codes(response.get_data(as_text=True))
    return secret, codes


def password_step(client: FlaskClient, email: str) -> object:
    """Submit e-mail and password only."""
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})


def code_step(client: FlaskClient, code: str) -> object:
    """Submit a code on the second step's page."""
    return post_form(client, "/login/code", "/login/code", {"code": code})


# Setting it up -------------------------------------------------------------------------------


def test_enrolment_shows_a_server_made_qr_code_and_the_key(
    client: FlaskClient, session: Session
) -> None:
    agent = make_user(session, role=Role.agent, email="jana@example.com")
    login(client, agent.email)

    page = client.get("/security/enrol").get_data(as_text=True)

    svg = re.search(r"<svg[^>]*>.*?</svg>", page, re.S)
    assert svg is not None
    assert "style=" not in svg.group(0) and "<script" not in svg.group(0)
    secret = shown_secret(page)
    uri = twofactor.provisioning_uri(secret=secret, email=agent.email)
    assert uri.startswith("otpauth://totp/socialcare:jana%40example.com?secret=")
    assert "issuer=socialcare" in uri
    # Nothing is on until a code confirms it; the secret is stored encrypted meanwhile.
    user = stored(session, agent)
    assert user.totp_enabled_at is None
    assert user.totp_secret_encrypted is not None
    assert secret.encode() not in user.totp_secret_encrypted
    # Reloading the page shows the same key: a half-done set-up is not thrown away.
    again = client.get("/security/enrol").get_data(as_text=True)
    assert shown_secret(again) == secret


def test_a_confirmed_code_turns_it_on_and_shows_ten_recovery_codes_once(
    client: FlaskClient, session: Session
) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)

    _secret, codes = enrol(client)

    assert len(codes) == len(set(codes)) == 10
    user = stored(session, agent)
    assert user.totp_enabled_at is not None
    assert len(user.recovery_codes) == 10
    assert all(h.startswith("$argon2") for h in user.recovery_codes)
    assert not any(code.replace("-", "") in h for h in user.recovery_codes for code in codes)
    assert [e.user_id for e in events(session, "2fa_enabled")] == [agent.id]
    security = client.get("/security").get_data(as_text=True)
    assert not any(code in security for code in codes)
    assert "Recovery codes left: 10." in security


def test_a_wrong_code_does_not_turn_it_on(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)
    secret = shown_secret(client.get("/security/enrol").get_data(as_text=True))
    wrong = code_at(secret, datetime.now(UTC) - timedelta(minutes=5))

    response = post_form(client, "/security/enrol", "/security/enrol", {"code": wrong})

    assert "That code does not match." in response.get_data(as_text=True)
    assert stored(session, agent).totp_enabled_at is None


# Logging in with it -------------------------------------------------------------------------


def test_login_asks_for_a_code_before_anything_opens(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)
    secret, _codes = enrol(client)
    post_form(client, "/security", "/logout", {})

    response = password_step(client, agent.email)

    assert path_of(response) == "/login/code"
    assert path_of(client.get("/conversations")) == "/login"
    assert len(events(session, "login")) == 1  # the one before setting it up
    done = code_step(client, next_code(secret))
    assert path_of(done) == "/conversations"
    assert client.get("/conversations").status_code == 200
    assert events(session, "login")[-1].detail == {"second_factor": "totp"}


def test_a_code_works_only_once(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)
    secret, _codes = enrol(client)
    code = next_code(secret)
    post_form(client, "/security", "/logout", {})
    password_step(client, agent.email)
    code_step(client, code)
    post_form(client, "/conversations", "/logout", {})

    password_step(client, agent.email)
    replayed = code_step(client, code)

    assert replayed.status_code == 200
    assert "The code is wrong or was used already." in "".join(
        flashes(replayed.get_data(as_text=True))
    )
    assert path_of(client.get("/conversations")) == "/login"


def test_codes_from_the_neighbouring_steps_count_but_not_older_ones() -> None:
    secret = pyotp.random_base32()
    now = datetime(2026, 11, 23, 8, 0, 15, tzinfo=UTC)
    step = int(now.timestamp()) // 30

    def match(offset_seconds: int, after: int | None = None) -> int | None:
        code = code_at(secret, now + timedelta(seconds=offset_seconds))
        return twofactor.matching_step(secret=secret, code=code, now=now, after=after)

    assert match(0) == step
    assert match(-30) == step - 1
    assert match(30) == step + 1
    assert match(-90) is None
    assert match(0, after=step) is None
    assert match(30, after=step) == step + 1


def test_a_recovery_code_logs_in_once(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)
    _secret, codes = enrol(client)
    post_form(client, "/security", "/logout", {})

    password_step(client, agent.email)
    response = code_step(client, codes[3].upper().replace("-", " "))

    assert path_of(response) == "/conversations"
    page = client.get("/conversations").get_data(as_text=True)
    assert "You logged in with a recovery code. Recovery codes left: 9." in page
    assert len(stored(session, agent).recovery_codes) == 9
    post_form(client, "/conversations", "/logout", {})
    password_step(client, agent.email)
    assert code_step(client, codes[3]).status_code == 200
    assert path_of(client.get("/conversations")) == "/login"


def test_the_code_page_needs_the_password_first(client: FlaskClient) -> None:
    response = client.get("/login/code")

    assert path_of(response) == "/login"
    assert "Please log in again." in flashes(client.get("/login").get_data(as_text=True))


def test_a_pending_second_step_expires(client: FlaskClient, session: Session) -> None:
    admin = make_user(session, role=Role.admin)
    login(client, admin.email)  # stores the admin's second factor
    post_form(client, "/conversations", "/logout", {})
    password_step(client, admin.email)
    token = csrf_token(client, "/login/code")
    with client.session_transaction() as cookie:
        cookie["auth_pending"] = {**cookie["auth_pending"], "until": _now().timestamp() - 1}

    code = pyotp.TOTP(TOTP_SECRETS[admin.email]).now()
    response = client.post("/login/code", data={"code": code, "csrf_token": token})

    assert path_of(response) == "/login"
    assert path_of(client.get("/conversations")) == "/login"


# Who must have it ---------------------------------------------------------------------------


def test_an_admin_without_a_second_factor_can_only_set_one_up(
    client: FlaskClient, session: Session
) -> None:
    admin = make_user(session, role=Role.admin, two_factor=False)

    response = login(client, admin.email)

    assert path_of(response) == "/security/enrol"
    for page in ("/conversations", "/admin/accounts", "/security", "/reports", "/"):
        assert path_of(client.get(page)) == "/security/enrol", page
    assert client.get("/security/enrol").status_code == 200
    switched = post_form(client, "/security/enrol", "/language", {"lang": "de", "next": "/"})
    assert switched.status_code == 302
    enrol(client)
    assert client.get("/admin/accounts").status_code == 200
    assert post_form(client, "/security", "/logout", {}).status_code == 302


def test_a_dpo_must_have_a_second_factor_too(client: FlaskClient, session: Session) -> None:
    dpo = make_user(session, role=Role.dpo, two_factor=False)

    login(client, dpo.email)

    assert path_of(client.get("/")) == "/security/enrol"


def test_admin_can_require_it_for_everyone(client: FlaskClient, session: Session) -> None:
    admin = make_user(session, role=Role.admin, name="Ada Admin")
    agent = make_user(session, role=Role.agent, name=HOSTILE)
    login(client, admin.email)
    page = client.get("/admin/security").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE not in page

    response = post_form(client, "/admin/security", "/admin/security", {"require_all": "y"})

    assert response.status_code == 302
    assert twofactor.require_for_all(session=session)
    [changed] = events(session, "setting_changed")
    assert changed.user_id == admin.id
    assert changed.detail == {"key": "require_2fa_for_all", "old": False, "new": True}
    other = client.application.test_client()
    login(other, agent.email)
    assert path_of(other.get("/conversations")) == "/security/enrol"
    # Switching it off again lets the agent work without one.
    post_form(client, "/admin/security", "/admin/security", {})
    assert other.get("/conversations").status_code == 200


def test_only_admins_open_the_admin_security_page(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)

    assert client.get("/admin/security").status_code == 403
    assert (
        post_form(client, "/security", "/admin/security", {"require_all": "y"}).status_code == 403
    )
    assert not twofactor.require_for_all(session=session)


def test_others_see_a_hint_they_can_dismiss(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)
    hint = "Protect your account with a second factor"
    assert hint in client.get("/conversations").get_data(as_text=True)

    response = post_form(client, "/conversations", "/security/hint", {"next": "/conversations"})

    assert path_of(response) == "/conversations"
    assert hint not in client.get("/conversations").get_data(as_text=True)


# Changing it --------------------------------------------------------------------------------


def test_an_agent_can_turn_it_off_with_a_current_code(
    client: FlaskClient, session: Session
) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)
    secret, _codes = enrol(client)
    wrong = post_form(client, "/security", "/security/disable", {"code": "000000"})
    assert path_of(wrong) == "/security"
    assert stored(session, agent).totp_enabled_at is not None

    post_form(client, "/security", "/security/disable", {"code": pyotp.TOTP(secret).now()})

    user = stored(session, agent)
    assert user.totp_enabled_at is None and user.totp_secret_encrypted is None
    assert user.recovery_codes == []
    assert len(events(session, "2fa_disabled")) == 1


def test_an_admin_cannot_turn_it_off(client: FlaskClient, session: Session) -> None:
    admin = make_user(session, role=Role.admin)
    login(client, admin.email)
    page = client.get("/security").get_data(as_text=True)
    assert "Turn the second factor off" not in page

    code = pyotp.TOTP(TOTP_SECRETS[admin.email]).now()
    post_form(client, "/security", "/security/disable", {"code": code})

    assert stored(session, admin).totp_enabled_at is not None
    assert events(session, "2fa_disabled") == []


def test_new_recovery_codes_replace_the_old_ones(client: FlaskClient, session: Session) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)
    secret, old_codes = enrol(client)

    response = post_form(
        client, "/security", "/security/recovery-codes", {"code": pyotp.TOTP(secret).now()}
    )

    new_codes = shown_codes(response.get_data(as_text=True))
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    user = stored(session, agent)
    assert not twofactor.use_recovery_code(session=session, user=user, code=old_codes[0])
    assert twofactor.use_recovery_code(session=session, user=user, code=new_codes[0])


def test_setting_up_a_new_phone_keeps_the_old_one_until_confirmed(
    client: FlaskClient, session: Session
) -> None:
    admin = make_user(session, role=Role.admin)
    login(client, admin.email)
    old_secret = TOTP_SECRETS[admin.email]

    page = client.get("/security/enrol").get_data(as_text=True)
    new_secret = shown_secret(page)
    assert new_secret != old_secret
    assert "Your current one keeps working" in page
    user = stored(session, admin)
    assert twofactor.check_current_code(
        user=user, fernet=_fernet(client), code=pyotp.TOTP(old_secret).now(), now=_now()
    )

    post_form(client, "/security/enrol", "/security/enrol", {"code": pyotp.TOTP(new_secret).now()})

    user = stored(session, admin)
    assert twofactor.check_current_code(
        user=user, fernet=_fernet(client), code=pyotp.TOTP(new_secret).now(), now=_now()
    )
    assert events(session, "2fa_enabled")[-1].detail == {"again": True}


def _fernet(client: FlaskClient):  # type: ignore[no-untyped-def]
    from inbox.config import multi_fernet

    return multi_fernet(client.application.config["ENCRYPTION_KEYS"])


def _now() -> datetime:
    return datetime.now(UTC)


# The command line ---------------------------------------------------------------------------


def test_cli_reset_removes_the_second_factor_and_ends_sessions(
    client: FlaskClient, runner: FlaskCliRunner, session: Session
) -> None:
    admin = make_user(session, role=Role.admin, email="ada@example.com")
    login(client, admin.email)
    assert client.get("/admin/accounts").status_code == 200

    result = runner.invoke(args=["user", "reset-2fa", "--email", "ADA@example.com"])

    assert result.exit_code == 0, result.output
    user = stored(session, admin)
    assert user.totp_secret_encrypted is None and user.totp_enabled_at is None
    assert path_of(client.get("/admin/accounts")) == "/login"
    [reset] = events(session, "2fa_reset")
    assert reset.user_id is None and reset.target_id == admin.id
    # The next login goes straight to setting up a new one.
    TOTP_SECRETS.pop(admin.email)
    assert path_of(login(client, admin.email)) == "/security/enrol"


def test_cli_set_role_is_audited(runner: FlaskCliRunner, session: Session) -> None:
    agent = make_user(session, role=Role.agent, email="mia@example.com")

    result = runner.invoke(args=["user", "set-role", "--email", agent.email, "--role", "dpo"])

    assert result.exit_code == 0, result.output
    assert stored(session, agent).role == Role.dpo
    [changed] = events(session, "role_changed")
    assert changed.user_id is None and changed.target_id == agent.id
    assert changed.detail["old"] == "agent" and changed.detail["new"] == "dpo"


def test_cli_names_an_unknown_user(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["user", "reset-2fa", "--email", "nobody@example.com"])

    assert result.exit_code != 0
    assert "No user has the e-mail nobody@example.com" in result.output
