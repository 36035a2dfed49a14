"""Where Prometheus scrapes: /metrics on the web app and a small endpoint in each worker.

Both answer only with `Authorization: Bearer <METRICS_TOKEN>`; without a configured token the
web endpoint answers 404 and the worker starts none. prometheus_client is imported only here
and in inbox.metrics, and only when a scrape or a first value needs it.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Blueprint, Flask, current_app, request
from werkzeug.wrappers import Response

from inbox import metrics_files
from inbox.db import databases

bp = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def token_status(configured: str, header: str | None) -> int:
    """200 when the Authorization header carries the token, 401 without one, 403 when wrong."""
    if not header:
        return 401
    # Constant time: a scraper's wrong guesses must not learn the token byte by byte.
    expected = f"Bearer {configured}".encode()
    return 200 if hmac.compare_digest(header.encode(), expected) else 403


def _plain(body: str, status: int) -> Response:
    response = Response(body, status=status, mimetype="text/plain")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def exposition(*, collectors: Iterable[Any] = ()) -> bytes:
    """The text exposition of this process's (or all gunicorn workers') metrics and `collectors`."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    extra = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        extra.register(collector)
    shared = metrics_files.folder()
    if shared is None:
        return generate_latest(REGISTRY) + generate_latest(extra)
    # Every gunicorn worker writes its values to files there; a scrape reaches one worker,
    # which adds them all up (not while the master folds an exited worker's files).
    process = CollectorRegistry()
    MultiProcessCollector(process, str(shared))  # type: ignore[no-untyped-call]
    with metrics_files.locked(shared, exclusive=False):
        own = generate_latest(process)
    return own + generate_latest(extra)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics for a scraper holding the metrics token; 404 while none is set."""
    configured = str(current_app.config.get("METRICS_TOKEN") or "")
    if not configured:
        return _plain("not found", 404)
    status = token_status(configured, request.headers.get("Authorization"))
    if status != 200:
        return _plain("unauthorized" if status == 401 else "forbidden", status)
    from prometheus_client import CONTENT_TYPE_LATEST

    from inbox.metrics_db import DatabaseCollector

    collector = DatabaseCollector(
        databases().inbox,
        heartbeat_max_age=float(current_app.config["WORKER_HEARTBEAT_MAX_AGE_SECONDS"]),
    )
    return Response(exposition(collectors=[collector]), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Register /metrics (no login, no session, no CSRF: a GET that only reads counts)."""
    app.register_blueprint(bp)


# The worker's endpoint ----------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    # wsgiref logs every request with its client address to stderr: nothing to learn there.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def token_guard(token: str, app: WSGIApp) -> WSGIApp:
    """Wrap a WSGI app so that it answers only at /metrics and only with the bearer token."""

    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        status = token_status(token, environ.get("HTTP_AUTHORIZATION"))
        if status == 401:
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [b"unauthorized"]
        if status == 403:
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"forbidden"]
        return app(environ, start_response)

    return guarded


def parse_bind(bind: str) -> tuple[str, int]:
    """Split "host:port" (or "[v6]:port") into host and port."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {bind!r}")
    return host.strip("[]"), int(port)


def serve_worker_metrics(*, bind: str, token: str) -> WSGIServer | None:
    """Serve this process's metrics at http://<bind>/metrics in a background thread.

    Returns the server (call shutdown() to stop it), or None when `bind` is empty or no token
    is configured: metrics are never served without one.
    """
    if not bind:
        return None
    if not token:
        log.warning("WORKER_METRICS_BIND is set but METRICS_TOKEN is not: worker metrics are off")
        return None
    from prometheus_client import REGISTRY, make_wsgi_app

    host, port = parse_bind(bind)
    server = make_server(
        host,
        port,
        token_guard(token, make_wsgi_app(REGISTRY)),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True)
    thread.start()
    log.info("worker metrics listening on port %d at /metrics", server.server_port)
    return server


def serve_worker_metrics_for(app: Flask) -> WSGIServer | None:
    """Start the worker's metrics endpoint from the app's WORKER_METRICS_BIND and token.

    A worker keeps its values in memory even where the web service's multiprocess folder is
    configured (a shared environment file): in that folder they would be counted by every
    web scrape as well as by the worker's own.
    """
    os.environ.pop(metrics_files.MULTIPROC_ENV, None)
    return serve_worker_metrics(
        bind=str(app.config.get("WORKER_METRICS_BIND") or ""),
        token=str(app.config.get("METRICS_TOKEN") or ""),
    )
