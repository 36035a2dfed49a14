"""Parse X Account Activity (AAA) webhook deliveries into items, keyed like polled ones.

Also re-parses X dead letters: every failure's envelope names the parser that failed on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connectors.base import (
    Author,
    FailedPayload,
    InboundItem,
    PayloadError,
    ShapeParser,
    WebhookBatch,
    envelope,
    register_retry,
    register_webhook,
    retry_envelope,
)
from connectors.x_parse import (
    PLATFORM,
    optional,
    parse_dm_event,
    parse_mention,
    parse_ms,
    parse_v1_time,
    string,
    users_by_id,
)


def _tweet_text(tweet: Mapping[str, Any], label: str) -> str:
    # Tweets over 140 characters arrive truncated, with the whole text in extended_tweet.
    extended = tweet.get("extended_tweet")
    if isinstance(extended, Mapping) and optional(extended, "full_text"):
        return string(extended, "full_text", label, "the text")
    if optional(tweet, "full_text"):
        return string(tweet, "full_text", label, "the text")
    return string(tweet, "text", label, "the text")


def _tweet(tweet: Any, account_ref: str) -> InboundItem | None:
    # string() checks each level is an object before the next .get() reaches into it.
    label = f"X webhook tweet {optional(tweet, 'id_str') or '?'}"
    ext_id = string(tweet, "id_str", label, "the tweet id")
    user = tweet.get("user")
    author_id = string(user, "id_str", label, "the author's id")
    if author_id == account_ref:
        return None  # our own tweet, replies included
    parent = optional(tweet, "in_reply_to_status_id_str")
    return InboundItem(
        platform=PLATFORM,
        account_ref=account_ref,
        external_id=ext_id,
        kind="mention",
        author=Author(author_id, optional(user, "screen_name"), optional(user, "name")),
        text=_tweet_text(tweet, label),
        created_at=parse_v1_time(tweet.get("created_at"), label),
        # v1.1 tweets carry no conversation id: the parent is the best thread we can name.
        thread_key=f"tweet:{parent or ext_id}",
        in_reply_to=parent,
        context={"lang": tweet["lang"]} if isinstance(tweet.get("lang"), str) else {},
        raw=dict(tweet),
    )


def _dm(event: Any, users: Mapping[str, Any], account_ref: str) -> InboundItem | None:
    label = f"X webhook direct message {optional(event, 'id') or '?'}"
    if isinstance(event, Mapping) and event.get("type", "message_create") != "message_create":
        return None
    ext_id = string(event, "id", label, "the event id")
    create = event.get("message_create")
    sender = string(create, "sender_id", label, "the sender's id")
    if sender == account_ref:
        return None  # our own reply, echoed back
    data = create.get("message_data")
    user = users.get(sender)
    return InboundItem(
        platform=PLATFORM,
        account_ref=account_ref,
        external_id=ext_id,
        kind="dm",
        author=Author(sender, optional(user, "screen_name"), optional(user, "name")),
        text=string(data, "text", label, "the text"),
        created_at=parse_ms(event.get("created_timestamp"), label),
        thread_key=f"dm:{sender}",
        raw={"event": dict(event), "user": dict(user) if isinstance(user, Mapping) else None},
    )


@register_webhook("x")
def parse_account_activity(payload: Mapping[str, Any]) -> list[WebhookBatch]:
    """Parse one signature-checked AAA delivery: mentions, replies and DMs to our account."""
    account_ref = string(payload, "for_user_id", "X webhook", "the account (for_user_id)")
    items: list[InboundItem] = []
    failures: list[FailedPayload] = []
    users = payload.get("users")
    users = users if isinstance(users, Mapping) else {}
    tweets = payload.get("tweet_create_events")
    dms = payload.get("direct_message_events")
    for tweet in tweets if isinstance(tweets, list) else []:
        try:
            item = _tweet(tweet, account_ref)
        except PayloadError as err:
            failures.append(FailedPayload(envelope("webhook_tweet", account_ref, tweet), str(err)))
            continue
        if item is not None:
            items.append(item)
    for event in dms if isinstance(dms, list) else []:
        try:
            item = _dm(event, users, account_ref)
        except PayloadError as err:
            kept = envelope("webhook_dm", account_ref, event, users=_sender(event, users))
            failures.append(FailedPayload(kept, str(err)))
            continue
        if item is not None:
            items.append(item)
    if not items and not failures:
        return []  # likes, follows, typing indicators: nothing for the inbox
    return [WebhookBatch(account_ref=account_ref, items=items, failures=failures)]


def _sender(event: Any, users: Mapping[str, Any]) -> dict[str, Any]:
    # Only the sender's user object: the rest of the delivery's users are not this entry's.
    create = event.get("message_create") if isinstance(event, Mapping) else None
    sender = optional(create, "sender_id")
    return {sender: users[sender]} if sender and sender in users else {}


def _polled(
    parse: Callable[[Any, Mapping[str, Mapping[str, Any]], str], InboundItem],
) -> ShapeParser:
    def parse_entry(
        entry: Any, account_ref: str, *, includes: Mapping[str, Any] | None = None
    ) -> InboundItem:
        return parse(entry, users_by_id({"includes": includes or {}}), account_ref)

    return parse_entry


def _webhook_dm(
    entry: Any, account_ref: str, *, users: Mapping[str, Any] | None = None
) -> InboundItem | None:
    return _dm(entry, users if isinstance(users, Mapping) else {}, account_ref)


def _no_entry(what: str) -> ShapeParser:
    def refuse(entry: Any, account_ref: str, **context: Any) -> None:
        raise PayloadError(f"{what}; there is no entry to parse again, discard it once checked")

    return refuse


_SHAPES: dict[str, ShapeParser] = {
    "mention": _polled(parse_mention),
    "dm_event": _polled(parse_dm_event),
    "webhook_tweet": _tweet,
    "webhook_dm": _webhook_dm,
    "x_error": _no_entry("X reported a partial error, not a post"),
    "x_page": _no_entry("X sent a page whose 'data' is not a list"),
}


@register_retry("x")
def retry_x(raw: Mapping[str, Any]) -> InboundItem:
    """Parse an X dead letter again with the parser its envelope's shape names."""
    return retry_envelope(raw, PLATFORM, _SHAPES)
