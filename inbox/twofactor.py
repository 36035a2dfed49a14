"""The TOTP second factor: enrolment, codes, recovery codes, and who must have it."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from typing import Literal, Protocol

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import InvalidToken, MultiFernet
from sqlmodel import Session

from inbox.models import Role, User
from inbox.privacy_models import Setting
from inbox.types import utcnow

ISSUER = "socialcare"
REQUIRED_ROLES = frozenset({Role.admin, Role.dpo})
REQUIRE_ALL_SETTING = "require_2fa_for_all"
RECOVERY_CODE_COUNT = 10
STEP_SECONDS = 30
# Recovery codes are 10 random characters from 31 (about 50 bits): guessing them is hopeless
# whatever the work factor, so a light argon2 keeps 10 hashes quick while the stored hashes
# still do not reveal the codes.
_recovery_hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"

Method = Literal["totp", "recovery_code"]


class TwoFactorError(ValueError):
    """The stored secret cannot be read with the configured keys."""


def require_for_all(*, session: Session) -> bool:
    """Whether an admin has required the second factor for every user."""
    setting = session.get(Setting, REQUIRE_ALL_SETTING)
    return bool(setting.value) if setting is not None else False


def set_require_for_all(*, session: Session, value: bool) -> bool:
    """Require (or stop requiring) the second factor for everyone; returns the old value."""
    old = require_for_all(session=session)
    setting = session.get(Setting, REQUIRE_ALL_SETTING) or Setting(
        key=REQUIRE_ALL_SETTING, value=value
    )
    setting.value = value
    setting.updated_at = utcnow()
    session.add(setting)
    return old


def is_required(*, session: Session, user: User) -> bool:
    """Whether this user may not work without a second factor."""
    return user.role in REQUIRED_ROLES or require_for_all(session=session)


class _SecondFactor(Protocol):
    """A user row, or the facts a request reads of one (inbox.accounts.SessionFacts)."""

    @property
    def totp_enabled_at(self) -> datetime | None: ...

    @property
    def totp_secret_encrypted(self) -> bytes | None: ...


def is_enabled(user: _SecondFactor) -> bool:
    """Whether the user has a confirmed second factor."""
    return user.totp_enabled_at is not None and user.totp_secret_encrypted is not None


def new_secret() -> str:
    """A fresh random TOTP secret (base32)."""
    return pyotp.random_base32()


def provisioning_uri(*, secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of a URI as inline SVG markup, made here: no script, no outside service."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff"))


def pending_secret(*, session: Session, user: User, fernet: MultiFernet) -> str:
    """The unconfirmed secret of a first enrolment: the stored one, or a new one stored now."""
    if is_enabled(user):
        raise ValueError("the second factor is enabled already; re-enrol with a held secret")
    if user.totp_secret_encrypted is not None:
        try:
            return _decrypt(fernet, user.totp_secret_encrypted)
        except TwoFactorError:
            pass  # the keys changed since: a new secret is as good, nothing was confirmed
    secret = new_secret()
    user.totp_secret_encrypted = fernet.encrypt(secret.encode())
    session.add(user)
    session.commit()
    return secret


def matching_step(*, secret: str, code: str, now: datetime, after: int | None = None) -> int | None:
    """The 30-second step (now ± one) whose code this is and which is later than `after`."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def enable(
    *, session: Session, user: User, fernet: MultiFernet, secret: str, step: int
) -> list[str]:
    """Turn the second factor on with a confirmed secret; returns recovery codes to show once."""
    user.totp_secret_encrypted = fernet.encrypt(secret.encode())
    user.totp_enabled_at = utcnow()
    user.totp_last_step = step
    codes = _set_recovery_codes(user)
    session.add(user)
    session.commit()
    return codes


def verify(
    *, session: Session, user: User, fernet: MultiFernet, code: str, now: datetime
) -> Method | None:
    """Check a login code: a TOTP code not used before, or a recovery code (used up now)."""
    if not is_enabled(user):
        return None
    assert user.totp_secret_encrypted is not None
    secret = _decrypt(fernet, user.totp_secret_encrypted)
    step = matching_step(secret=secret, code=code, now=now, after=user.totp_last_step)
    if step is not None:
        user.totp_last_step = step
        session.add(user)
        session.commit()
        return "totp"
    if use_recovery_code(session=session, user=user, code=code):
        return "recovery_code"
    return None


def check_current_code(*, user: User, fernet: MultiFernet, code: str, now: datetime) -> bool:
    """Whether this is a current TOTP code of the user (to confirm a change, not to log in)."""
    if not is_enabled(user):
        return False
    assert user.totp_secret_encrypted is not None
    secret = _decrypt(fernet, user.totp_secret_encrypted)
    return matching_step(secret=secret, code=code, now=now) is not None


def use_recovery_code(*, session: Session, user: User, code: str) -> bool:
    """Accept one of the user's recovery codes and remove it, so it works only once."""
    normalized = _normalize(code)
    if len(normalized) != 10:
        return False
    for stored in user.recovery_codes:
        try:
            _recovery_hasher.verify(stored, normalized)
        except (VerificationError, InvalidHashError):
            continue
        # A new list: the JSON column notices only assignments, not changes in place.
        user.recovery_codes = [other for other in user.recovery_codes if other != stored]
        session.add(user)
        session.commit()
        return True
    return False


def new_recovery_codes(*, session: Session, user: User) -> list[str]:
    """Replace the user's recovery codes with new ones; returns them to show once."""
    codes = _set_recovery_codes(user)
    session.add(user)
    session.commit()
    return codes


def disable(*, session: Session, user: User) -> None:
    """Remove the user's second factor: secret, codes and the last used step."""
    user.totp_secret_encrypted = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.recovery_codes = []
    session.add(user)
    session.commit()


def _set_recovery_codes(user: User) -> list[str]:
    codes = [
        "".join(secrets.choice(_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODE_COUNT)
    ]
    user.recovery_codes = [_recovery_hasher.hash(code) for code in codes]
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def _normalize(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _decrypt(fernet: MultiFernet, blob: bytes) -> str:
    try:
        return fernet.decrypt(blob).decode()
    except InvalidToken:
        raise TwoFactorError(
            "The TOTP secret cannot be decrypted with the configured keys."
        ) from None
