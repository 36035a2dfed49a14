"""Health probes: /healthz answers while the process does; /readyz says which dependency fails."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, text
from sqlmodel import Session, select

from inbox import create_app, health, migrate
from inbox.db import databases
from inbox.heartbeat import beat
from inbox.models import AuditEvent, Role
from inbox.types import utcnow
from tests.conftest import DatabaseUrls, app_config, login, make_user

ALL_OK = {"inbox": "ok", "research": "ok", "migrations": "ok", "worker": "ok"}


@pytest.fixture
def apps() -> Iterator[list[Flask]]:
    """Apps a test builds; their engines are closed afterwards."""
    built: list[Flask] = []
    yield built
    for app in built:
        databases(app).inbox.dispose()
        databases(app).research.dispose()


def _app(apps: list[Flask], urls: DatabaseUrls, tmp_path: Path, **overrides: Any) -> Flask:
    app = create_app(app_config(urls, tmp_path, **overrides))
    apps.append(app)
    return app


def _migrated_app(
    apps: list[Flask],
    urls: DatabaseUrls,
    tmp_path: Path,
    *,
    inbox_revision: str = "head",
    research_revision: str = "head",
    **overrides: Any,
) -> Flask:
    app = _app(apps, urls, tmp_path, **overrides)
    dbs = databases(app)
    migrate.upgrade(dbs.inbox, "inbox", inbox_revision)
    migrate.upgrade(dbs.research, "research", research_revision)
    return app


@pytest.fixture
def ready_app(apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path) -> Flask:
    """An app on migrated databases with a worker that beat just now."""
    app = _migrated_app(apps, database_urls, tmp_path)
    with Session(databases(app).inbox) as session:
        beat(session=session, owner="worker-1:4242")
    return app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unreachable_url(backend: str, tmp_path: Path) -> str:
    """A database URL that cannot be opened: a file in a missing folder, or a closed port."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-folder' / 'research.db'}"
    return f"postgresql+psycopg://probe:s3cret-pw@127.0.0.1:{_closed_port()}/research"


def test_healthz_answers_ok_without_a_cookie(ready_app: Flask) -> None:
    response = ready_app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.get_data(as_text=True) == "ok\n"
    assert "Set-Cookie" not in response.headers


def test_readyz_is_200_when_databases_migrations_and_worker_are_fine(ready_app: Flask) -> None:
    response = ready_app.test_client().get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == ALL_OK
    assert "Set-Cookie" not in response.headers


def test_probes_neither_touch_a_logged_in_session_nor_write_audit_events(
    ready_app: Flask,
) -> None:
    client = ready_app.test_client()
    with Session(databases(ready_app).inbox, expire_on_commit=False) as session:
        agent = make_user(session, role=Role.agent)
    assert login(client, agent.email).status_code == 302
    with Session(databases(ready_app).inbox) as session:
        events_before = session.exec(select(func.count()).select_from(AuditEvent)).one()

    for path in ("/healthz", "/readyz", "/healthz"):
        response = client.get(path)
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers

    with Session(databases(ready_app).inbox) as session:
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == events_before
    # The session itself still works for the pages.
    assert client.get("/conversations").status_code == 200


def test_readyz_names_the_unreachable_research_store_and_no_url(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    app = _migrated_app(apps, database_urls, tmp_path)
    with Session(databases(app).inbox) as session:
        beat(session=session, owner="worker-1:1")
    broken_url = _unreachable_url(database_urls.backend, tmp_path)
    app = _app(apps, database_urls, tmp_path, RESEARCH_DATABASE_URL=broken_url)

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json() == {
        "inbox": "ok",
        "research": "unreachable",
        "migrations": "unknown",
        "worker": "ok",
    }
    body = response.get_data(as_text=True)
    for secret in ("s3cret", "127.0.0.1", "no-such-folder", "sqlite", "postgres"):
        assert secret not in body


def test_readyz_names_the_unreachable_inbox_database(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    _migrated_app(apps, database_urls, tmp_path)
    broken_url = _unreachable_url(database_urls.backend, tmp_path)
    app = _app(apps, database_urls, tmp_path, DATABASE_URL=broken_url)

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json() == {
        "inbox": "unreachable",
        "research": "ok",
        "migrations": "unknown",
        "worker": "unknown",
    }
    # The process itself is fine: a balancer must not restart it for a database outage.
    assert app.test_client().get("/healthz").status_code == 200


def test_readyz_says_migrations_are_pending_until_the_upgrade(
    apps: list[Flask],
    database_urls: DatabaseUrls,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _migrated_app(apps, database_urls, tmp_path, research_revision="0003_research")
    with Session(databases(app).inbox) as session:
        beat(session=session, owner="worker-1:1")
    client = app.test_client()

    first = client.get("/readyz")
    assert first.status_code == 503
    assert first.get_json() == {**ALL_OK, "migrations": "pending"}

    migrate.upgrade(databases(app).research, "research")
    # Cached for a few seconds: probes stay cheap.
    assert client.get("/readyz").get_json()["migrations"] == "pending"
    monkeypatch.setattr(health, "MIGRATIONS_CACHE_SECONDS", 0.0)
    after = client.get("/readyz")
    assert after.status_code == 200
    assert after.get_json() == ALL_OK


def test_readyz_notices_an_inbox_database_behind_head(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    app = _migrated_app(apps, database_urls, tmp_path, inbox_revision="0009_inbox")

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    # Before 0010 there is no heartbeat table at all: the worker state cannot be known.
    assert response.get_json() == {**ALL_OK, "migrations": "pending", "worker": "unknown"}


def test_readyz_without_any_worker_heartbeat(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    app = _migrated_app(apps, database_urls, tmp_path)

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json() == {**ALL_OK, "worker": "none"}


def test_readyz_with_a_heartbeat_older_than_the_limit(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    app = _migrated_app(apps, database_urls, tmp_path, WORKER_HEARTBEAT_MAX_AGE_SECONDS=60)
    with Session(databases(app).inbox) as session:
        beat(session=session, owner="worker-1:1", now=utcnow() - timedelta(seconds=61))
    client: FlaskClient = app.test_client()

    stale = client.get("/readyz")
    assert stale.status_code == 503
    assert stale.get_json() == {**ALL_OK, "worker": "stale"}

    with Session(databases(app).inbox) as session:
        beat(session=session, owner="worker-2:2", now=utcnow() - timedelta(seconds=30))
    assert client.get("/readyz").status_code == 200


def test_readyz_stays_ready_while_a_newer_release_has_migrated_the_database(
    apps: list[Flask], database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    # Rolling upgrade: `socialcare db upgrade` of the next release ran, this node still has
    # the old code. It must not drop out of the balancer before its restart.
    app = _migrated_app(apps, database_urls, tmp_path)
    with Session(databases(app).inbox) as session:
        beat(session=session, owner="worker-1:1")
    with databases(app).inbox.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_next_release'"))

    response = app.test_client().get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == ALL_OK
