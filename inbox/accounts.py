"""Connecting official accounts and building their connectors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.fernet import MultiFernet
from sqlalchemy import bindparam
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from connectors import Connector, get_connector
from inbox.crypto import decrypt_credentials, encrypt_credentials
from inbox.models import Account, AccountStatus, Role, User
from inbox.types import utcnow
from inbox.workflow_models import AccountMember

# What an admin enters per platform: secret credentials (stored encrypted) and plain settings.
PLATFORM_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "x": (
        ("consumer_key", "consumer_secret", "access_token", "access_token_secret"),
        ("username",),
    ),
    "facebook": (("page_access_token",), ("page_id",)),
    "instagram": (("page_access_token",), ("ig_user_id", "page_id")),
    "demo": ((), ()),
}


def visible_accounts(*, session: Session, user_id: int, role: Role) -> frozenset[int] | None:
    """The accounts whose conversations a user may see: None for all (admins), else the
    accounts an agent is a member of (none for every other role)."""
    if role == Role.admin:
        return None
    if role != Role.agent:
        return frozenset()
    members = select(AccountMember.account_id).where(AccountMember.user_id == user_id)
    return frozenset(session.exec(members).all())


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What a request needs to know of its logged-in user, read on every request."""

    id: int
    name: str
    role: Role
    active: bool
    session_version: int
    totp_enabled_at: datetime | None
    totp_secret_encrypted: bytes | None
    password_change_required: bool


_FACTS = tuple(getattr(User, field) for field in SessionFacts.__slots__)
# Plain columns, no ORM entity: loading a User object cost twice the query's own time.
_USER_AND_ACCOUNTS = (
    select_columns(*_FACTS, col(AccountMember.account_id))
    .select_from(User)
    .outerjoin(AccountMember, col(AccountMember.user_id) == col(User.id))
    .where(col(User.id) == bindparam("user_id"))
)


def user_and_accounts(
    *, session: Session, user_id: int
) -> tuple[SessionFacts | None, frozenset[int] | None]:
    """A user's session facts and the accounts they may see (as `visible_accounts`), in one
    round trip: this runs on every request, and a second query for the memberships cost as
    much as the first."""
    rows = session.connection().execute(_USER_AND_ACCOUNTS, {"user_id": user_id}).all()
    if not rows:
        return None, frozenset()
    facts = SessionFacts(*rows[0][:-1])
    if facts.role == Role.admin:
        return facts, None
    if facts.role != Role.agent:
        return facts, frozenset()
    return facts, frozenset(row[-1] for row in rows if row[-1] is not None)


def set_status(*, session: Session, account: Account, status: AccountStatus) -> Account:
    """Pause or resume polling; resuming clears the waits so the next poll runs at once."""
    account.status = status
    if status == AccountStatus.active:
        account.rate_limited_until = account.backoff_until = None
        account.consecutive_failures = 0
    session.add(account)
    session.commit()
    return account


class AlreadyConnected(Exception):
    """The platform says these credentials belong to an account connected already."""

    def __init__(self, account: Account) -> None:
        super().__init__(f"account {account.id} is connected already")
        self.account = account


def connect_account(
    *,
    session: Session,
    fernet: MultiFernet,
    platform: str,
    credentials: Mapping[str, str],
    settings: Mapping[str, Any] | None = None,
    sla_minutes: int = 30,
    poll_interval_seconds: int = 60,
    only_new: bool = False,
) -> Account:
    """Connect (or reconnect) an official account after asking the platform who it is.

    With `only_new`, an account that is connected already is left as it is and
    AlreadyConnected raised: the connect form must not overwrite its settings.
    """
    settings = dict(settings or {})
    identity = get_connector(platform, credentials, settings).identity()
    account = session.exec(
        select(Account).where(
            Account.platform == platform, Account.platform_account_id == identity.account_ref
        )
    ).first()
    if account is not None and only_new:
        raise AlreadyConnected(account)
    if account is None:
        account = Account(
            platform=platform,
            platform_account_id=identity.account_ref,
            display_name=identity.display_name,
            credentials_encrypted=b"",
        )
    account.display_name = identity.display_name
    account.handle = identity.handle
    account.credentials_encrypted = encrypt_credentials(fernet, credentials)
    # Connectors read their own id from here instead of asking the platform on every poll.
    account.settings = {**settings, "account_ref": identity.account_ref}
    account.sla_minutes = sla_minutes
    account.poll_interval_seconds = poll_interval_seconds
    account.status = AccountStatus.active
    session.add(account)
    session.commit()
    return account


def connector_for(account: Account, fernet: MultiFernet) -> Connector:
    """The connector that reads and posts as this official account."""
    credentials = decrypt_credentials(fernet, account.credentials_encrypted)
    return get_connector(account.platform, credentials, account.settings)


def describe_state(account: Account) -> str:
    """One line of what the worker does with the account and why."""
    now = utcnow()
    last = (
        account.last_polled_at.isoformat(timespec="seconds") if account.last_polled_at else "never"
    )
    if account.status != AccountStatus.active:
        return f"{account.status.value}, last poll {last}"
    if account.rate_limited_until and account.rate_limited_until > now:
        until = account.rate_limited_until.isoformat(timespec="seconds")
        return f"rate-limited until {until}, last poll {last}"
    if account.backoff_until and account.backoff_until > now:
        until = account.backoff_until.isoformat(timespec="seconds")
        return f"backing off until {until} after {account.consecutive_failures} failures"
    return f"active, polled every {account.poll_interval_seconds} s, last poll {last}"
