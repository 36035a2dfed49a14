"""Users and their passwords (argon2id)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import or_
from sqlmodel import Session, col, func, select

from inbox.models import Role, User
from inbox.types import utcnow
from inbox.workflow_models import AccountMember

_hasher = PasswordHasher()


class UserError(ValueError):
    """A user cannot be created as asked."""


def generate_password() -> str:
    """A random password for a seeded or invited user."""
    return secrets.token_urlsafe(12)


def create_user(*, session: Session, email: str, name: str, role: Role, password: str) -> User:
    """Create a user with an argon2 password hash."""
    email = email.strip().lower()
    if len(password) < 10:
        raise UserError("Passwords need at least 10 characters.")
    if session.exec(select(User).where(func.lower(User.email) == email)).first() is not None:
        raise UserError(f"A user with the e-mail {email} exists already.")
    user = User(email=email, name=name, role=role, password_hash=_hasher.hash(password))
    session.add(user)
    session.commit()
    return user


def find_user(*, session: Session, email: str) -> User | None:
    """The user with this e-mail address, in any case and with spaces around it."""
    return session.exec(select(User).where(func.lower(User.email) == email.strip().lower())).first()


def check_password(*, session: Session, email: str, password: str) -> User | None:
    """The active user with these credentials, or None without saying which part was wrong."""
    user = find_user(session=session, email=email)
    if user is None or not user.active:
        # Hash anyway so the response time does not tell whether the e-mail exists.
        _hasher.hash(password)
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.add(user)
    return user


def mark_logged_in(*, session: Session, user: User) -> None:
    """Note the time of a completed login (the caller commits)."""
    user.last_login_at = utcnow()
    session.add(user)


def authenticate(*, session: Session, email: str, password: str) -> User | None:
    """Check the password and note the login: for logins without a second step."""
    user = check_password(session=session, email=email, password=password)
    if user is not None:
        mark_logged_in(session=session, user=user)
        session.commit()
    return user


MIN_PASSWORD_LENGTH = 12


def change_password(*, session: Session, user: User, current: str, new: str, repeat: str) -> None:
    """Set a new password the user chose; raises UserError saying what is wrong.

    Every other session of the user ends (the caller keeps the current one going) and a
    required change counts as done. The caller audits and commits.
    """
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise UserError("current") from None
    if len(new) < MIN_PASSWORD_LENGTH:
        raise UserError("short")
    if new != repeat:
        raise UserError("repeat")
    if new == current:
        raise UserError("same")
    name = user.email.split("@")[0].lower()
    if len(name) >= 4 and name in new.lower():
        raise UserError("email")
    user.password_hash = _hasher.hash(new)
    user.password_change_required = False
    end_sessions(session=session, user=user)


def set_role(*, session: Session, user: User, role: Role) -> Role:
    """Give the user another role; returns the old one (the caller audits and commits)."""
    old = user.role
    user.role = role
    session.add(user)
    return old


def end_sessions(*, session: Session, user: User) -> None:
    """Log the user out everywhere: every session made before this stops working."""
    user.session_version += 1
    session.add(user)


def active_agents(*, session: Session, account_id: int | None = None) -> list[User]:
    """Active agents and admins, by name: who may answer customers and take conversations
    (on `account_id`: its member agents and every admin)."""
    query = select(User).where(col(User.active), col(User.role).in_([Role.agent, Role.admin]))
    if account_id is not None:
        members = select(AccountMember.user_id).where(AccountMember.account_id == account_id)
        query = query.where(or_(col(User.role) == Role.admin, col(User.id).in_(members)))
    return list(session.exec(query.order_by(col(User.name), col(User.id))).all())
