"""Erasure tombstones: keyed hashes of erased platform ids, so erased items never come back.

A tombstone is HMAC-SHA256 of "<platform>:item:<external id>" (or "<platform>:contact:<user
id>") under an instance key of its own. The key is made on first use and stored encrypted with
the app's MultiFernet (StoredKey "tombstone"); without it the hashes cannot be tested against a
guessed id, so the table names no one.

Ingestion runs in the worker and in webhook views, which hand the ingest service only a
session. The cipher that opens the key is therefore registered per inbox engine when the app is
built (`register`, called from the privacy blueprint's `init_app`); until the first erasure
there is no key and nothing to check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import weakref
from collections.abc import Iterable

from cryptography.fernet import MultiFernet
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from inbox.privacy_models import StoredKey, Tombstone

KEY_NAME = "tombstone"
# Keeps IN lists well under every backend's parameter limit.
_CHUNK = 500

# Engines live as long as their app; the cipher and the opened key go with them.
_ciphers: weakref.WeakKeyDictionary[Engine, MultiFernet] = weakref.WeakKeyDictionary()
_keys: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()


class TombstoneKeyUnavailable(RuntimeError):
    """Tombstones exist but no cipher was registered to open their key."""


def register(*, engine: Engine, fernet: MultiFernet) -> None:
    """Let sessions on this engine open the tombstone key."""
    _ciphers[engine] = fernet


def tombstone_key(*, session: Session, fernet: MultiFernet | None = None) -> bytes:
    """The tombstone key, created (in its own short transaction) on first use."""
    engine = _engine(session)
    cached = _keys.get(engine)
    if cached is not None:
        return cached
    cipher = fernet or _ciphers.get(engine)
    if cipher is None:
        raise TombstoneKeyUnavailable("no encryption keys registered for this database")
    row = session.get(StoredKey, KEY_NAME)
    if row is None:
        with Session(session.get_bind()) as own:
            own.add(StoredKey(name=KEY_NAME, key_encrypted=cipher.encrypt(secrets.token_bytes(32))))
            try:
                own.commit()
            except IntegrityError:  # another process made it first: use theirs
                own.rollback()
        row = session.get(StoredKey, KEY_NAME)
        assert row is not None
    key = cipher.decrypt(row.key_encrypted)
    _keys[engine] = key
    return key


def item_hash(key: bytes, *, platform: str, external_id: str) -> str:
    """The tombstone hash of one platform item (a message's platform id)."""
    return _mac(key, f"{platform}:item:{external_id}")


def contact_hash(key: bytes, *, platform: str, platform_user_id: str) -> str:
    """The tombstone hash of a person's platform user id."""
    return _mac(key, f"{platform}:contact:{platform_user_id}")


def bury(*, session: Session, hashes: Iterable[str], kind: str) -> int:
    """Add tombstones (in the caller's transaction), skipping those already there; count new."""
    wanted = sorted(set(hashes))
    added = 0
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        known = set(session.exec(select(Tombstone.hash).where(col(Tombstone.hash).in_(chunk))))
        rows = [{"hash": h, "kind": kind} for h in chunk if h not in known]
        if rows:
            session.execute(insert(Tombstone), rows)
            added += len(rows)
    return added


def buried_items(*, session: Session, platform: str, external_ids: Iterable[str]) -> set[str]:
    """Which of these platform item ids were erased (one query per 500 ids, none before any)."""
    ids = list(dict.fromkeys(external_ids))
    if not ids:
        return set()
    engine = _engine(session)
    if engine not in _keys and session.get(StoredKey, KEY_NAME) is None:
        return set()  # nothing was ever erased here
    key = tombstone_key(session=session)
    by_hash = {item_hash(key, platform=platform, external_id=i): i for i in ids}
    hashes = list(by_hash)
    found: set[str] = set()
    for start in range(0, len(hashes), _CHUNK):
        chunk = hashes[start : start + _CHUNK]
        found.update(session.exec(select(Tombstone.hash).where(col(Tombstone.hash).in_(chunk))))
    return {by_hash[h] for h in found}


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
