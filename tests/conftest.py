"""Fixtures: a fresh pair of databases per test, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from cryptography.fernet import Fernet, MultiFernet
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel, col, select

import inbox
from anonymizer.store import metadata as research_metadata
from connectors import Author, InboundItem
from inbox import create_app
from inbox.accounts import connect_account
from inbox.db import databases
from inbox.models import Account, AuditEvent, Direction, Message, Role, User
from inbox.users import create_user

PG_URL = os.environ.get("SOCIALCARE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
PASSWORD = "correct horse battery"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run PostgreSQL-only tests (real concurrent writers) on PostgreSQL alone."""
    dropped = [
        item
        for item in items
        if item.get_closest_marker("postgres_only") and "[postgresql" not in item.nodeid
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@dataclass(frozen=True)
class DatabaseUrls:
    """Where one test's inbox database and research store live."""

    backend: str
    inbox: str
    research: str


def _schema_url(base: str, schema: str) -> str:
    url = make_url(base)
    return url.set(query={**url.query, "options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(params=BACKENDS)
def database_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseUrls]:
    """Empty databases for one test: SQLite files, or two fresh PostgreSQL schemas."""
    if request.param == "sqlite":
        yield DatabaseUrls(
            "sqlite", f"sqlite:///{tmp_path / 'inbox.db'}", f"sqlite:///{tmp_path / 'research.db'}"
        )
        return
    suffix = uuid.uuid4().hex[:12]
    schemas = (f"t_{suffix}_inbox", f"t_{suffix}_research")
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for schema in schemas:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield DatabaseUrls(
            "postgresql", _schema_url(PG_URL, schemas[0]), _schema_url(PG_URL, schemas[1])
        )
    finally:
        with admin.connect() as connection:
            for schema in schemas:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def backend(database_urls: DatabaseUrls) -> str:
    """The database backend this test runs on."""
    return database_urls.backend


def app_config(urls: DatabaseUrls, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """The configuration a test app runs with."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": urls.inbox,
        "RESEARCH_DATABASE_URL": urls.research,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        **overrides,
    }


@pytest.fixture
def app(database_urls: DatabaseUrls, tmp_path: Path) -> Iterator[Flask]:
    """An app on fresh databases with all tables created."""
    application = create_app(app_config(database_urls, tmp_path))
    dbs = databases(application)
    SQLModel.metadata.create_all(dbs.inbox)
    research_metadata.create_all(dbs.research)
    yield application
    dbs.inbox.dispose()
    dbs.research.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser-like test client."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """Runs the app's CLI commands."""
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session on the inbox database."""
    with Session(databases(app).inbox, expire_on_commit=False) as opened:
        yield opened


@pytest.fixture
def research(app: Flask) -> Iterator[Session]:
    """A session on the research store."""
    with Session(databases(app).research, expire_on_commit=False) as opened:
        yield opened


@pytest.fixture
def fernet(app: Flask) -> MultiFernet:
    """The app's credential cipher."""
    return MultiFernet([Fernet(app.config["ENCRYPTION_KEYS"])])


# Factories ---------------------------------------------------------------------------------


# Admins and data-protection officers must have a second factor. make_user gives them one
# (or anyone, with two_factor=True) from a secret kept here; login() stores it, encrypted with
# the test app's keys, before the first login, and answers the code step with it.
TOTP_SECRETS: dict[str, str] = {}
_TOTP_UNSTORED: set[str] = set()


def make_user(
    session: Session,
    *,
    role: Role = Role.agent,
    email: str | None = None,
    name: str = "Jana Schneider",
    password: str = PASSWORD,
    two_factor: bool | None = None,
) -> User:
    """A user who can log in with PASSWORD; admins and dpos have a second factor by default."""
    user = create_user(
        session=session,
        email=email or f"{role.value}-{uuid.uuid4().hex[:6]}@example.com",
        name=name,
        role=role,
        password=password,
    )
    TOTP_SECRETS.pop(user.email, None)
    _TOTP_UNSTORED.discard(user.email)
    if two_factor if two_factor is not None else role in (Role.admin, Role.dpo):
        TOTP_SECRETS[user.email] = pyotp.random_base32()
        _TOTP_UNSTORED.add(user.email)
    return user


def make_account(session: Session, fernet: MultiFernet, **settings: Any) -> Account:
    """A connected demo account; settings go to the demo connector."""
    return connect_account(
        session=session,
        fernet=fernet,
        platform="demo",
        credentials={"token": "demo-token"},
        settings=settings,
    )


def make_item(**overrides: Any) -> InboundItem:
    """An inbound DM; keyword overrides replace any field."""
    fields: dict[str, Any] = {
        "platform": "demo",
        "account_ref": "demo-quendelmarkt",
        "external_id": f"dm-{uuid.uuid4().hex[:10]}",
        "kind": "dm",
        "author": Author(platform_user_id="7001", handle="jodoe", display_name="Jo Doe"),
        "text": "Hallo, wo bleibt mein Paket?",
        "created_at": datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
        "thread_key": "dm-7001",
        "raw": {"id": "raw"},
    }
    fields.update(overrides)
    return InboundItem(**fields)


def worker_process(
    config: dict[str, Any], *, preexec_fn: Callable[[], Any] | None = None
) -> subprocess.Popen[str]:
    """Start `socialcare worker` as its own process, configured through the environment."""
    env = {**os.environ, **{f"SOCIALCARE_{key}": str(value) for key, value in config.items()}}
    env.pop("SOCIALCARE_TESTING", None)  # the worker must pass the production start-up checks
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("socialcare")), "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=preexec_fn,  # noqa: PLW1509  (only a signal disposition, before exec)
    )


# Browser-like helpers ----------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form on a page, as a browser would submit it."""
    page = client.get(path).get_data(as_text=True)
    found = _CSRF.search(page) or re.search(r'value="([^"]+)" name="csrf_token"', page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    """Log in through the login form, answering the second step for users made by make_user."""
    from inbox.config import multi_fernet

    key = email.strip().lower()
    with Session(databases(client.application).inbox) as session:
        user = session.exec(select(User).where(User.email == key)).first()
        if user is not None and key in TOTP_SECRETS:
            if key in _TOTP_UNSTORED:
                _TOTP_UNSTORED.discard(key)
                keys = multi_fernet(client.application.config["ENCRYPTION_KEYS"])
                user.totp_secret_encrypted = keys.encrypt(TOTP_SECRETS[key].encode())
                user.totp_enabled_at = datetime.now(UTC)
            # Tests log one user in many times within a 30-second step; people cannot.
            user.totp_last_step = None
            session.add(user)
            session.commit()
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    asks_code = response.status_code == 302 and response.headers["Location"].startswith(
        "/login/code"
    )
    if asks_code and key in TOTP_SECRETS:
        token = csrf_token(client, "/login/code")
        code = pyotp.TOTP(TOTP_SECRETS[key]).now()
        response = client.post("/login/code", data={"code": code, "csrf_token": token})
    return response


def post_form(client: FlaskClient, page: str, action: str, data: dict[str, str]) -> Any:
    """Submit a form found on `page` to `action`, with the page's CSRF token."""
    return client.post(action, data={**data, "csrf_token": csrf_token(client, page)})


# Shared by the agent tests: each module defines its own `agent` (name and role vary).
@pytest.fixture
def account(session: Session, fernet: MultiFernet) -> Account:
    """The offline demo account, connected."""
    return make_account(session, fernet)


def make_member(session: Session, user: User, account: Account, signature: str = "") -> None:
    """Make an agent a member of an account: they see and answer its conversations."""
    from inbox.workflow_models import AccountMember

    assert user.id is not None and account.id is not None
    # Merged: a test that set up the membership itself (with a signature) keeps it.
    if session.get(AccountMember, (account.id, user.id)) is None:
        session.add(AccountMember(account_id=account.id, user_id=user.id, signature=signature))
        session.commit()


@pytest.fixture
def agent_client(
    client: FlaskClient, agent: User, session: Session, request: pytest.FixtureRequest
) -> FlaskClient:
    """A browser in which the module's `agent` is logged in, a member of the test's `account`
    when the test has one."""
    if "account" in request.fixturenames and agent.role == Role.agent:
        make_member(session, agent, request.getfixturevalue("account"))
    assert login(client, agent.email).status_code == 302
    return client


def fresh(session: Session) -> Session:
    """The test's session with nothing cached, so reads show what the app committed."""
    session.commit()
    session.expire_all()
    return session


def audit_events(session: Session, action: str) -> list[AuditEvent]:
    """The audit events with this action, oldest first, as the database holds them now."""
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))
    return list(fresh(session).exec(query).all())


def outbound_messages(session: Session) -> list[Message]:
    """Every outbound message, oldest first, as the database holds them now."""
    query = select(Message).where(Message.direction == Direction.outbound).order_by(col(Message.id))
    return list(fresh(session).exec(query).all())


def load_migration(name: str) -> Any:
    """One inbox migration module by its file name, to test its upgrade and downgrade."""
    path = Path(inbox.__file__).parent / "migrations/inbox/versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return migration


def login_admin(client: FlaskClient, session: Session) -> None:
    """Log a new admin in on this client."""
    login(client, make_user(session, role=Role.admin, name="Alex Admin").email)
