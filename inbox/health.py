"""Health probes for load balancers and orchestrators: /healthz and /readyz.

Both answer anyone: no login, no CSRF (GET only), no audit, and they never open the session,
so a probe gets no cookie. Their answers name what failed and nothing else: no URLs, no
error messages (which could carry a host name or a password), no personal data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Request, Response, current_app, jsonify
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from inbox import heartbeat, migrate
from inbox.db import databases
from inbox.revisions import current_revisions, heads, known_revisions
from inbox.types import utcnow

bp = Blueprint("health", __name__)

PROBE_PATHS = frozenset({"/healthz", "/readyz"})
# Reading Alembic's scripts and both version tables costs more than a probe should; balancers
# ask every few seconds, and a migration is not missed for longer than this.
MIGRATIONS_CACHE_SECONDS = 10.0


@dataclass
class _MigrationsCache:
    checked_at: float = -1e9
    at_head: bool = False


def _at_head(engine: Engine, target: migrate.Target) -> bool:
    current = current_revisions(engine)
    # A revision this code does not know means a newer release migrated the database: a
    # rolling upgrade is under way, and this node keeps serving until it is restarted.
    return current == heads(target) or bool(current - known_revisions(target))


def _answers(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


def _migrations_state(app: Flask, reachable: dict[str, bool]) -> str:
    cache_entry: _MigrationsCache = app.extensions.setdefault(
        "socialcare.health", _MigrationsCache()
    )
    now = time.monotonic()
    if now - cache_entry.checked_at < MIGRATIONS_CACHE_SECONDS:
        return "ok" if cache_entry.at_head else "pending"
    if not all(reachable.values()):
        return "unknown"  # not cached: asked again as soon as the databases answer
    dbs = databases(app)
    try:
        at_head = _at_head(dbs.inbox, "inbox") and _at_head(dbs.research, "research")
    except SQLAlchemyError:
        return "unknown"
    cache_entry.checked_at, cache_entry.at_head = now, at_head
    return "ok" if at_head else "pending"


def _worker_state(app: Flask) -> str:
    max_age = timedelta(seconds=float(app.config["WORKER_HEARTBEAT_MAX_AGE_SECONDS"]))
    try:
        with Session(databases(app).inbox) as session:
            last = heartbeat.latest(session=session)
    except SQLAlchemyError:
        return "unknown"
    if last is None:
        return "none"
    return "ok" if utcnow() - last <= max_age else "stale"


def readiness(app: Flask) -> dict[str, str]:
    """Each dependency of a ready web node and its state ("ok" or what is wrong)."""
    dbs = databases(app)
    reachable = {"inbox": _answers(dbs.inbox), "research": _answers(dbs.research)}
    states = {name: "ok" if up else "unreachable" for name, up in reachable.items()}
    states["migrations"] = _migrations_state(app, reachable)
    states["worker"] = _worker_state(app) if reachable["inbox"] else "unknown"
    return states


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers: nothing else is checked, so a slow database never restarts it."""
    return Response("ok\n", mimetype="text/plain")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when both databases answer at head and a worker is alive; 503 naming what is not."""
    states = readiness(current_app)
    ready = all(state == "ok" for state in states.values())
    return jsonify(states), 200 if ready else 503


class _ProbeSessionInterface(SessionInterface):
    """The app's session interface, except that probes get no session (and so no cookie)."""

    def __init__(self, wrapped: SessionInterface) -> None:
        self.wrapped = wrapped

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        """No session for probes (Flask then uses a read-only empty one); else the app's."""
        if request.path in PROBE_PATHS:
            return None
        return self.wrapped.open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Save as the wrapped interface does."""
        self.wrapped.save_session(app, session, response)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def _install_session_guard(state: Any) -> None:
    app: Flask = state.app
    if not isinstance(app.session_interface, _ProbeSessionInterface):
        app.session_interface = _ProbeSessionInterface(app.session_interface)


bp.record_once(_install_session_guard)
