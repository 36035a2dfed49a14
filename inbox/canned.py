"""Canned replies with placeholders, and the signatures agents sign their replies with."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session, col, select

from inbox.models import Account, Contact, Conversation, Role, User
from inbox.types import utcnow
from inbox.workflow_models import AccountMember, CannedReply

PLACEHOLDERS = ("first_name", "agent_name", "agent_signature", "account_name")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_LANGUAGE = re.compile(r"[a-z]{2,3}")
TITLE_MAX, SIGNATURE_MAX = 120, 16


class CannedError(ValueError):
    """A canned reply or signature cannot be saved as entered; `field` names the culprit."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


@dataclass(frozen=True, slots=True)
class Member:
    """An agent's membership on an account, with their name for the admin page."""

    account_id: int
    user_id: int
    name: str
    signature: str


def canned_for(*, session: Session, account_id: int, language: str | None) -> list[CannedReply]:
    """The canned replies offered on an account: the conversation's language first, then any."""
    replies = session.exec(
        select(CannedReply).where(
            (col(CannedReply.account_id) == account_id) | col(CannedReply.account_id).is_(None)
        )
    ).all()

    def rank(reply: CannedReply) -> tuple[int, str, int]:
        if language and reply.language == language:
            group = 0
        else:
            group = 1 if not reply.language else 2
        return group, reply.title.casefold(), reply.id or 0

    return sorted(replies, key=rank)


def find_canned(*, session: Session, canned_id: int, account_id: int) -> CannedReply | None:
    """A canned reply offered on this account, or None."""
    reply = session.get(CannedReply, canned_id)
    if reply is None or reply.account_id not in (None, account_id):
        return None
    return reply


def all_canned(*, session: Session) -> list[CannedReply]:
    """Every canned reply, for the admin list: all-account ones first, then by account and title."""
    replies = session.exec(select(CannedReply)).all()
    return sorted(
        replies, key=lambda r: (r.account_id or 0, r.language, r.title.casefold(), r.id or 0)
    )


def save_canned(
    *,
    session: Session,
    reply: CannedReply | None,
    account_id: int | None,
    language: str,
    title: str,
    text: str,
) -> CannedReply:
    """Create or update a canned reply after checking its fields; the caller commits."""
    language, title, text = language.strip().lower(), title.strip(), text.strip()
    if account_id is not None and session.get(Account, account_id) is None:
        raise CannedError("account")
    if language and not _LANGUAGE.fullmatch(language):
        raise CannedError("language")
    if not title or len(title) > TITLE_MAX:
        raise CannedError("title")
    if not text:
        raise CannedError("text")
    reply = reply or CannedReply(title=title, text=text)
    reply.account_id, reply.language, reply.title, reply.text = account_id, language, title, text
    reply.updated_at = utcnow()
    session.add(reply)
    session.flush()
    return reply


def resolve(text: str, values: Mapping[str, str]) -> str:
    """Fill in the known placeholders; unknown ones stay as typed so the agent sees them."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def placeholder_values(
    *, session: Session, conversation: Conversation, agent: User
) -> dict[str, str]:
    """What each placeholder stands for in this conversation, written by this agent."""
    contact = session.get(Contact, conversation.contact_id)
    account = session.get(Account, conversation.account_id)
    assert contact is not None and account is not None and agent.id is not None
    words = (contact.display_name or "").split()
    return {
        "first_name": words[0] if words else "",
        "agent_name": agent.name,
        "agent_signature": signature_for(
            session=session, account_id=account.id or 0, user_id=agent.id
        ),
        "account_name": account.display_name,
    }


def signature_for(*, session: Session, account_id: int, user_id: int) -> str:
    """The agent's signature on this account, or "" if they have none."""
    member = session.get(AccountMember, (account_id, user_id))
    return member.signature if member is not None else ""


def with_signature(text: str, signature: str) -> str:
    """The reply as it goes out: signed at the end, unless empty or already signed."""
    text = text.strip()
    if not text or not signature or text.endswith(signature):
        return text
    return f"{text} {signature}"


def members(*, session: Session) -> list[Member]:
    """Every membership with the agent's name, by account and name."""
    rows = session.exec(
        select(AccountMember, User)
        .join(User, col(User.id) == AccountMember.user_id)
        .order_by(col(AccountMember.account_id), col(User.name), col(User.id))
    ).all()
    return [Member(m.account_id, m.user_id, u.name, m.signature) for m, u in rows]


def set_member(*, session: Session, account_id: int, user_id: int, signature: str) -> AccountMember:
    """Make the user a member of the account with this signature; the caller commits."""
    signature = signature.strip()
    if len(signature) > SIGNATURE_MAX:
        raise CannedError("signature")
    user = session.get(User, user_id)
    if user is None or user.role not in (Role.agent, Role.admin):
        raise CannedError("user")
    if session.get(Account, account_id) is None:
        raise CannedError("account")
    member = session.get(AccountMember, (account_id, user_id))
    member = member or AccountMember(account_id=account_id, user_id=user_id)
    member.signature = signature
    session.add(member)
    session.flush()
    return member


def remove_member(*, session: Session, account_id: int, user_id: int) -> bool:
    """End the user's membership of the account; False if there was none."""
    member = session.get(AccountMember, (account_id, user_id))
    if member is None:
        return False
    session.delete(member)
    session.flush()
    return True
