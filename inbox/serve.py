"""Serve the web app with gunicorn, in-process: `socialcare serve`.

Why gthread: the inbox's requests are short and wait on the database (list refreshes every
few seconds, presence beats, replies); threads let one process overlap those waits and keep
connections alive, without an async rewrite. The app holds no per-thread state outside the
request: one database session per app context, thread-safe engines.

Each gunicorn worker builds its own app after the fork (no preloading), so no database
connection or pool is ever shared between processes, and a worker recycled after
`max_requests` starts clean.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
from gunicorn.glogging import Logger  # type: ignore[import-untyped]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

DEFAULT_BIND = "127.0.0.1:8000"
DEFAULT_THREADS = 4
DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1,::1"
# Headers a reverse proxy sets. Taken from anyone else, they would let a client choose its own
# address (login throttling, audit) or scheme: they are dropped unless the peer is a proxy.
FORWARDED_HEADERS = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def default_workers() -> int:
    """Gunicorn's rule of thumb: two workers per usable core, plus one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 2 * cores + 1


@dataclass(frozen=True)
class ServeOptions:
    """How `socialcare serve` runs gunicorn."""

    bind: tuple[str, ...] = (DEFAULT_BIND,)
    workers: int = 0  # 0: default_workers()
    threads: int = DEFAULT_THREADS
    forwarded_allow_ips: str = DEFAULT_FORWARDED_ALLOW_IPS
    access_log: bool = False
    timeout: int = 30


def gunicorn_settings(options: ServeOptions) -> dict[str, Any]:
    """The gunicorn settings for these options."""
    return {
        "bind": list(options.bind),
        "workers": options.workers or default_workers(),
        "worker_class": "gthread",
        "threads": options.threads,
        # A request stuck longer than this is killed with its worker; a stop waits as long.
        "timeout": options.timeout,
        "graceful_timeout": 30,
        "keepalive": 5,
        # Recycle workers now and then (a slow leak cannot grow forever), not all at once, and
        # rarely: a new worker builds the app for about two seconds of CPU, while the others
        # carry its share. Every 2,000 requests that was every half minute under load, and the
        # load benchmark's p99 was those stalls.
        "max_requests": 100_000,
        "max_requests_jitter": 10_000,
        "forwarded_allow_ips": options.forwarded_allow_ips,
        # Off by default: the app logs every request already (inbox/logs.py), without query
        # strings. Turned on, gunicorn's lines pass the same redaction (AppLogger).
        "accesslog": "-" if options.access_log else None,
        "errorlog": "-",
        "logger_class": AppLogger,
        "proc_name": "socialcare-web",
        "preload_app": False,
        "on_starting": _on_starting,
        "child_exit": _child_exit,
    }


class AppLogger(Logger):  # type: ignore[misc]
    """Gunicorn's own messages go through the app's logging (JSON lines, personal data
    redacted, see inbox/logs.py) instead of handlers and a format of gunicorn's."""

    def setup(self, cfg: Any) -> None:
        """Set levels as gunicorn does, then hand the records to the root logger."""
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                if getattr(handler, "_gunicorn", False):
                    log.removeHandler(handler)
            log.propagate = True


def _on_starting(_server: Any) -> None:
    """Before any worker forks: ready prometheus-client's multiprocess folder, so that every
    scrape, whichever worker answers it, counts the requests of all of them."""
    from inbox import metrics_files

    metrics_files.prepare()


def _child_exit(_server: Any, worker: Any) -> None:
    """Fold an exited worker's metric files into the folder's archive (see metrics_files)."""
    from inbox import metrics_files

    metrics_files.worker_exited(worker.pid)


def parse_networks(value: str) -> list[Network] | None:
    """The proxies' networks from a comma-separated list; None for "*" (every peer)."""
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if "*" in parts:
        return None
    return [ipaddress.ip_network(part, strict=False) for part in parts]


class TrustedProxyHeaders:
    """Drops X-Forwarded-*/Forwarded headers unless they come from an allowed proxy.

    Werkzeug's ProxyFix (PROXY_HOPS) believes these headers from whoever sent them; this runs
    before it, so a client that reaches a web node directly cannot forge its address.
    """

    def __init__(self, app: WSGIApp, allowed: str) -> None:
        self.app = app
        self.networks = parse_networks(allowed)

    def trusted(self, peer: str | None) -> bool:
        """Whether a peer address may set forwarding headers."""
        if self.networks is None:
            return True
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return True  # a UNIX socket: only local processes reach it (gunicorn agrees)
        return any(address in network for network in self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Serve the request, without forwarding headers from an untrusted peer."""
        if not self.trusted(environ.get("REMOTE_ADDR")):
            for key in FORWARDED_HEADERS:
                environ.pop(key, None)
        return self.app(environ, start_response)


class WebServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn, configured from code, loading a fresh app in each worker."""

    def __init__(self, factory: Callable[[], WSGIApp], options: ServeOptions) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply our settings to gunicorn's configuration."""
        for key, value in gunicorn_settings(self.options).items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn 25.1+ would open a control socket in $HOME: systemd (and several nodes
            # on one host) manage the processes instead.
            self.cfg.set("control_socket_disable", True)

    def load(self) -> WSGIApp:
        """Build the app in the worker process."""
        return TrustedProxyHeaders(self.factory(), self.options.forwarded_allow_ips)


def serve(*, factory: Callable[[], WSGIApp], options: ServeOptions) -> None:
    """Run gunicorn until it is stopped (SIGTERM stops gracefully, SIGINT at once)."""
    WebServer(factory, options).run()
