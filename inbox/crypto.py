"""Platform credentials encrypted at rest with MultiFernet (newest key first, old keys read)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from cryptography.fernet import InvalidToken, MultiFernet


class CredentialsError(RuntimeError):
    """Stored credentials cannot be read with the configured keys."""


def encrypt_credentials(fernet: MultiFernet, credentials: Mapping[str, str]) -> bytes:
    """Encrypt a credentials mapping under the newest key."""
    return fernet.encrypt(json.dumps(dict(credentials), sort_keys=True).encode())


def decrypt_credentials(fernet: MultiFernet, blob: bytes) -> dict[str, str]:
    """Decrypt stored credentials, or say that the keys do not fit (never what the blob holds)."""
    try:
        data = json.loads(fernet.decrypt(blob))
    except InvalidToken:
        raise CredentialsError(
            "Stored credentials cannot be decrypted with SOCIALCARE_ENCRYPTION_KEYS."
        ) from None
    return {str(key): str(value) for key, value in data.items()}
