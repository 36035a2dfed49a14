"""Keys derived from the configuration."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any


def pseudonym_key(config: Mapping[str, Any]) -> bytes:
    """The key of the research store's author pseudonyms: its own setting, else derived."""
    explicit = str(config.get("PSEUDONYM_KEY") or "")
    if explicit:
        return explicit.encode()
    secret = str(config.get("SECRET_KEY") or "").encode()
    return hmac.new(secret, b"socialcare research pseudonyms v1", hashlib.sha256).digest()
