"""Operations commands: `socialcare serve` and `socialcare check`."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from inbox import serve as serve_module


@click.command("serve")
@click.option(
    "--bind",
    "-b",
    multiple=True,
    envvar="SOCIALCARE_WEB_BIND",
    help=f"Address to listen on, host:port or unix:PATH; repeatable. [default: "
    f"{serve_module.DEFAULT_BIND}]",
)
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(min=1),
    envvar="SOCIALCARE_WEB_WORKERS",
    help="Worker processes. [default: 2 × cores + 1]",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=serve_module.DEFAULT_THREADS,
    show_default=True,
    envvar="SOCIALCARE_WEB_THREADS",
    help="Threads per worker process.",
)
@click.option(
    "--forwarded-allow-ips",
    default=serve_module.DEFAULT_FORWARDED_ALLOW_IPS,
    show_default=True,
    envvar="SOCIALCARE_FORWARDED_ALLOW_IPS",
    help="The reverse proxies' addresses or networks, comma-separated: only they may set "
    "X-Forwarded-* headers.",
)
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Seconds a request may take before its worker is restarted.",
)
@click.option(
    "--access-log",
    is_flag=True,
    envvar="SOCIALCARE_WEB_ACCESS_LOG",
    help="Also log gunicorn's access lines (redacted like every log line).",
)
@with_appcontext
def serve_command(
    bind: tuple[str, ...],
    workers: int | None,
    threads: int,
    forwarded_allow_ips: str,
    timeout: int,
    access_log: bool,
) -> None:
    """Serve the web app with gunicorn (production); stop it with SIGTERM."""
    try:
        serve_module.parse_networks(forwarded_allow_ips)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--forwarded-allow-ips") from None
    # The app was built (and its production checks passed) to get here; workers build their own.
    from inbox.db import databases

    dbs = databases(current_app)
    dbs.inbox.dispose()
    dbs.research.dispose()
    options = serve_module.ServeOptions(
        bind=bind or (serve_module.DEFAULT_BIND,),
        workers=workers or 0,
        threads=threads,
        forwarded_allow_ips=forwarded_allow_ips,
        access_log=access_log,
        timeout=timeout,
    )
    serve_module.serve(factory=_create_app, options=options)


@click.command("check")
@with_appcontext
def check_command() -> None:
    """Report on secrets, databases, migrations, accounts, workers and web settings."""
    from inbox.db import databases
    from inbox.ops_check import Level, run_checks
    from inbox.types import utcnow

    dbs = databases(current_app)
    findings = run_checks(
        config=current_app.config,
        inbox_engine=dbs.inbox,
        research_engine=dbs.research,
        now=utcnow(),
    )
    for finding in findings:
        click.echo(finding.line())
    problems = sum(finding.level == Level.problem for finding in findings)
    warnings = sum(finding.level == Level.warning for finding in findings)
    click.echo(f"{problems} problem(s), {warnings} warning(s)")
    if problems:
        raise SystemExit(1)


def _create_app() -> Flask:
    from inbox import create_app

    return create_app()


def init_app(app: Flask) -> None:
    """Register the operations commands on an app's CLI."""
    app.cli.add_command(serve_command)
    app.cli.add_command(check_command)
