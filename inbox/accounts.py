"""Connecting official accounts and building their connectors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.fernet import MultiFernet
from sqlmodel import Session, select

from connectors import Connector, get_connector
from inbox.crypto import decrypt_credentials, encrypt_credentials
from inbox.models import Account, AccountStatus


def connect_account(
    *,
    session: Session,
    fernet: MultiFernet,
    platform: str,
    credentials: Mapping[str, str],
    settings: Mapping[str, Any] | None = None,
    sla_minutes: int = 30,
    poll_interval_seconds: int = 60,
) -> Account:
    """Connect (or reconnect) an official account after asking the platform who it is."""
    settings = dict(settings or {})
    identity = get_connector(platform, credentials, settings).identity()
    account = session.exec(
        select(Account).where(
            Account.platform == platform, Account.platform_account_id == identity.account_ref
        )
    ).first()
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
    account.settings = settings
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
