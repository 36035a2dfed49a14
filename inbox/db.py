"""Engines for the two databases and one session per app context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlmodel import Session


@dataclass(frozen=True, slots=True)
class Databases:
    """The inbox engine and the research-store engine of one app."""

    inbox: Engine
    research: Engine


def make_engine(url: str, **options: Any) -> Engine:
    """An engine tuned for its backend: WAL and foreign keys on SQLite, pre-ping elsewhere."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A database host that has gone must fail a probe in seconds, not hang it (a URL's own
    # ?connect_timeout= wins).
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **options)


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
    """The inbox session of this app context."""
    if "db_session" not in g:
        g.db_session = Session(databases().inbox, expire_on_commit=False)
    current: Session = g.db_session
    return current


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
