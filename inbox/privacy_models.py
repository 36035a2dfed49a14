"""Tables of the privacy controls: consent, consent texts, erasure tombstones, login throttling,
instance settings and stored keys."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from inbox.types import UTCDateTime, utcnow

JSON_TYPE = JSON().with_variant(JSONB(), "postgresql")


class ConsentPurpose(StrEnum):
    """Why we may contact someone: answering them, or marketing to them."""

    service = "service"
    marketing = "marketing"


class ConsentText(SQLModel, table=True):
    """A version of the text a contact agrees to; records point at the version they saw."""

    __table_args__ = (UniqueConstraint("purpose", "language", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    purpose: str = Field(max_length=16)
    language: str = Field(max_length=8)
    version: int
    text: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by_user_id: int | None = Field(default=None, foreign_key="user.id")


class ConsentRecord(SQLModel, table=True):
    """One consent a contact gave, for one channel and purpose, until withdrawn."""

    __table_args__ = (Index("ix_consentrecord_contact", "contact_id", "channel", "purpose"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id")
    # The contact's channel on their platform: "dm", "mention" or "comment".
    channel: str = Field(max_length=16)
    purpose: str = Field(max_length=16)
    given_at: datetime = Field(sa_type=UTCDateTime)
    # How it was given, in words: "customer wrote first", "web form", "agent recorded …".
    source: str = Field(max_length=200)
    text_id: int | None = Field(default=None, foreign_key="consenttext.id")
    recorded_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    withdrawn_by_user_id: int | None = Field(default=None, foreign_key="user.id")


class Tombstone(SQLModel, table=True):
    """A keyed hash of a platform id that was erased: the same item is never ingested again."""

    hash: str = Field(primary_key=True, max_length=64)
    # "contact" (a platform user id) or "item" (a message's platform id).
    kind: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StoredKey(SQLModel, table=True):
    """A key the instance made for itself (e.g. the tombstone key), encrypted like credentials."""

    name: str = Field(primary_key=True, max_length=32)
    key_encrypted: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Setting(SQLModel, table=True):
    """An instance-wide setting admins change in the UI (e.g. two factors for everyone)."""

    key: str = Field(primary_key=True, max_length=64)
    value: Any = Field(sa_column=Column(JSON_TYPE, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LoginThrottle(SQLModel, table=True):
    """Failed logins per e-mail or address (keyed by a hash), whether or not the e-mail exists."""

    key: str = Field(primary_key=True, max_length=64)
    failures: int = Field(default=0)
    first_failure_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
