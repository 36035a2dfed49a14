"""`socialcare rotate-keys`: every secret re-encrypted under the newest key, counted, audited;
afterwards the old key can go."""

from __future__ import annotations

from pathlib import Path

import pyotp
from cryptography.fernet import Fernet, MultiFernet
from flask import Flask
from sqlmodel import Session, select

from inbox import create_app, pseudonyms, tombstones
from inbox.accounts import connector_for
from inbox.config import multi_fernet
from inbox.crypto import decrypt_credentials
from inbox.db import databases
from inbox.models import Account, AuditEvent, PseudonymKey, Role
from inbox.privacy_models import StoredKey
from inbox.types import utcnow
from tests.conftest import DatabaseUrls, app_config, make_account, make_user


def test_rotation_leaves_nothing_the_old_key_is_needed_for(
    app: Flask, database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    old_key, new_key = app.config["ENCRYPTION_KEYS"], Fernet.generate_key().decode()
    old = multi_fernet(old_key)
    engine = databases(app).inbox
    totp_secret = pyotp.random_base32()
    with Session(engine, expire_on_commit=False) as session:
        account = make_account(session, old)
        user = make_user(session, role=Role.agent)
        user.totp_secret_encrypted = old.encrypt(totp_secret.encode())
        session.add(user)
        session.commit()
        key = pseudonyms.key_for(session=session, fernet=old, moment=utcnow())
        tombstone_key = tombstones.tombstone_key(session=session, fernet=old)
        # A destroyed month's key is gone for good: nothing to rotate there.
        session.add(PseudonymKey(month="2020-01", key_encrypted=None, destroyed_at=utcnow()))
        session.commit()

    rotating = create_app(
        app_config(database_urls, tmp_path, ENCRYPTION_KEYS=f"{new_key},{old_key}")
    )
    result = rotating.test_cli_runner().invoke(args=["rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "account credentials: 1 re-encrypted" in result.output
    assert "pseudonym keys: 1 re-encrypted" in result.output
    assert "stored keys: 1 re-encrypted" in result.output
    assert "second-factor secrets: 1 re-encrypted" in result.output
    # Counts, never values.
    assert totp_secret not in result.output and "demo-token" not in result.output
    databases(rotating).inbox.dispose()

    only_new = create_app(app_config(database_urls, tmp_path, ENCRYPTION_KEYS=new_key))
    new = MultiFernet([Fernet(new_key)])
    with Session(databases(only_new).inbox) as session:
        stored = session.get(Account, account.id)
        assert stored is not None
        assert connector_for(stored, new) is not None  # raises when the token does not open
        assert decrypt_credentials(new, stored.credentials_encrypted) == {"token": "demo-token"}
        assert pseudonyms.key_for(session=session, fernet=new, moment=utcnow()) == key
        row = session.get(StoredKey, tombstones.KEY_NAME)
        assert row is not None and new.decrypt(row.key_encrypted) == tombstone_key
        audited = session.exec(select(AuditEvent.detail).where(AuditEvent.action == "keys_rotated"))
        assert list(audited) == [
            {
                "account credentials": 1,
                "pseudonym keys": 1,
                "stored keys": 1,
                "second-factor secrets": 1,
            }
        ]
        stored_user = session.get(type(user), user.id)
        assert stored_user is not None and stored_user.totp_secret_encrypted is not None
        assert new.decrypt(stored_user.totp_secret_encrypted).decode() == totp_secret
    databases(only_new).inbox.dispose()


def test_a_value_no_key_opens_stops_the_rotation_before_anything_changes(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    first = make_account(session, fernet)
    stranger = MultiFernet([Fernet(Fernet.generate_key())])
    second = make_account(session, stranger)
    before = {a.id: a.credentials_encrypted for a in session.exec(select(Account)).all()}

    result = app.test_cli_runner().invoke(args=["rotate-keys"])

    assert result.exit_code == 1
    assert f"account credentials {second.id}: cannot be decrypted" in result.output
    assert "Nothing was re-encrypted" in result.output
    session.expire_all()
    after = {a.id: a.credentials_encrypted for a in session.exec(select(Account)).all()}
    assert after == before and first.id in after
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "keys_rotated")).all() == []


def test_rotating_many_rows_goes_in_batches(app: Flask, session: Session) -> None:
    from inbox.cli_audit import rotate_keys

    old_key, new_key = app.config["ENCRYPTION_KEYS"], Fernet.generate_key().decode()
    old = multi_fernet(old_key)
    for month in range(1, 13):
        session.add(PseudonymKey(month=f"2025-{month:02d}", key_encrypted=old.encrypt(b"k")))
    session.commit()
    new = multi_fernet(f"{new_key},{old_key}")

    counts = rotate_keys(session=session, fernet=new, batch_size=5)
    session.commit()

    assert counts["pseudonym keys"] == 12
    newest = multi_fernet(new_key)
    tokens = session.exec(select(PseudonymKey.key_encrypted)).all()
    assert {newest.decrypt(token) for token in tokens if token is not None} == {b"k"}
