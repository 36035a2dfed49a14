"""Pooled connections: one the database dropped while it sat idle is replaced unnoticed."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from inbox.db import make_engine
from tests.conftest import PG_URL, DatabaseUrls

# SQLite has no server to drop a connection: these run on PostgreSQL alone.
pytestmark = pytest.mark.postgres_only


def backend_pid(engine_url: str, *, ping_after_idle: float) -> tuple[int, int]:
    """The server process of a pooled connection before and after the server killed it idle."""
    engine = make_engine(engine_url, ping_after_idle=ping_after_idle, pool_size=1)
    try:
        with engine.connect() as connection:
            first = int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        admin.dispose()
        time.sleep(0.3)
        with engine.connect() as connection:
            second = int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
        return first, second
    finally:
        engine.dispose()


def test_a_connection_killed_while_idle_is_replaced_before_anyone_uses_it(
    database_urls: DatabaseUrls,
) -> None:
    first, second = backend_pid(database_urls.inbox, ping_after_idle=0.1)
    assert second != first


def test_a_connection_in_steady_use_is_not_pinged_so_a_kill_surfaces_once(
    database_urls: DatabaseUrls,
) -> None:
    # The price of not pinging on every checkout: a connection the server dropped moments after
    # its last use fails its next statement (and SQLAlchemy then renews the pool).
    with pytest.raises(Exception, match="terminat|closed|connection"):
        backend_pid(database_urls.inbox, ping_after_idle=60)
