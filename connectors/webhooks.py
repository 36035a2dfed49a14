"""Webhook signature checks and handshakes for Meta (Facebook, Instagram) and X."""

from __future__ import annotations

import base64
import hashlib
import hmac

META_SIGNATURE_PREFIX = "sha256="
X_SIGNATURE_PREFIX = "sha256="


def _digest(secret: str, message: bytes) -> bytes:
    # An empty key would let anyone who guesses the misconfiguration sign deliveries.
    if not secret:
        raise ValueError("a webhook secret must not be empty")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def _matches(expected: str, header: str | None) -> bool:
    if not header:
        return False
    # compare_digest refuses non-ASCII str; bytes compare in constant time whatever they hold.
    return hmac.compare_digest(expected.encode("utf-8"), header.encode("utf-8"))


def meta_signature(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends for this raw body."""
    return META_SIGNATURE_PREFIX + _digest(app_secret, body).hex()


def verify_meta_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether an `X-Hub-Signature-256` header signs this raw body with the app secret."""
    if not app_secret or not header or not header.startswith(META_SIGNATURE_PREFIX):
        return False
    # Hex digits may come in either case; the prefix may not.
    supplied = META_SIGNATURE_PREFIX + header[len(META_SIGNATURE_PREFIX) :].lower()
    return _matches(meta_signature(app_secret, body), supplied)


def verify_meta_subscription(
    mode: str | None, token: str | None, challenge: str | None, expected_token: str
) -> str | None:
    """The challenge to echo when Meta's subscription handshake carries our token, else None."""
    if not expected_token or mode != "subscribe" or not challenge or token is None:
        return None
    return challenge if _matches(expected_token, token) else None


def x_crc_response(consumer_secret: str, crc_token: str) -> str:
    """The `response_token` that answers X's challenge-response check."""
    return X_SIGNATURE_PREFIX + base64.b64encode(
        _digest(consumer_secret, crc_token.encode("utf-8"))
    ).decode("ascii")


def x_signature(consumer_secret: str, body: bytes) -> str:
    """The `x-twitter-webhooks-signature` value X sends for this raw body."""
    return X_SIGNATURE_PREFIX + base64.b64encode(_digest(consumer_secret, body)).decode("ascii")


def verify_x_signature(consumer_secret: str, body: bytes, header: str | None) -> bool:
    """Whether an `x-twitter-webhooks-signature` header signs this raw body."""
    if not consumer_secret or not header or not header.startswith(X_SIGNATURE_PREFIX):
        return False
    return _matches(x_signature(consumer_secret, body), header)
