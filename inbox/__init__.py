"""The social-care inbox: Flask app factory. Importing this package starts nothing."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from inbox import config as default_config


def _template_folder() -> Path:
    # Wheels carry the templates inside the package; a source checkout keeps them at the top.
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "templates"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app: defaults, then SOCIALCARE_* environment variables, then `config`."""
    overrides = dict(config or {})
    instance_path = overrides.pop("INSTANCE_PATH", None) or os.environ.get(
        "SOCIALCARE_INSTANCE_PATH"
    )
    app = Flask(
        __name__,
        template_folder=str(_template_folder()),
        instance_path=str(Path(instance_path or Path.cwd() / "instance").resolve()),
        instance_relative_config=True,
    )
    app.config.from_object(default_config)
    app.config.from_prefixed_env("SOCIALCARE")
    app.config.update(overrides)
    _default_database_urls(app)
    default_config.check(app.config)
    if int(app.config["PROXY_HOPS"]) > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Trust exactly as many proxies as configured: more would let clients forge addresses.
        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )

    from inbox import (
        admin,
        agent,
        auth,
        cli,
        db,
        health,
        i18n,
        observability,
        reports,
        security,
        templating,
        webhooks,
    )

    observability.init_app(app)
    db.init_app(app)
    i18n.init_app(app)
    templating.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    webhooks.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(agent.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(admin.bp)
    from inbox import audit_views

    app.register_blueprint(audit_views.bp)
    from inbox import privacy_views

    privacy_views.init_app(app)
    cli.init_app(app)
    return app


def _default_database_urls(app: Flask) -> None:
    folder = Path(app.instance_path)
    for key, filename in (("DATABASE_URL", "inbox.db"), ("RESEARCH_DATABASE_URL", "research.db")):
        if not app.config.get(key):
            folder.mkdir(parents=True, exist_ok=True)
            app.config[key] = f"sqlite:///{folder / filename}"
