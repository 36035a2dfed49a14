"""Platform connectors: parse platform payloads into items and send replies back."""

from connectors import demo as _demo  # noqa: F401  (registers the demo connector)
from connectors.base import (
    KINDS,
    REGISTRY,
    Author,
    Connector,
    ConnectorError,
    FailedPayload,
    InboundItem,
    Kind,
    OutboundReply,
    PayloadError,
    PollResult,
    PostingIdentity,
    SentReply,
    get_connector,
    register,
)

__all__ = [
    "KINDS",
    "REGISTRY",
    "Author",
    "Connector",
    "ConnectorError",
    "FailedPayload",
    "InboundItem",
    "Kind",
    "OutboundReply",
    "PayloadError",
    "PollResult",
    "PostingIdentity",
    "SentReply",
    "get_connector",
    "register",
]
