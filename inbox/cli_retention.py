"""`socialcare retention …`: preview what the daily run will delete, or run it now."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlmodel import Session

from inbox.db import databases
from inbox.retention import RetentionPlan, plan
from inbox.retention_policy import run_daily
from inbox.types import utcnow


@click.group("retention")
def retention_group() -> None:
    """Per-account retention: preview the next run, or apply it now."""


def _show(result: RetentionPlan, *, done: bool) -> None:
    verb = "deleted" if done else "will delete"
    for row in result.accounts:
        click.echo(
            f"account #{row.account_id} {row.name}: {verb} {row.conversations} closed "
            f"conversation(s) with {row.messages} message(s) and {row.notes} note(s); "
            f"raw payloads of {row.raw_payloads} message(s); {row.dead_letters} dead letter(s)"
        )
    if not result.accounts:
        click.echo("No accounts.")
    click.echo(f"contacts left with nothing: {result.contacts}")
    if result.unassigned_dead_letters:
        click.echo(f"dead letters of no account: {result.unassigned_dead_letters}")
    months = ", ".join(result.key_months) or "none"
    click.echo(
        f"pseudonym keys ({result.key_days} days after their month, the strictest account's "
        f"figure): {months}"
    )


@retention_group.command("preview")
@with_appcontext
def retention_preview() -> None:
    """Show what a run now would delete, per account; nothing is changed."""
    with Session(databases(current_app).inbox) as session:
        result = plan(
            session=session,
            now=utcnow(),
            default_key_days=current_app.config["PSEUDONYM_KEY_RETENTION_DAYS"],
        )
        _show(result, done=False)


@retention_group.command("apply")
@with_appcontext
def retention_apply() -> None:
    """Apply every account's retention policy now, as the daily worker job does; audited."""
    report = run_daily(
        engine=databases(current_app).inbox,
        now=utcnow(),
        timezone=current_app.config["BABEL_DEFAULT_TIMEZONE"],
        default_key_days=current_app.config["PSEUDONYM_KEY_RETENTION_DAYS"],
        force=True,
        via="cli",
    )
    if report is None:
        raise click.ClickException("Another worker is applying retention right now; try later.")
    _show(report, done=True)
