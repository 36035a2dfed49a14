"""Tables of the inbox database: official accounts, contacts, conversations, messages, users."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from inbox.types import UTCDateTime, utcnow

JSON_TYPE = JSON().with_variant(JSONB(), "postgresql")


def _optional_at() -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=True)


def _enum(enum: type[StrEnum], default: StrEnum | None = None, *, nullable: bool = False) -> Any:
    # Plain strings, not native enum types: adding a value later needs no type migration.
    column_type = SAEnum(
        enum, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e]
    )
    if default is None and not nullable:
        return Field(sa_type=column_type)
    return Field(default=default, sa_type=column_type, nullable=nullable)


def _json(factory: type[dict[str, Any]] | type[list[Any]]) -> Any:
    return Field(default_factory=factory, sa_column=Column(JSON_TYPE, nullable=False))


class Role(StrEnum):
    """What a user may do; see the permission table in DESIGN.md."""

    agent = "agent"
    marketing = "marketing"
    admin = "admin"
    # The data-protection officer: answers data-subject requests and reads the audit trail.
    dpo = "dpo"


class AccountStatus(StrEnum):
    """Whether the worker polls an account."""

    active = "active"
    paused = "paused"
    # The platform revoked or expired the token: nothing is polled until an admin reconnects.
    needs_reconnection = "needs_reconnection"


class ConversationStatus(StrEnum):
    """Where a conversation stands in the agents' workflow."""

    open = "open"
    pending = "pending"
    closed = "closed"


class Direction(StrEnum):
    """Whether a message came from a customer or went out from the company."""

    inbound = "in"
    outbound = "out"


class Delivery(StrEnum):
    """Delivery state of an outbound reply; failed replies stay as drafts to retry."""

    pending = "pending"
    sent = "sent"
    failed = "failed"


# An erased person's id must never come back as someone else's: the audit trail and old links
# name rows by id. PostgreSQL's sequences never go back; SQLite needs AUTOINCREMENT for that.
_NEVER_REUSED_IDS = {"sqlite_autoincrement": True}


class Account(SQLModel, table=True):
    """An official company account on one platform."""

    __table_args__ = (UniqueConstraint("platform", "platform_account_id"), _NEVER_REUSED_IDS)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    display_name: str = Field(max_length=200)
    platform_account_id: str = Field(max_length=200)
    handle: str = Field(default="", max_length=200)
    credentials_encrypted: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    settings: dict[str, Any] = _json(dict)
    status: AccountStatus = _enum(AccountStatus, AccountStatus.active)
    poll_interval_seconds: int = Field(default=60)
    # Retention policy: conversations are deleted this many days after they were closed, raw
    # platform payloads this many days after they arrived, and a month's research pseudonym key
    # this many days after the month ends (the strictest account's figure wins: keys are shared).
    retention_days: int = Field(default=90)
    raw_retention_days: int = Field(default=7, sa_column_kwargs={"server_default": "7"})
    pseudonym_key_days: int = Field(default=30, sa_column_kwargs={"server_default": "30"})
    # Raw payloads of this account's messages that arrived before this are emptied already.
    raw_purged_before: datetime | None = _optional_at()
    sla_minutes: int = Field(default=30)
    cursor: dict[str, Any] = _json(dict)
    # Direct messages go to market research (anonymized) unless the account's policy says no.
    research_dms: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})
    last_polled_at: datetime | None = _optional_at()
    last_error: str | None = Field(default=None, sa_type=Text)
    # The platform asked us to wait (429, Graph throttling) until then.
    rate_limited_until: datetime | None = _optional_at()
    # Our own exponential backoff after transient failures, reset by a good poll.
    backoff_until: datetime | None = _optional_at()
    consecutive_failures: int = Field(default=0)
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_expires_at: datetime | None = _optional_at()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Contact(SQLModel, table=True):
    """A person as seen on one platform."""

    __table_args__ = (UniqueConstraint("platform", "platform_user_id"), _NEVER_REUSED_IDS)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    platform_user_id: str = Field(max_length=200)
    handle: str | None = Field(default=None, max_length=200)
    display_name: str | None = Field(default=None, max_length=200)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    research_objection: bool = Field(default=False)
    # What we know of the person beyond the platform (told in a DM, recorded by an agent): the
    # research leak guard makes sure none of it survives anonymization.
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)


class User(SQLModel, table=True):
    """A person who works in the product: agent, marketing or admin."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(max_length=200)
    role: Role = _enum(Role)
    password_hash: str = Field(max_length=255)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = _optional_at()
    # TOTP second factor: the secret is encrypted like every credential; enabled once confirmed.
    totp_secret_encrypted: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )
    totp_enabled_at: datetime | None = _optional_at()
    # The 30-second step of the last accepted code: a code is never accepted twice.
    totp_last_step: int | None = Field(default=None)
    # argon2 hashes of the unused one-time recovery codes.
    recovery_codes: list[str] = _json(list)
    # Part of every session; raising it logs the user out everywhere.
    session_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Set for invited users, whose first password an admin has seen: they choose their own.
    password_change_required: bool = Field(
        default=False, sa_column_kwargs={"server_default": sa_false()}
    )


class Conversation(SQLModel, table=True):
    """A thread between one contact and one official account."""

    __table_args__ = (
        UniqueConstraint("account_id", "thread_key"),
        # The list views read conversations in keyset order straight off these indexes.
        Index("ix_conversation_status_due", "status", "sla_due_at", "id"),
        Index("ix_conversation_assignee_due", "assignee_id", "sla_due_at", "id"),
        Index("ix_conversation_status_activity", "status", "last_message_at", "id"),
        Index("ix_conversation_status_closed", "status", "closed_at", "id"),
        # Spam and snoozed conversations are few: small partial indexes serve their views and
        # counts without reading the whole table.
        Index(
            "ix_conversation_spam_due",
            "sla_due_at",
            "id",
            sqlite_where=text("is_spam = 1"),
            postgresql_where=text("is_spam"),
        ),
        Index(
            "ix_conversation_snoozed",
            "snoozed_until",
            "id",
            sqlite_where=text("snoozed_until IS NOT NULL"),
            postgresql_where=text("snoozed_until IS NOT NULL"),
        ),
        # The trend report's service figures count straight off these covering indexes.
        Index(
            "ix_conversation_opened_kpis",
            "opened_at",
            "is_spam",
            "first_response_seconds",
            "first_response_at",
            "sla_due_at",
            "account_id",
            "kind",
        ),
        Index("ix_conversation_closed_kpis", "closed_at", "is_spam", "account_id", "kind"),
        _NEVER_REUSED_IDS,
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    kind: str = Field(max_length=16)
    thread_key: str = Field(max_length=200)
    status: ConversationStatus = _enum(ConversationStatus, ConversationStatus.open)
    assignee_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    last_message_at: datetime = Field(sa_type=UTCDateTime)
    # Kept as a column, not computed, so lists can sort and filter by it on an index.
    sla_due_at: datetime | None = _optional_at()
    first_response_at: datetime | None = _optional_at()
    closed_at: datetime | None = _optional_at()
    # Hidden from the working views until then; a new customer message wakes it up.
    snoozed_until: datetime | None = _optional_at()
    is_spam: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    # True when an agent wrote first: every send then needs the contact's recorded consent.
    initiated_by_agent: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    # ISO 639-1 code of the first customer message, detected at ingestion; None if unsure.
    language: str | None = Field(default=None, max_length=8)
    # Service-level figures for reports: seconds from a customer's waiting to our answer.
    first_response_seconds: int | None = Field(default=None)
    response_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    response_seconds_total: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Message(SQLModel, table=True):
    """One inbound or outbound message in a conversation."""

    __table_args__ = (
        UniqueConstraint("account_id", "external_id"),
        # A thread in order, and the latest message of a conversation (the list's preview),
        # straight off one index.
        Index("ix_message_conversation_created", "conversation_id", "created_at", "id"),
        # Retention empties raw payloads per account by arrival time.
        Index("ix_message_account_received", "account_id", "received_at"),
        # Data-subject requests and the research objection find a person's messages by author.
        Index("ix_message_author_contact", "author_contact_id"),
        # A reply form submitted twice (a double click, two nodes) stores one reply.
        Index("ux_message_submission", "conversation_id", "submission_key", unique=True),
        # Replies not yet delivered: the metrics gauge and the worker's resend job read only
        # these few rows, never the whole table.
        Index(
            "ix_message_undelivered",
            "account_id",
            "delivery",
            postgresql_where=text("delivery IN ('pending', 'failed')"),
            sqlite_where=text("delivery IN ('pending', 'failed')"),
        ),
        _NEVER_REUSED_IDS,
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    account_id: int = Field(foreign_key="account.id")
    # Empty until the platform accepts an outbound reply; NULLs never collide in the constraint.
    external_id: str | None = Field(default=None, max_length=200)
    direction: Direction = _enum(Direction)
    text: str = Field(sa_type=Text)
    author_contact_id: int | None = Field(default=None, foreign_key="contact.id")
    author_user_id: int | None = Field(default=None, foreign_key="user.id")
    in_reply_to: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Platform context shown beside the text, e.g. the post a comment was written under.
    context: dict[str, Any] = _json(dict)
    raw: dict[str, Any] = _json(dict)
    delivery: Delivery | None = _enum(Delivery, nullable=True)
    delivery_error: str | None = Field(default=None, sa_type=Text)
    # The composer's one-time key of the form that sent this reply.
    submission_key: str | None = Field(default=None, max_length=64)
    attempts: int = Field(default=0)


class PseudonymKey(SQLModel, table=True):
    """The key of one month's author pseudonyms; destroyed later so no one can link them back."""

    month: str = Field(primary_key=True, max_length=7)  # "2026-11", UTC
    # Encrypted like every secret; emptied (never deleted) when destroyed, as proof it is gone.
    key_encrypted: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    destroyed_at: datetime | None = _optional_at()


class PollRun(SQLModel, table=True):
    """One poll of one account by one worker: what admins read and what proves leases hold."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    owner: str = Field(max_length=200)
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime = Field(sa_type=UTCDateTime)
    new: int = Field(default=0)
    duplicates: int = Field(default=0)
    failed: int = Field(default=0)
    error: str | None = Field(default=None, sa_type=Text)


class AuditEvent(SQLModel, table=True):
    """Who did what to whose data, when, from where. Rows are only ever added.

    Each row's `hash` covers its fields and the previous row's hash, so changing or removing
    a row breaks the chain from there on (`socialcare audit verify`).
    """

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    action: str = Field(max_length=64)
    target_type: str | None = Field(default=None, max_length=32)
    target_id: int | None = Field(default=None)
    # The person whose data was touched, when there is one: a plain id, no foreign key, so
    # the trail outlives an erasure without naming anyone.
    contact_id: int | None = Field(default=None, index=True)
    ip: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = _json(dict)
    hash: str | None = Field(default=None, max_length=64)


class ResearchOutbox(SQLModel, table=True):
    """An inbound message waiting to be anonymized into the research store."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_type=Text)


class DeadLetter(SQLModel, table=True):
    """A platform payload that could not be ingested, kept with its error."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    platform: str = Field(max_length=32)
    source: str = Field(max_length=16)
    error: str = Field(sa_type=Text)
    raw: str = Field(sa_type=Text)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = _optional_at()
    # Failed retries by an admin: a letter that keeps failing needs a fix, not another click.
    retries: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


# The agents' workflow tables live in their own module; importing it here registers them with
# the metadata wherever the models are loaded. At this point every name it imports is defined.
from inbox import heartbeat as _heartbeat  # noqa: E402,F401
from inbox import privacy_models as _privacy_models  # noqa: E402,F401
from inbox import workflow_models as _workflow_models  # noqa: E402,F401
