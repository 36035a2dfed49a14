"""Tables of the agents' workflow: tags, internal notes, canned replies, memberships, presence."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from inbox.types import UTCDateTime, utcnow


class ConversationTag(SQLModel, table=True):
    """One tag on one conversation; a table rather than a JSON list so views can filter on it."""

    __table_args__ = (Index("ix_conversationtag_tag", "tag", "conversation_id"),)

    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True)
    tag: str = Field(max_length=64, primary_key=True)


class Note(SQLModel, table=True):
    """An internal note on a conversation: seen by colleagues, never sent to the customer."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    author_user_id: int = Field(foreign_key="user.id")
    text: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CannedReply(SQLModel, table=True):
    """A reply text admins prepare, with placeholders such as {first_name} and {agent_signature}."""

    id: int | None = Field(default=None, primary_key=True)
    # None: offered on every account.
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    # ISO 639-1 code, or "" for any language.
    language: str = Field(default="", max_length=8)
    title: str = Field(max_length=120)
    text: str = Field(sa_type=Text)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AccountMember(SQLModel, table=True):
    """An agent working on an official account, with the signature their replies carry there."""

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    user_id: int = Field(foreign_key="user.id", primary_key=True)
    # Appended to the agent's replies on this account so customers see who answers ("^JS").
    signature: str = Field(default="", max_length=16)


class Presence(SQLModel, table=True):
    """Who has a conversation open right now, and whether they are typing a reply."""

    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True)
    user_id: int = Field(foreign_key="user.id", primary_key=True)
    typing: bool = Field(default=False)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
