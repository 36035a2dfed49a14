"""`socialcare check`: one line per finding, never a secret, non-zero exit on problems."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, MultiFernet
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from inbox import create_app, migrate
from inbox.db import databases
from inbox.heartbeat import beat
from inbox.models import Account, AccountStatus
from inbox.ops_check import masked_url
from inbox.types import utcnow
from tests.conftest import DatabaseUrls, app_config


@pytest.fixture
def apps() -> Iterator[list[Flask]]:
    """Apps a test builds; their engines are closed afterwards."""
    built: list[Flask] = []
    yield built
    for app in built:
        databases(app).inbox.dispose()
        databases(app).research.dispose()


def _app(
    apps: list[Flask],
    urls: DatabaseUrls,
    tmp_path: Path,
    *,
    migrate_to: tuple[str, str] | None = ("head", "head"),
    **overrides: Any,
) -> Flask:
    app = create_app(app_config(urls, tmp_path, **overrides))
    apps.append(app)
    if migrate_to:
        migrate.upgrade(databases(app).inbox, "inbox", migrate_to[0])
        migrate.upgrade(databases(app).research, "research", migrate_to[1])
    return app


def _check(app: Flask) -> tuple[int, list[str]]:
    result = app.test_cli_runner().invoke(args=["check"])
    return result.exit_code, result.output.splitlines()


def _account(session: Session, fernet: MultiFernet, ref: str, **fields: Any) -> Account:
    account = Account(
        platform="demo",
        display_name=f"Quendelmarkt {ref}",
        platform_account_id=ref,
        handle=ref,
        credentials_encrypted=fernet.encrypt(b'{"token": "demo-token"}'),
        **fields,
    )
    session.add(account)
    session.commit()
    return account


def _with_password(url: str, password: str) -> str:
    """The URL with a password (PostgreSQL here trusts local connections, so it is ignored)."""
    if url.startswith("sqlite"):
        return url
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def test_a_healthy_installation_reports_ok_and_no_secret(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    keys = [Fernet.generate_key().decode() for _ in range(2)]
    secret = "s" * 48
    app = _app(
        apps,
        database_urls,
        tmp_path,
        SECRET_KEY=secret,
        ENCRYPTION_KEYS=",".join(keys),
        DATABASE_URL=_with_password(database_urls.inbox, "db-pass-inbox"),
        RESEARCH_DATABASE_URL=_with_password(database_urls.research, "db-pass-research"),
        METRICS_TOKEN="m" * 32,
        PROXY_HOPS=1,
        FORWARDED_ALLOW_IPS="10.0.0.5",
    )
    fernet = MultiFernet([Fernet(key) for key in keys])
    now = utcnow()
    with Session(databases(app).inbox, expire_on_commit=False) as session:
        _account(session, fernet, "active")
        _account(session, fernet, "paused", status=AccountStatus.paused)
        _account(session, fernet, "limited", rate_limited_until=now + timedelta(minutes=14))
        beat(session=session, owner="web-1:1", now=now - timedelta(seconds=20))
        beat(session=session, owner="web-2:2", now=now - timedelta(seconds=5))

    code, lines = _check(app)

    output = "\n".join(lines)
    assert code == 0, output
    assert "ok       secret key: set" in lines
    assert "ok       encryption keys: 2 encryption keys, newest first" in lines
    assert "ok       inbox database: reachable" in lines
    assert "ok       inbox database: migrations at head" in lines
    assert "ok       research database: migrations at head" in lines
    assert "ok       stored secrets: all 3 account credentials open" in lines
    assert "ok       accounts: 1 active" in lines
    assert "ok       accounts: 1 paused" in lines
    until = (now + timedelta(minutes=14)).isoformat(timespec="seconds")
    assert f"warning  accounts: 1 rate-limited until {until} at the latest" in lines
    assert any(line.startswith("ok       workers: 2 workers alive, last beat ") for line in lines)
    assert "ok       metrics: token set" in lines
    assert (
        "ok       proxy hops: 1: X-Forwarded-* trusted from 1 proxy, accepted from 10.0.0.5"
    ) in lines
    assert lines[-1].startswith("0 problem(s)")
    for leaked in (*keys, secret, "m" * 32, "db-pass-inbox", "db-pass-research"):
        assert leaked not in output
    if database_urls.backend == "postgresql":
        assert any(
            line.startswith("ok       inbox database: postgresql+psycopg://postgres:***@")
            for line in lines
        )


def test_placeholder_secret_and_broken_keys_are_problems(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    # TESTING lets the app start with them; production refuses before the report (see below).
    app = _app(
        apps, database_urls, tmp_path, SECRET_KEY="change-me", ENCRYPTION_KEYS="not-a-fernet-key"
    )

    code, lines = _check(app)

    assert code == 1
    assert "problem  secret key: missing or a placeholder" in lines
    assert "problem  encryption keys: missing, or not all valid Fernet keys" in lines
    assert "not-a-fernet-key" not in "\n".join(lines)


def test_pending_migrations_are_a_problem_and_accounts_are_not_read(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    app = _app(apps, database_urls, tmp_path, migrate_to=("0008_inbox", "0002_research"))

    code, lines = _check(app)

    assert code == 1
    assert any(
        line.startswith("problem  inbox database: ")
        and "migration(s) pending (0009_inbox … " in line
        and line.endswith("run `socialcare db upgrade`")
        for line in lines
    ), lines
    assert any(
        line.startswith("problem  research database: ")
        and "migration(s) pending (0003_research … " in line
        for line in lines
    ), lines
    assert "warning  accounts and workers: not checked: fix the inbox database" in lines


def test_an_unreachable_research_store_is_a_problem_without_its_address(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    if database_urls.backend == "sqlite":
        broken = f"sqlite:///{tmp_path / 'missing-folder' / 'research.db'}"
    else:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        broken = f"postgresql+psycopg://probe:pw-9f2k@127.0.0.1:{port}/research"
    app = _app(apps, database_urls, tmp_path, migrate_to=None, RESEARCH_DATABASE_URL=broken)
    migrate.upgrade(databases(app).inbox, "inbox")

    code, lines = _check(app)

    assert code == 1
    assert "problem  research database: unreachable (OperationalError)" in lines
    assert "pw-9f2k" not in "\n".join(lines)


def test_no_worker_alive_is_a_problem(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    app = _app(
        apps,
        database_urls,
        tmp_path,
        WORKER_HEARTBEAT_MAX_AGE_SECONDS=90,
        PROXY_HOPS=1,
        FORWARDED_ALLOW_IPS="*",
    )

    code, lines = _check(app)
    assert code == 1
    assert (
        "warning  proxy hops: 1, and forwarding headers are taken from any peer: set "
        "SOCIALCARE_FORWARDED_ALLOW_IPS to the proxies' addresses"
    ) in lines
    assert "problem  workers: none ever ran: start `socialcare worker`" in lines
    assert "warning  accounts: none connected yet" in lines

    with Session(databases(app).inbox) as session:
        beat(session=session, owner="w:1", now=utcnow() - timedelta(seconds=300))
    code, lines = _check(app)
    assert code == 1
    assert any(
        line.startswith("problem  workers: none alive; the last beat was 30") for line in lines
    )


def test_accounts_that_need_reconnection_are_a_warning(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    app = _app(apps, database_urls, tmp_path)
    fernet = MultiFernet([Fernet(app.config["ENCRYPTION_KEYS"])])
    with Session(databases(app).inbox) as session:
        for ref in ("x-1", "x-2"):
            _account(session, fernet, ref, status=AccountStatus.needs_reconnection)
        beat(session=session, owner="w:1")

    code, lines = _check(app)

    assert code == 0
    assert "warning  accounts: 2 needs reconnection: an admin must reconnect them" in lines


def test_masked_url_hides_only_the_password() -> None:
    assert (
        masked_url("postgresql+psycopg://care:Sup3r$ecret@db.internal:5432/socialcare")
        == "postgresql+psycopg://care:***@db.internal:5432/socialcare"
    )
    assert masked_url("sqlite:////srv/socialcare/inbox.db") == "sqlite:////srv/socialcare/inbox.db"


def test_a_database_newer_than_this_release_is_a_warning(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    app = _app(apps, database_urls, tmp_path)
    with databases(app).research.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_next_release'"))

    _, lines = _check(app)

    assert (
        "warning  research database: newer than this release: finish upgrading the software "
        "on this machine"
    ) in lines


def test_stored_secrets_under_an_old_key_or_a_missing_key(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    old, new, other = (Fernet.generate_key().decode() for _ in range(3))
    app = _app(apps, database_urls, tmp_path, ENCRYPTION_KEYS=old)
    with Session(databases(app).inbox) as session:
        _account(session, MultiFernet([Fernet(old)]), "under-old")
        _account(session, MultiFernet([Fernet(new)]), "under-new")
        beat(session=session, owner="w:1")

    rotated = _app(apps, database_urls, tmp_path, migrate_to=None, ENCRYPTION_KEYS=f"{new},{old}")
    code, lines = _check(rotated)
    assert code == 0
    assert (
        "warning  stored secrets: 1 of 2 account credentials are under an older key: "
        "run `socialcare rotate-keys`"
    ) in lines

    missing = _app(apps, database_urls, tmp_path, migrate_to=None, ENCRYPTION_KEYS=f"{other},{new}")
    code, lines = _check(missing)
    assert code == 1
    assert (
        "problem  stored secrets: 1 of 2 account credentials cannot be opened with the "
        "configured keys: a key is missing from SOCIALCARE_ENCRYPTION_KEYS"
    ) in lines
    for key in (old, new, other):
        assert key not in "\n".join(lines)
