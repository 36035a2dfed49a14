"""The types every connector speaks, the connector protocol and the registry."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Kind = Literal["mention", "comment", "dm"]
KINDS: tuple[Kind, ...] = ("mention", "comment", "dm")


class ConnectorError(Exception):
    """A platform call failed; the message is safe to show to an agent."""


class PayloadError(ConnectorError):
    """A platform payload could not be turned into an item."""


class TransientError(ConnectorError):
    """The platform failed for now (5xx, timeout, reset, truncated body): back off and retry."""


class RateLimited(ConnectorError):
    """The platform throttles this account until `retry_at`; poll nothing before then."""

    def __init__(self, message: str, *, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class CredentialsRevoked(ConnectorError):
    """The token is revoked or expired: an admin must reconnect the account; do not retry."""


class NotOfficialAccount(ConnectorError):
    """The credentials do not belong to the official company account the admin named."""


class ReplyRefused(ConnectorError):
    """The platform's rules forbid this reply as it stands (window closed, too long, …)."""


@dataclass(frozen=True, slots=True)
class Author:
    """A person as a platform shows them."""

    platform_user_id: str
    handle: str | None = None
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class InboundItem:
    """One mention, comment or direct message, as parsed from a platform payload."""

    platform: str
    account_ref: str
    external_id: str
    kind: Kind
    author: Author
    text: str
    created_at: datetime
    # Connector-chosen key of the conversation the item belongs to (DM conversation id,
    # root comment id, tweet conversation id): ingestion groups items by it.
    thread_key: str
    in_reply_to: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FailedPayload:
    """A payload that could not be parsed, kept with its error so nothing is lost."""

    raw: str
    error: str


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll brought: items, unparseable payloads and the cursor to resume from."""

    items: list[InboundItem]
    failures: list[FailedPayload]
    cursor: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboundReply:
    """An agent's reply to send from the official account."""

    kind: Kind
    thread_key: str
    in_reply_to: str | None
    recipient: Author
    text: str
    # When the customer last wrote: messaging windows (Messenger, Instagram) count from it.
    last_inbound_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SentReply:
    """What the platform answered for a reply it accepted."""

    external_id: str
    created_at: datetime
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebhookBatch:
    """Items a webhook delivery carried for one official account (page, IG user, X user)."""

    account_ref: str
    items: list[InboundItem]
    failures: list[FailedPayload]


@dataclass(frozen=True, slots=True)
class PostingIdentity:
    """The official account a connector posts as."""

    platform: str
    account_ref: str
    handle: str
    display_name: str


class Connector(Protocol):
    """A platform adapter: polls an official account and sends replies through it."""

    platform: str
    max_reply_length: int

    def identity(self) -> PostingIdentity:
        """Tell which official account this connector reads and posts as."""
        ...

    def poll(self, cursor: Mapping[str, Any] | None) -> PollResult:
        """Fetch what arrived since the cursor."""
        ...

    def reply_length(self, text: str) -> int:
        """The length of a reply as the platform counts it against `max_reply_length`."""
        ...

    def send_reply(self, reply: OutboundReply) -> SentReply:
        """Post a reply through the official account, or raise ConnectorError."""
        ...

    def find_sent(self, reply: OutboundReply, since: datetime) -> SentReply | None:
        """Look on the platform for this reply posted since `since`, so a retry never doubles it.

        Returns None where the platform offers no way to look.
        """
        ...

    def direct_thread_key(self, recipient: Author) -> str | None:
        """The thread key of a direct message we write first to this person, the same key
        their DMs to us are parsed with; None where the platform forbids writing first."""
        ...


ConnectorFactory = Callable[[Mapping[str, str], Mapping[str, Any]], Connector]
WebhookParser = Callable[[Mapping[str, Any]], list[WebhookBatch]]
# Takes the JSON-decoded raw of a dead letter; returns its item or raises PayloadError.
RetryParser = Callable[[Mapping[str, Any]], InboundItem]
# Parses one envelope's entry for its account; None means the entry is not for the inbox.
ShapeParser = Callable[..., InboundItem | None]

REGISTRY: dict[str, ConnectorFactory] = {}
WEBHOOK_PARSERS: dict[str, WebhookParser] = {}
RETRY_PARSERS: dict[str, RetryParser] = {}
ENVELOPE_VERSION = 1


def register(platform: str) -> Callable[[ConnectorFactory], ConnectorFactory]:
    """Register a connector factory under its platform name."""

    def decorate(factory: ConnectorFactory) -> ConnectorFactory:
        REGISTRY[platform] = factory
        return factory

    return decorate


def register_webhook(platform: str) -> Callable[[WebhookParser], WebhookParser]:
    """Register the parser of a platform's webhook deliveries (already signature-checked)."""

    def decorate(parser: WebhookParser) -> WebhookParser:
        WEBHOOK_PARSERS[platform] = parser
        return parser

    return decorate


def register_retry(platform: str) -> Callable[[RetryParser], RetryParser]:
    """Register the parser that re-reads a platform's dead letters after a fix."""

    def decorate(parser: RetryParser) -> RetryParser:
        RETRY_PARSERS[platform] = parser
        return parser

    return decorate


def envelope(shape: str, account_ref: str, entry: Any, **context: Any) -> str:
    """Serialise a failed entry with everything its parser needs, so a retry can parse it alone."""
    kept = {
        "envelope": ENVELOPE_VERSION,
        "shape": shape,
        "account_ref": account_ref,
        "entry": entry,
        **context,
    }
    # json escapes control characters (NUL included) on its own; the rest stays readable.
    text = json.dumps(kept, ensure_ascii=False, default=repr)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be stored as UTF-8 text: escape everything instead.
        text = json.dumps(kept, default=repr)
    return text


def retry_envelope(
    raw: Mapping[str, Any], platform: str, shapes: Mapping[str, ShapeParser]
) -> InboundItem:
    """Parse a stored envelope again with the parser its shape names (the poll's own)."""
    if raw.get("envelope") != ENVELOPE_VERSION:
        raise PayloadError(
            f"This {platform} payload was stored without the context a retry needs "
            "(no envelope); it cannot be retried, discard it once checked"
        )
    shape = raw.get("shape")
    parse = shapes.get(shape) if isinstance(shape, str) else None
    if parse is None:
        raise PayloadError(f"Unknown {platform} payload shape {shape!r}; it cannot be retried")
    account_ref = raw.get("account_ref")
    if not isinstance(account_ref, str):
        raise PayloadError(f"The stored {platform} payload names no account (field 'account_ref')")
    context = {k: v for k, v in raw.items() if k not in ("envelope", "shape", "account_ref")}
    entry = context.pop("entry", None)
    try:
        item = parse(entry, account_ref, **context)
    except TypeError as exc:
        # A hand-edited envelope with fields its shape does not take.
        raise PayloadError(f"The stored {platform} payload does not fit its shape: {exc}") from None
    if item is None:
        raise PayloadError(
            f"The {platform} payload ({shape}) now parses as nothing for the inbox "
            "(our own post or an event without a message); discard it"
        )
    return item


def get_connector(
    platform: str, credentials: Mapping[str, str], settings: Mapping[str, Any]
) -> Connector:
    """Build the connector for a platform from decrypted credentials and account settings."""
    try:
        factory = REGISTRY[platform]
    except KeyError:
        raise ConnectorError(f"No connector for platform {platform!r}") from None
    return factory(credentials, settings)
