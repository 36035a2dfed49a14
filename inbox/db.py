"""Engines for the two databases and one session per app context."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlmodel import Session

# A pooled connection idle for longer than this is checked with a round trip before use: the
# database may have restarted or a firewall dropped it meanwhile. One in steady use is not:
# a ping on every checkout (SQLAlchemy's pool_pre_ping) costs a round trip per request, a
# seventh of a list page's database time. Should the server go away between two requests
# anyway, that request fails, SQLAlchemy invalidates the whole pool, and the next ones connect
# afresh.
PING_AFTER_IDLE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Databases:
    """The inbox engine and the research-store engine of one app."""

    inbox: Engine
    research: Engine


def make_engine(
    url: str, *, ping_after_idle: float = PING_AFTER_IDLE_SECONDS, **options: Any
) -> Engine:
    """An engine tuned for its backend: WAL and foreign keys on SQLite; elsewhere a
    connection idle for `ping_after_idle` seconds is pinged before it is handed out."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A database host that has gone must fail a probe in seconds, not hang it (a URL's own
    # ?connect_timeout= wins).
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    engine = create_engine(url, connect_args=connect_args, **options)
    _ping_when_idle(engine, ping_after_idle)
    return engine


def _ping_when_idle(engine: Engine, seconds: float) -> None:
    """Ping connections that come back from more than `seconds` in the pool; a dead one is
    replaced by a new connection before anyone sees it (the pool retries the checkout)."""

    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _handed_out(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < seconds:
            return  # just connected, or in steady use
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(f"idle connection was dropped: {error}") from error


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # The worker and the web server write to the same file: wait instead of failing at once.
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def init_app(app: Flask) -> None:
    """Create the engines from the configuration and close sessions at teardown."""
    app.extensions["socialcare.db"] = Databases(
        inbox=make_engine(app.config["DATABASE_URL"]),
        research=make_engine(app.config["RESEARCH_DATABASE_URL"]),
    )
    app.teardown_appcontext(_close_sessions)


def databases(app: Flask | None = None) -> Databases:
    """The engines of the given or current app."""
    target = app if app is not None else current_app
    dbs: Databases = target.extensions["socialcare.db"]
    return dbs


def session() -> Session:
    """The inbox session of this app context; for a GET of a view marked `read_only`, one
    without a transaction (see there)."""
    if "db_session" not in g:
        if _reading_only():
            g.db_session = ReadOnlySession(_autocommit(databases().inbox), expire_on_commit=False)
        else:
            g.db_session = Session(databases().inbox, expire_on_commit=False)
    current: Session = g.db_session
    return current


_V = TypeVar("_V", bound=Callable[..., Any])


def read_only(view: _V) -> _V:
    """Mark a view that only reads the inbox: its GET requests run without a transaction.

    A transaction costs two round trips (BEGIN, then ROLLBACK at the end), as much as the one
    query of the session check, on pages that ask the database nothing but consistent reads of
    single statements. ReadOnlySession refuses to flush a change. Put it under the route and
    the other decorators (functools.wraps carries the mark up)."""
    view.read_only = True  # type: ignore[attr-defined]
    return view


def _reading_only() -> bool:
    if not has_request_context() or request.method not in ("GET", "HEAD"):
        return False
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "read_only", False))


def _autocommit(engine: Engine) -> Engine:
    """The engine, handing out connections without transactions (the same pool)."""
    found = _AUTOCOMMIT.get(engine)
    if found is None:
        found = _AUTOCOMMIT[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


_AUTOCOMMIT: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


class ReadOnlyError(RuntimeError):
    """A view marked read_only tried to write."""


class ReadOnlySession(Session):
    """A session for read-only views: without a transaction each statement would commit on its
    own, so a change is refused rather than half-written."""

    def flush(self, objects: Any = None) -> None:
        if self.new or self.dirty or self.deleted:
            raise ReadOnlyError("a read-only view tried to change the database")
        super().flush(objects)


def research_session() -> Session:
    """The research-store session of this app context."""
    if "research_session" not in g:
        g.research_session = Session(databases().research, expire_on_commit=False)
    current: Session = g.research_session
    return current


def _close_sessions(_exc: BaseException | None) -> None:
    for name in ("db_session", "research_session"):
        opened = g.pop(name, None)
        if opened is not None:
            opened.close()
