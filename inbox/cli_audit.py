"""`socialcare audit verify` and `socialcare rotate-keys`: checking the trail, renewing keys."""

from __future__ import annotations

from dataclasses import dataclass

import click
from cryptography.fernet import InvalidToken, MultiFernet
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import Table, bindparam, inspect, select, update
from sqlmodel import Session

from inbox import audit
from inbox.config import ConfigError, multi_fernet
from inbox.db import databases
from inbox.models import Account, PseudonymKey, User
from inbox.privacy_models import StoredKey


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit trail."""


@audit_group.command("verify")
@click.option("--batch-size", default=5000, show_default=True, help="Events read per query.")
@with_appcontext
def audit_verify(batch_size: int) -> None:
    """Check the hash chain of every audit event; name the first broken link."""
    with Session(databases(current_app).inbox) as session:
        result = audit.verify_chain(session=session, batch_size=max(1, batch_size))
    if result.broken is not None:
        click.echo(result.broken.describe(), err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"audit trail intact: {result.events} events")
    if result.unsealed_prefix:
        click.echo(f"({result.unsealed_prefix} of them from before the chain began, unhashed)")
    if result.head is not None:
        # Written down elsewhere, this detects a rewrite of the whole chain from some point on.
        click.echo(f"last hash: {result.head}")


# Key rotation --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    """A column that holds Fernet tokens, with the key of its rows and a name for people."""

    label: str
    table: Table
    key: str
    value: str


def encrypted_columns() -> tuple[EncryptedColumn, ...]:
    """Every column encrypted with SOCIALCARE_ENCRYPTION_KEYS."""
    found: list[EncryptedColumn] = []
    for label, model, key, value in (
        ("account credentials", Account, "id", "credentials_encrypted"),
        ("pseudonym keys", PseudonymKey, "month", "key_encrypted"),
        ("stored keys", StoredKey, "name", "key_encrypted"),
        ("second-factor secrets", User, "id", "totp_secret_encrypted"),
    ):
        table = inspect(model).local_table
        assert isinstance(table, Table)
        found.append(EncryptedColumn(label, table, key, value))
    return tuple(found)


class RotationError(RuntimeError):
    """A stored token opens with none of the configured keys; nothing was changed."""


def rotate_keys(*, session: Session, fernet: MultiFernet, batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every encrypted value under the newest key, in the caller's transaction.

    Returns how many values each column held. Destroyed pseudonym keys and users without a
    second factor hold none and are skipped.
    """
    counts: dict[str, int] = {}
    for column in encrypted_columns():
        key, value = column.table.c[column.key], column.table.c[column.value]
        statement = (
            update(column.table)
            .where(key == bindparam("row_key"))
            .values({column.value: bindparam("token")})
        )
        done, after = 0, None
        while True:
            query = select(key, value).where(value.is_not(None)).order_by(key).limit(batch_size)
            if after is not None:
                query = query.where(key > after)
            rows = session.execute(query).all()
            if not rows:
                break
            changes = []
            for row_key, token in rows:
                try:
                    changes.append({"row_key": row_key, "token": fernet.rotate(bytes(token))})
                except InvalidToken:
                    # The row's key is no secret; its value is never shown.
                    raise RotationError(
                        f"{column.label} {row_key!r}: cannot be decrypted with any configured key"
                    ) from None
            session.execute(statement, changes)
            done, after = done + len(rows), rows[-1][0]
        counts[column.label] = done
    return counts


@click.command("rotate-keys")
@with_appcontext
def rotate_keys_command() -> None:
    """Re-encrypt every secret under the newest key in SOCIALCARE_ENCRYPTION_KEYS."""
    try:
        fernet = multi_fernet(current_app.config["ENCRYPTION_KEYS"])
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    with Session(databases(current_app).inbox) as session:
        try:
            counts = rotate_keys(session=session, fernet=fernet)
        except RotationError as exc:
            session.rollback()
            raise click.ClickException(f"Nothing was re-encrypted. {exc}") from None
        audit.record(session=session, action="keys_rotated", user_id=None, detail=counts)
        session.commit()
    for label, count in counts.items():
        click.echo(f"{label}: {count} re-encrypted")
    click.echo(
        "Every secret is now encrypted under the first key. Older keys can be removed from "
        "SOCIALCARE_ENCRYPTION_KEYS once every process runs with this key list."
    )
