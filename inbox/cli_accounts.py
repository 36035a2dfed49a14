"""`socialcare account …`: connecting official accounts and setting their research policy."""

from __future__ import annotations

import json
import re
from typing import TextIO

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlmodel import Session, col, select

from connectors import ConnectorError
from inbox import audit
from inbox.accounts import PLATFORM_FIELDS, connect_account, describe_state, set_status
from inbox.config import multi_fernet
from inbox.db import databases
from inbox.models import Account, AccountStatus


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
@click.option(
    "--id-pattern",
    "id_patterns",
    multiple=True,
    help=r"A regular expression of the account's own ID format, e.g. 'QP-\d{6}'; repeatable.",
)
@with_appcontext
def account_research(
    account_id: int, dms: bool | None, topics_file: TextIO | None, id_patterns: tuple[str, ...]
) -> None:
    """Set an account's research policy: DMs in or out, and its topic taxonomy."""
    from anonymizer.topics import Taxonomy, TaxonomyError

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
        if id_patterns:
            for pattern in id_patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise click.ClickException(f"ID pattern {pattern!r} not saved: {exc}") from None
            account.settings = {**account.settings, "id_patterns": list(id_patterns)}
            detail["id_patterns"] = len(id_patterns)
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
