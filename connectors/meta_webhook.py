"""Parsers of Meta webhook deliveries: Facebook Page (`object: page`) and Instagram."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import (
    Author,
    InboundItem,
    PayloadError,
    ShapeParser,
    WebhookBatch,
    register_webhook,
)
from connectors.graph import Json, parse_time
from connectors.graph_items import (
    cannot_retry,
    messaging_item,
    parse_webhook,
    text_field,
    user_field,
)


def _feed_change(change: Any, page_id: str, *, entry_time: Any = None) -> InboundItem | None:
    if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
        raise PayloadError("Facebook webhook change has no value")
    value: Json = change["value"]
    if (
        change.get("field") != "feed"
        or value.get("item") != "comment"
        or value.get("verb") != "add"
    ):
        return None
    label = f"Facebook comment {value.get('comment_id') or '?'}"
    comment_id = text_field(value, "comment_id", label)
    post_id = text_field(value, "post_id", label)
    author = user_field(value, "from", label)
    if author["id"] == page_id:
        return None
    parent = value.get("parent_id")
    # A parent that is the post means a top-level comment, which roots its own thread.
    parent_id = parent if isinstance(parent, str) and parent and parent != post_id else None
    return InboundItem(
        platform="facebook",
        account_ref=page_id,
        external_id=comment_id,
        kind="comment",
        author=Author(platform_user_id=author["id"], display_name=author.get("name")),
        text=text_field(value, "message", label, empty_ok=True),
        created_at=parse_time(value.get("created_time", entry_time), label),
        thread_key=f"comment:{parent_id or comment_id}",
        in_reply_to=parent_id or post_id,
        context={"post_id": post_id},
        raw=value,
    )


def _instagram_change(
    change: Any, ig_user_id: str, *, entry_time: Any = None
) -> InboundItem | None:
    if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
        raise PayloadError("Instagram webhook change has no value")
    value: Json = change["value"]
    field = change.get("field")
    if field == "mentions":
        # Meta sends only ids here (media_id, comment_id): no text and no author to show, and
        # the parser has no token to fetch them; kept as a failure so an admin can look it up.
        ids = f"media {value.get('media_id')!r}, comment {value.get('comment_id')!r}"
        raise PayloadError(f"Instagram mention ({ids}) carries no text or author; see Instagram")
    if field != "comments":
        return None
    label = f"Instagram comment {value.get('id') or '?'}"
    comment_id = text_field(value, "id", label)
    author = user_field(value, "from", label)
    if author["id"] == ig_user_id:
        return None
    media = value.get("media")
    media_id = media.get("id") if isinstance(media, dict) else None
    if not isinstance(media_id, str) or not media_id:
        raise PayloadError(f"{label}: the media id is missing (field 'media.id')")
    parent = value.get("parent_id")
    parent_id = parent if isinstance(parent, str) and parent else None
    return InboundItem(
        platform="instagram",
        account_ref=ig_user_id,
        external_id=comment_id,
        kind="comment",
        author=Author(platform_user_id=author["id"], handle=author.get("username")),
        text=text_field(value, "text", label, empty_ok=True),
        # Comment changes carry no timestamp of their own; the entry's time is when it happened.
        created_at=parse_time(value.get("timestamp", entry_time), label),
        thread_key=f"comment:{parent_id or comment_id}",
        in_reply_to=parent_id or media_id,
        context={"post_id": media_id},
        raw=value,
    )


def _page_message(event: Any, page_id: str) -> InboundItem | None:
    return messaging_item(event, page_id, platform="facebook")


def _instagram_message(event: Any, ig_user_id: str) -> InboundItem | None:
    return messaging_item(event, ig_user_id, platform="instagram")


_ORPHAN = cannot_retry("A webhook entry without an account")
# Shapes of webhook failures, by platform; the connectors add their polling shapes for retries.
PAGE_WEBHOOK_SHAPES: dict[str, ShapeParser] = {
    "messaging": _page_message,
    "change": _feed_change,
    "webhook_entry": _ORPHAN,
}
INSTAGRAM_WEBHOOK_SHAPES: dict[str, ShapeParser] = {
    "messaging": _instagram_message,
    "change": _instagram_change,
    "webhook_entry": _ORPHAN,
}


@register_webhook("facebook")
def parse_page_webhook(payload: Mapping[str, Any]) -> list[WebhookBatch]:
    """Parse a Page webhook delivery (Messenger messages, feed comments) into batches."""
    return parse_webhook(payload, "page", PAGE_WEBHOOK_SHAPES)


@register_webhook("instagram")
def parse_instagram_webhook(payload: Mapping[str, Any]) -> list[WebhookBatch]:
    """Parse an Instagram webhook delivery (DMs, comments, mentions) into batches."""
    return parse_webhook(payload, "instagram", INSTAGRAM_WEBHOOK_SHAPES)
