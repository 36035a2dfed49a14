"""The `socialcare` command line."""

from __future__ import annotations

import secrets as pysecrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from cryptography.fernet import Fernet
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlmodel import Session

from anonymizer.jsonl import anonymize_lines
from inbox.models import Role, User
from inbox.users import UserError, create_user, generate_password


def _create_app() -> Flask:
    from inbox import create_app
    from inbox.config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False)
def main() -> None:
    """socialcare: social-media care inbox with anonymized trend reports."""


@main.command("gen-key", with_appcontext=False)
@click.argument("kind", type=click.Choice(["secret", "fernet"]), default="fernet")
def gen_key(kind: str) -> None:
    """Print a new SECRET_KEY (secret) or encryption key (fernet)."""
    click.echo(pysecrets.token_urlsafe(48) if kind == "secret" else Fernet.generate_key().decode())


@main.command("anonymize", with_appcontext=False)
@click.option("--enrich", is_flag=True, help="Add language, sentiment, topics and hashtags.")
def anonymize(enrich: bool) -> None:
    """Read JSON lines {"id", "text", …} on stdin; write the anonymized lines to stdout."""
    bad = 0
    for out, good in anonymize_lines(sys.stdin, enrich=enrich):
        click.echo(out)  # echo flushes: a reader gets each line as soon as it is ready
        bad += not good
    if bad:
        raise click.ClickException(f"{bad} input line(s) could not be read; see their 'error'")


@main.command("demo", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--instance",
    default="instance",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the demo's SQLite databases and generated secrets.",
)
@click.option("--rate", default=6.0, show_default=True, help="Demo messages per minute.")
@click.option("--seed", default=7, show_default=True, help="Seed of the demo traffic.")
def demo(host: str, port: int, instance: Path, rate: float, seed: int) -> None:
    """Run the demo: migrated SQLite databases, seeded users, demo traffic, web and worker."""
    from inbox.demo import run_demo

    run_demo(instance=instance, host=host, port=port, rate=rate, seed=seed)


@click.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Migrate the inbox database and the research store to the newest schema."""
    from inbox import migrate
    from inbox.db import databases

    dbs = databases(current_app)
    for target, engine in (("inbox", dbs.inbox), ("research", dbs.research)):
        migrate.upgrade(engine, target)  # type: ignore[arg-type]
        click.echo(f"{target} database is at head")


@click.group("user")
def user_group() -> None:
    """Users."""


@user_group.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@with_appcontext
def user_create(email: str, name: str, role: str) -> None:
    """Create a user and print the generated password once."""
    from inbox.db import databases

    password = generate_password()
    with Session(databases(current_app).inbox, expire_on_commit=False) as session:
        try:
            user = create_user(
                session=session, email=email, name=name, role=Role(role), password=password
            )
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        from inbox import audit

        audit.record(
            session=session,
            action="user_created",
            user_id=None,
            target_type="user",
            target_id=user.id,
            detail={"role": user.role.value, "via": "cli"},
        )
        session.commit()
    click.echo(f"Created {user.role.value} {user.email} with password: {password}")
    click.echo("The password is shown only now.")


def _change_user(
    email: str, action: str, change: Callable[[Session, User], dict[str, Any]]
) -> None:
    """Apply a change to one user and audit it as done by nobody logged in (the CLI)."""
    from inbox import audit
    from inbox.db import databases
    from inbox.users import find_user

    with Session(databases(current_app).inbox, expire_on_commit=False) as session:
        user = find_user(session=session, email=email)
        if user is None:
            raise click.ClickException(f"No user has the e-mail {email.strip().lower()}.")
        detail = change(session, user)
        audit.record(
            session=session,
            action=action,
            user_id=None,
            target_type="user",
            target_id=user.id,
            detail={"via": "cli", **detail},
        )
        session.commit()


@user_group.command("reset-2fa")
@click.option("--email", required=True)
@with_appcontext
def user_reset_2fa(email: str) -> None:
    """Remove a user's second factor (lost phone and codes); they set it up at the next login."""
    from inbox import twofactor
    from inbox.users import end_sessions

    def reset(session: Session, user: User) -> dict[str, Any]:
        twofactor.disable(session=session, user=user)
        end_sessions(session=session, user=user)
        return {}

    _change_user(email, "2fa_reset", reset)
    click.echo(f"The second factor of {email.strip().lower()} is removed; they are logged out.")


@user_group.command("set-role")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@with_appcontext
def user_set_role(email: str, role: str) -> None:
    """Give a user another role."""
    from inbox.users import set_role

    def change(session: Session, user: User) -> dict[str, Any]:
        old = set_role(session=session, user=user, role=Role(role))
        return {"old": old.value, "new": role}

    _change_user(email, "role_changed", change)
    click.echo(f"{email.strip().lower()} is now {role}.")


@user_group.command("logout-everywhere")
@click.option("--email", required=True)
@with_appcontext
def user_logout_everywhere(email: str) -> None:
    """End every session of a user at once."""
    from inbox.users import end_sessions

    def end(session: Session, user: User) -> dict[str, Any]:
        end_sessions(session=session, user=user)
        return {}

    _change_user(email, "logout_everywhere", end)
    click.echo(f"Every session of {email.strip().lower()} has ended.")


@click.command("worker")
@with_appcontext
def worker() -> None:
    """Run the worker: poll official accounts and fill the research store."""
    from inbox import worker as worker_module

    worker_module.run(current_app)


def init_app(app: Flask) -> None:
    """Register the commands that need an app on its CLI."""
    app.cli.add_command(db_group)
    app.cli.add_command(user_group)
    from inbox.cli_accounts import account_group
    from inbox.cli_audit import audit_group, rotate_keys_command
    from inbox.cli_dead_letters import dead_letters_group
    from inbox.cli_retention import retention_group

    app.cli.add_command(account_group)
    app.cli.add_command(dead_letters_group)
    app.cli.add_command(retention_group)
    from inbox.cli_dsr import dsr_group

    app.cli.add_command(dsr_group)
    app.cli.add_command(audit_group)
    app.cli.add_command(rotate_keys_command)
    app.cli.add_command(worker)
    from inbox import cli_ops

    cli_ops.init_app(app)
