"""Webhook signatures and handshakes: the published vectors, forgeries and misconfiguration."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from connectors.webhooks import (
    meta_signature,
    verify_meta_signature,
    verify_meta_subscription,
    verify_x_signature,
    x_crc_response,
    x_signature,
)

META_SECRET = "test-app-secret"
META_BODY = b'{"object":"page","entry":[]}'
META_VECTOR = "sha256=1a82db3abc2fa71a3fffecfedef579a8468a44850cd8a83a0c56974faff81689"

X_SECRET = "test-consumer-secret"
X_BODY = b'{"for_user_id":"42","tweet_create_events":[]}'
X_VECTOR = "sha256=gj1CA5wKUR6sJZBwx6cIbDD9o79j2aigm/TLH7+EBsQ="
CRC_VECTOR = "sha256=m3yscIcSwL62BbDuWy/k/ml4+4Yfj3c0hep3IWko1Ws="


def test_meta_signature_matches_the_vector() -> None:
    assert meta_signature(META_SECRET, META_BODY) == META_VECTOR
    assert verify_meta_signature(META_SECRET, META_BODY, META_VECTOR)


def test_meta_signature_accepts_upper_case_hex() -> None:
    upper = "sha256=" + META_VECTOR.removeprefix("sha256=").upper()
    assert verify_meta_signature(META_SECRET, META_BODY, upper)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha256=nothex",
        "sha256=" + "0" * 64,
        META_VECTOR.removeprefix("sha256="),  # digest without its prefix
        META_VECTOR.replace("sha256=", "sha1="),
        META_VECTOR.replace("sha256=", "SHA256="),
        META_VECTOR + "00",
        META_VECTOR[:-1],
        "sha256=ünïcödé",
        " " + META_VECTOR,
    ],
)
def test_meta_signature_refuses_forged_or_garbled_headers(header: str | None) -> None:
    assert not verify_meta_signature(META_SECRET, META_BODY, header)


def test_meta_signature_refuses_legacy_sha1_header() -> None:
    legacy = "sha1=" + hmac.new(META_SECRET.encode(), META_BODY, hashlib.sha1).hexdigest()
    assert not verify_meta_signature(META_SECRET, META_BODY, legacy)


def test_meta_signature_is_over_the_exact_raw_body() -> None:
    reformatted = b'{"object": "page", "entry": []}'
    assert not verify_meta_signature(META_SECRET, reformatted, META_VECTOR)
    assert not verify_meta_signature("other-secret", META_BODY, META_VECTOR)


def test_an_empty_secret_never_verifies_and_never_signs() -> None:
    empty_key_signature = "sha256=" + hmac.new(b"", META_BODY, hashlib.sha256).hexdigest()
    assert not verify_meta_signature("", META_BODY, empty_key_signature)
    assert not verify_x_signature("", X_BODY, x_signature("k", X_BODY))
    for sign in (meta_signature, x_signature):
        with pytest.raises(ValueError, match="must not be empty"):
            sign("", META_BODY)
    with pytest.raises(ValueError, match="must not be empty"):
        x_crc_response("", "crc-token-123")


def test_x_crc_response_matches_the_vector() -> None:
    assert x_crc_response(X_SECRET, "crc-token-123") == CRC_VECTOR


def test_x_signature_matches_the_vector() -> None:
    assert x_signature(X_SECRET, X_BODY) == X_VECTOR
    assert verify_x_signature(X_SECRET, X_BODY, X_VECTOR)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        X_VECTOR.removeprefix("sha256="),
        "sha256=" + "A" * 44,
        X_VECTOR.replace("sha256=", "sha1="),
        X_VECTOR[:-2],
        "sha256=ÄÖÜ",
        # Meta's hex form of the same HMAC is not X's base64 form.
        "sha256=" + hmac.new(X_SECRET.encode(), X_BODY, hashlib.sha256).hexdigest(),
    ],
)
def test_x_signature_refuses_forged_or_garbled_headers(header: str | None) -> None:
    assert not verify_x_signature(X_SECRET, X_BODY, header)


def test_x_signature_is_over_the_exact_raw_body() -> None:
    assert not verify_x_signature(X_SECRET, X_BODY + b"\n", X_VECTOR)
    assert not verify_x_signature("other-secret", X_BODY, X_VECTOR)


def test_meta_subscription_echoes_the_challenge_for_our_token() -> None:
    assert verify_meta_subscription("subscribe", "our-token", "1158201444", "our-token") == (
        "1158201444"
    )


@pytest.mark.parametrize(
    ("mode", "token", "challenge", "expected"),
    [
        ("subscribe", "wrong", "1158201444", "our-token"),
        ("subscribe", None, "1158201444", "our-token"),
        ("subscribe", "", "1158201444", "our-token"),
        ("unsubscribe", "our-token", "1158201444", "our-token"),
        (None, "our-token", "1158201444", "our-token"),
        ("subscribe", "our-token", None, "our-token"),
        ("subscribe", "our-token", "", "our-token"),
        ("subscribe", "our-token-and-more", "1158201444", "our-token"),
        ("subscribe", "", "1158201444", ""),  # a missing token never matches an empty one
        ("subscribe", "tökén", "1158201444", "token"),
    ],
)
def test_meta_subscription_refuses_anything_else(
    mode: str | None, token: str | None, challenge: str | None, expected: str
) -> None:
    assert verify_meta_subscription(mode, token, challenge, expected) is None


def test_meta_subscription_token_may_hold_any_characters() -> None:
    assert verify_meta_subscription("subscribe", "tökén", "42", "tökén") == "42"
