"""`socialcare dead-letters …`: what could not be ingested, retried after a fix or discarded."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlmodel import Session

from inbox import audit
from inbox.db import databases
from inbox.dead_letters import (
    discard_dead_letter,
    list_dead_letters,
    retry_dead_letter,
)
from inbox.models import DeadLetter


@click.group("dead-letters")
def dead_letters_group() -> None:
    """Payloads that could not be parsed: list, retry after a fix, or discard."""


@dead_letters_group.command("list")
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved letters.")
@click.option("--limit", default=100, show_default=True)
@with_appcontext
def dead_letters_list(include_resolved: bool, limit: int) -> None:
    """Show dead letters, newest first, with their error and the start of their payload."""
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
