"""The `socialcare` command line."""

from __future__ import annotations

import json
import secrets as pysecrets
import sys
from pathlib import Path
from typing import TextIO

import click
from cryptography.fernet import Fernet
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlmodel import Session, col, select

from anonymizer.jsonl import anonymize_lines
from connectors import ConnectorError
from inbox import audit
from inbox.accounts import PLATFORM_FIELDS, connect_account, describe_state, set_status
from inbox.config import multi_fernet
from inbox.dead_letters import (
    discard_dead_letter,
    list_dead_letters,
    retry_dead_letter,
)
from inbox.models import Account, AccountStatus, DeadLetter, Role
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
    click.echo(f"Created {user.role.value} {user.email} with password: {password}")
    click.echo("The password is shown only now.")


@click.group("account")
def account_group() -> None:
    """Official company accounts."""


def _settings(pairs: tuple[str, ...]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--setting")
        settings[key.strip()] = value.strip()
    return settings


@account_group.command("connect")
@click.argument("platform", type=click.Choice(sorted(PLATFORM_FIELDS)))
@click.option("--setting", "settings", multiple=True, help="KEY=VALUE, e.g. username=acme.")
@click.option(
    "--credentials-json",
    type=click.File("r"),
    help="Read the credentials as a JSON object from this file ('-' for stdin) instead of "
    "prompting. Never pass secrets as arguments: they end up in the shell history.",
)
@click.option("--sla-minutes", default=30, show_default=True)
@click.option("--poll-interval", default=60, show_default=True, help="Seconds between polls.")
@with_appcontext
def account_connect(
    platform: str,
    settings: tuple[str, ...],
    credentials_json: TextIO | None,
    sla_minutes: int,
    poll_interval: int,
) -> None:
    """Connect an official account after the platform confirms whose credentials these are."""
    from inbox.db import databases

    secret_keys, setting_keys = PLATFORM_FIELDS[platform]
    given = _settings(settings)
    for key in setting_keys:
        if key not in given:
            given[key] = click.prompt(key)
    if credentials_json is not None:
        credentials = {str(k): str(v) for k, v in json.load(credentials_json).items()}
    else:
        credentials = {key: click.prompt(key, hide_input=True) for key in secret_keys}
    missing = [key for key in secret_keys if not credentials.get(key)]
    if missing:
        raise click.ClickException(f"Missing credentials: {', '.join(missing)}")
    with Session(databases(current_app).inbox, expire_on_commit=False) as session:
        try:
            account = connect_account(
                session=session,
                fernet=multi_fernet(current_app.config["ENCRYPTION_KEYS"]),
                platform=platform,
                credentials=credentials,
                settings=given,
                sla_minutes=sla_minutes,
                poll_interval_seconds=poll_interval,
            )
        except ConnectorError as exc:
            raise click.ClickException(f"Not connected: {exc}") from None
        audit.record(
            session=session,
            action="account_connected",
            user_id=None,
            target_type="account",
            target_id=account.id,
            detail={"platform": platform, "via": "cli"},
        )
        session.commit()
    click.echo(
        f"Connected {platform} account {account.display_name} (@{account.handle}) as #{account.id}"
    )


@account_group.command("list")
@with_appcontext
def account_list() -> None:
    """Show each account's state: polling, paused, waiting for a rate limit, or broken."""
    from inbox.db import databases

    with Session(databases(current_app).inbox) as session:
        accounts = session.exec(select(Account).order_by(col(Account.id))).all()
        for account in accounts:
            click.echo(
                f"#{account.id} {account.platform} {account.display_name} ({account.handle})"
            )
            click.echo(f"    state: {describe_state(account)}")
            if account.last_error:
                click.echo(f"    last error: {account.last_error}")


@account_group.command("pause")
@click.argument("account_id", type=int)
@with_appcontext
def account_pause(account_id: int) -> None:
    """Stop polling an account."""
    _set_status(account_id, AccountStatus.paused)


@account_group.command("resume")
@click.argument("account_id", type=int)
@with_appcontext
def account_resume(account_id: int) -> None:
    """Poll an account again."""
    _set_status(account_id, AccountStatus.active)


@account_group.command("research")
@click.argument("account_id", type=int)
@click.option("--dms/--no-dms", default=None, help="Let direct messages go to market research.")
@click.option(
    "--topics",
    "topics_file",
    type=click.File("r"),
    help='JSON object of topic rules, e.g. {"delivery": "Paket OR Lieferung*"}; "-" for stdin.',
)
@with_appcontext
def account_research(account_id: int, dms: bool | None, topics_file: TextIO | None) -> None:
    """Set an account's research policy: DMs in or out, and its topic taxonomy."""
    from anonymizer.topics import Taxonomy, TaxonomyError
    from inbox.db import databases

    with Session(databases(current_app).inbox, expire_on_commit=False) as session:
        account = session.get(Account, account_id)
        if account is None:
            raise click.ClickException(f"No account #{account_id}")
        detail: dict[str, object] = {"via": "cli"}
        if dms is not None:
            account.research_dms = dms
            detail["research_dms"] = dms
        if topics_file is not None:
            rules = json.load(topics_file)
            if not isinstance(rules, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in rules.items()
            ):
                raise click.ClickException("Topics must be a JSON object of name -> rule")
            try:
                Taxonomy.parse(rules)
            except TaxonomyError as exc:
                raise click.ClickException(f"Topics not saved: {exc}") from None
            account.settings = {**account.settings, "topics": rules}
            detail["topics"] = sorted(rules)
        session.add(account)
        audit.record(
            session=session,
            action="account_research_policy",
            user_id=None,
            target_type="account",
            target_id=account_id,
            detail=detail,
        )
        session.commit()
        topics = account.settings.get("topics")
    click.echo(
        f"Account #{account_id}: DMs {'go' if account.research_dms else 'do not go'} to research"
    )
    click.echo(f"Topics: {', '.join(sorted(topics)) if topics else 'the default service topics'}")


def _set_status(account_id: int, status: AccountStatus) -> None:
    from inbox.db import databases

    with Session(databases(current_app).inbox, expire_on_commit=False) as session:
        account = session.get(Account, account_id)
        if account is None:
            raise click.ClickException(f"No account #{account_id}")
        set_status(session=session, account=account, status=status)
        audit.record(
            session=session,
            action=f"account_{status.value}",
            user_id=None,
            target_type="account",
            target_id=account_id,
            detail={"via": "cli"},
        )
        session.commit()
    click.echo(f"Account #{account_id} is now {status.value}")


@click.group("dead-letters")
def dead_letters_group() -> None:
    """Payloads that could not be parsed: list, retry after a fix, or discard."""


@dead_letters_group.command("list")
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved letters.")
@click.option("--limit", default=100, show_default=True)
@with_appcontext
def dead_letters_list(include_resolved: bool, limit: int) -> None:
    """Show dead letters, newest first, with their error and the start of their payload."""
    from inbox.db import databases

    with Session(databases(current_app).inbox) as session:
        letters = list_dead_letters(session=session, include_resolved=include_resolved, limit=limit)
        for letter in letters:
            state = " resolved" if letter.resolved_at else ""
            click.echo(
                f"#{letter.id} {letter.platform} {letter.source} "
                f"{letter.received_at:%Y-%m-%d %H:%M} retries={letter.retries}{state}"
            )
            click.echo(f"    error: {letter.error}")
            click.echo(f"    raw: {letter.raw[:120]!r}")
        if not letters:
            click.echo("No dead letters.")


@dead_letters_group.command("retry")
@click.argument("letter_id", type=int, required=False)
@click.option("--all", "retry_all", is_flag=True, help="Retry every open dead letter.")
@with_appcontext
def dead_letters_retry(letter_id: int | None, retry_all: bool) -> None:
    """Parse dead letters again with the current parsers and ingest those that parse now."""
    from inbox.db import databases

    if (letter_id is None) == (not retry_all):
        raise click.UsageError("Give a dead letter's ID or --all")
    with Session(databases(current_app).inbox, expire_on_commit=False) as session:
        if letter_id is not None:
            letters = [_letter(session, letter_id)]
        else:
            letters = list(list_dead_letters(session=session, limit=10_000))
        failed = 0
        for letter in letters:
            outcome = retry_dead_letter(session=session, letter=letter)
            audit.record(
                session=session,
                action="dead_letter_retried",
                user_id=None,
                target_type="dead_letter",
                target_id=letter.id,
                detail={"via": "cli", "outcome": outcome.outcome, "message": outcome.message},
            )
            session.commit()
            failed += not outcome.resolved
            click.echo(f"#{letter.id}: {outcome.outcome}: {outcome.message}")
    if letter_id is not None and failed:
        raise click.ClickException(f"Dead letter #{letter_id} is still open")


@dead_letters_group.command("discard")
@click.argument("letter_id", type=int)
@with_appcontext
def dead_letters_discard(letter_id: int) -> None:
    """Mark a dead letter resolved without ingesting it."""
    from inbox.db import databases

    with Session(databases(current_app).inbox, expire_on_commit=False) as session:
        letter = _letter(session, letter_id)
        discard_dead_letter(session=session, letter=letter)
        audit.record(
            session=session,
            action="dead_letter_discarded",
            user_id=None,
            target_type="dead_letter",
            target_id=letter_id,
            detail={"via": "cli"},
        )
        session.commit()
    click.echo(f"Dead letter #{letter_id} discarded")


def _letter(session: Session, letter_id: int) -> DeadLetter:
    letter = session.get(DeadLetter, letter_id)
    if letter is None:
        raise click.ClickException(f"No dead letter #{letter_id}")
    return letter


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
    app.cli.add_command(account_group)
    app.cli.add_command(dead_letters_group)
    app.cli.add_command(worker)
