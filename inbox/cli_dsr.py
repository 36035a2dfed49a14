"""`socialcare dsr …`: data-subject requests (access and erasure) from the command line."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlmodel import Session, col, func, select

from inbox import audit
from inbox.db import databases
from inbox.dsr import contact_counts, erase_contact, export_contact
from inbox.models import Contact


@click.group("dsr")
def dsr_group() -> None:
    """Data-subject requests: export or erase everything stored about a contact."""


def _found_contact(command: Callable[..., None]) -> Callable[..., None]:
    """Add the options that name a contact; the command gets a session and the contact instead."""

    @functools.wraps(command)
    def run(
        contact_id: int | None,
        platform: str | None,
        user_id: str | None,
        handle: str | None,
        **options: Any,
    ) -> None:
        with Session(databases(current_app).inbox, expire_on_commit=False) as session:
            contact = _find(session, contact_id, platform, user_id, handle)
            command(session=session, contact=contact, **options)

    for option in reversed(
        [
            click.option("--contact", "contact_id", type=int, help="The contact's id."),
            click.option("--platform", help="With --user-id or --handle: the contact's platform."),
            click.option("--user-id", help="The contact's user id on --platform."),
            click.option("--handle", help="The contact's handle (with --platform if ambiguous)."),
        ]
    ):
        run = option(run)
    return run


def _find(
    session: Session,
    contact_id: int | None,
    platform: str | None,
    user_id: str | None,
    handle: str | None,
) -> Contact:
    if contact_id is not None:
        statement = select(Contact).where(col(Contact.id) == contact_id)
    elif user_id:
        if not platform:
            raise click.UsageError("--user-id needs --platform")
        statement = select(Contact).where(
            col(Contact.platform) == platform, col(Contact.platform_user_id) == user_id
        )
    elif handle:
        statement = select(Contact).where(
            func.lower(col(Contact.handle)) == handle.lstrip("@").lower()
        )
        if platform:
            statement = statement.where(col(Contact.platform) == platform)
    else:
        raise click.UsageError("name the contact: --contact, --platform/--user-id or --handle")
    found = list(session.exec(statement.limit(2)))
    if not found:
        raise click.ClickException("No such contact (erased already, or never stored).")
    if len(found) > 1:
        raise click.ClickException("More than one contact has that handle; add --platform.")
    return found[0]


@dsr_group.command("export")
@with_appcontext
@_found_contact
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@click.option("--html", "as_html", is_flag=True, help="The readable HTML summary instead of JSON.")
def dsr_export(*, session: Session, contact: Contact, out: Path | None, as_html: bool) -> None:
    """Everything stored about a contact, as JSON (or an HTML summary), to stdout or --out."""
    assert contact.id is not None
    data = export_contact(session=session, contact_id=contact.id)
    audit.record(
        session=session,
        action="dsr_summary" if as_html else "dsr_export",
        user_id=None,
        target_type="contact",
        target_id=contact.id,
        detail={"via": "cli"},
        contact_id=contact.id,
    )
    session.commit()
    if as_html:
        from inbox.privacy_views import render_summary

        with current_app.test_request_context():
            body = render_summary(data)
    else:
        body = json.dumps(data, ensure_ascii=False, indent=2)
    if out is None:
        click.echo(body)
        return
    out.write_text(body + "\n", encoding="utf-8")
    out.chmod(0o600)  # a person's data: not for everyone on the machine
    click.echo(f"Wrote contact {data['contact']['id']} to {out}", err=True)


@dsr_group.command("erase")
@with_appcontext
@_found_contact
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dsr_erase(*, session: Session, contact: Contact, yes: bool) -> None:
    """Delete a contact and everything about them; keep tombstones so nothing comes back."""
    assert contact.id is not None
    counts = contact_counts(session=session, contact_id=contact.id)
    click.echo(
        f"Contact {contact.id} on {contact.platform}: {counts.conversations} conversations, "
        f"{counts.messages} messages, {counts.notes} notes, {counts.consents} consent records."
    )
    click.echo(
        "The research store is not touched: it holds only anonymized records, and nothing "
        "in it points to this person."
    )
    if not yes:
        typed = click.prompt("Type the contact id to erase it for good", default="")
        if typed.strip() != str(contact.id):
            raise click.ClickException("Not confirmed; nothing was erased.")
    report = erase_contact(
        session=session, contact_id=contact.id, by_user_id=None, ip=None, via="cli"
    )
    figures = ", ".join(
        f"{name.replace('_', ' ')} {count}" for name, count in report.counts().items()
    )
    click.echo(f"Erased contact {report.contact_id}: {figures}.")
