"""Observability: request ids, structured JSON logs with personal data redacted, and metrics."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Install request ids, JSON logging and the /metrics endpoint on an app."""
    from inbox import logs, metrics_http

    logs.init_app(app)
    metrics_http.init_app(app)
