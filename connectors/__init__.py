"""Platform connectors: parse platform payloads into items and send replies back."""

# Importing the platform modules registers their connectors and webhook parsers.
from connectors import demo as _demo  # noqa: F401
from connectors import facebook as _facebook  # noqa: F401
from connectors import instagram as _instagram  # noqa: F401
from connectors import x as _x  # noqa: F401
from connectors.base import (
    KINDS,
    REGISTRY,
    RETRY_PARSERS,
    WEBHOOK_PARSERS,
    Author,
    Connector,
    ConnectorError,
    CredentialsRevoked,
    FailedPayload,
    InboundItem,
    Kind,
    NotOfficialAccount,
    OutboundReply,
    PayloadError,
    PollResult,
    PostingIdentity,
    RateLimited,
    ReplyRefused,
    RetryParser,
    SentReply,
    TransientError,
    WebhookBatch,
    get_connector,
    register,
    register_retry,
    register_webhook,
)

__all__ = [
    "KINDS",
    "REGISTRY",
    "RETRY_PARSERS",
    "WEBHOOK_PARSERS",
    "Author",
    "Connector",
    "ConnectorError",
    "CredentialsRevoked",
    "FailedPayload",
    "InboundItem",
    "Kind",
    "NotOfficialAccount",
    "OutboundReply",
    "PayloadError",
    "PollResult",
    "PostingIdentity",
    "RateLimited",
    "ReplyRefused",
    "RetryParser",
    "SentReply",
    "TransientError",
    "WebhookBatch",
    "get_connector",
    "register",
    "register_retry",
    "register_webhook",
]
