"""Instagram professional account connector: comments, mentions and DMs via its Page's token."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from connectors.base import (
    Author,
    ConnectorError,
    InboundItem,
    NotOfficialAccount,
    OutboundReply,
    PayloadError,
    PollResult,
    PostingIdentity,
    ReplyRefused,
    SentReply,
    ShapeParser,
    register,
    register_retry,
    retry_envelope,
)
from connectors.graph import Clock, GraphClient, Json, parse_time, utc_now, verify_page
from connectors.graph_items import (
    Harvest,
    Watermark,
    cannot_retry,
    check_length,
    edge,
    sent_match,
    text_field,
    user_field,
    window_args,
)
from connectors.meta_webhook import INSTAGRAM_WEBHOOK_SHAPES
from connectors.meta_webhook import parse_instagram_webhook as parse_instagram_webhook

COMMENT_LIMIT = 2200
DM_LIMIT = 1000
# Comments on older media still arrive: media this young are re-read on every poll.
MEDIA_WINDOW = timedelta(days=7)
_REPLY_FIELDS = "id,text,timestamp,username,from"
MEDIA_FIELDS = f"id,caption,timestamp,comments{{{_REPLY_FIELDS},replies{{{_REPLY_FIELDS}}}}}"
TAG_FIELDS = "id,caption,timestamp,username"
CONVERSATION_FIELDS = "updated_time,messages{id,message,from,created_time}"


def _stamp(row: Any, key: str) -> datetime | None:
    try:
        return parse_time(row.get(key) if isinstance(row, dict) else None, "row")
    except PayloadError:
        return None


def _older(rows: list[Any], key: str, limit: datetime | None) -> bool:
    # Rows come newest first; a page with nothing younger than `limit` ends the walk.
    stamps = [_stamp(row, key) for row in rows]
    return limit is not None and all(s is not None and s < limit for s in stamps)


class InstagramConnector:
    """Reads an Instagram professional account's comments, mentions and DMs; answers as it."""

    platform = "instagram"
    # The larger limit (comments); the DM limit of 1000 is enforced in send_reply.
    max_reply_length = COMMENT_LIMIT

    def __init__(
        self, credentials: Mapping[str, str], settings: Mapping[str, Any], *, clock: Clock = utc_now
    ) -> None:
        """Read the Instagram user id, its Page's id, the human-agent flag and the Page token."""
        ids = {key: settings.get(key) for key in ("ig_user_id", "page_id")}
        for key, value in ids.items():
            if not isinstance(value, str) or not value.strip():
                raise ConnectorError(f"Instagram setting {key!r} is missing")
        human_agent = settings.get("human_agent_enabled", False)
        if not isinstance(human_agent, bool):
            raise ConnectorError("Instagram setting 'human_agent_enabled' must be true or false")
        self.ig_user_id = str(ids["ig_user_id"]).strip()
        self.page_id = str(ids["page_id"]).strip()
        self.human_agent = human_agent
        self._clock = clock
        self.graph = GraphClient(credentials.get("page_access_token", ""), clock=clock)

    def reply_limit(self, kind: str) -> int:
        """The longest reply Instagram accepts for an item kind."""
        return DM_LIMIT if kind == "dm" else COMMENT_LIMIT

    def identity(self) -> PostingIdentity:
        """Check the token is the linked Page's and that the Page's Instagram account is ours."""
        verify_page(self.graph, self.page_id)
        page = self.graph.get(
            self.page_id, {"fields": "instagram_business_account{id,username,name}"}
        )
        account = page.get("instagram_business_account")
        if not isinstance(account, dict) or account.get("id") != self.ig_user_id:
            linked = account.get("username") if isinstance(account, dict) else None
            raise NotOfficialAccount(
                f"Page {self.page_id} is linked to "
                + (f"Instagram account @{linked}" if linked else "no Instagram business account")
                + f", not to {self.ig_user_id}; connect the Page linked to the official account"
            )
        username = str(account.get("username") or self.ig_user_id)
        return PostingIdentity(
            platform=self.platform,
            account_ref=self.ig_user_id,
            handle=username,
            display_name=str(account.get("name") or username),
        )

    def poll(self, cursor: Mapping[str, Any] | None) -> PollResult:
        """Fetch new comments on recent media, new mentions and new DMs since the cursor."""
        now = self._clock()
        streams = {key: Watermark.read(cursor, key) for key in ("comments", "mentions", "dm")}
        marks = streams["comments"]
        floor = marks.floor()
        oldest = now - MEDIA_WINDOW if floor is None else min(floor, now - MEDIA_WINDOW)
        media, media_next = self.graph.pages(
            f"{self.ig_user_id}/media",
            {"fields": MEDIA_FIELDS, "limit": "25"},
            resume=marks.resume,
            done=lambda rows: _older(rows, "timestamp", oldest),
        )
        comments = Harvest()
        for row in media:
            self._harvest_media(comments, row)

        tags = streams["mentions"]
        tagged, tags_next = self.graph.pages(
            f"{self.ig_user_id}/tags",
            {"fields": TAG_FIELDS, "limit": "25"},
            resume=tags.resume,
            done=lambda rows: _older(rows, "timestamp", tags.floor()),
        )
        mentions = Harvest()
        for row in tagged:
            mentions.take("mention", parse_mention, row, self.ig_user_id)

        dms = streams["dm"]
        conversations, dm_next = self.graph.pages(
            f"{self.page_id}/conversations",
            {"platform": "instagram", "fields": CONVERSATION_FIELDS, "limit": "25"},
            resume=dms.resume,
            # Conversations come newest-updated first, so stale ones end the walk.
            done=lambda rows: _older(rows, "updated_time", dms.floor()),
        )
        inbox = Harvest()
        for row in conversations:
            self._harvest_conversation(inbox, row)

        found = [(comments, marks), (mentions, tags), (inbox, dms)]
        return PollResult(
            items=[i for h, mark in found for i in h.items if mark.fresh(i.created_at)],
            failures=[f for h, _ in found for f in h.failures],
            cursor={
                "comments": marks.advance([i.created_at for i in comments.items], media_next),
                "mentions": tags.advance([i.created_at for i in mentions.items], tags_next),
                "dm": dms.advance([i.created_at for i in inbox.items], dm_next),
            },
        )

    def _own(self, raw: Any) -> bool:
        author = raw.get("from") if isinstance(raw, dict) else None
        return isinstance(author, dict) and author.get("id") in (self.ig_user_id, self.page_id)

    def _harvest_media(self, harvest: Harvest, media: Any) -> None:
        media_id = media.get("id") if isinstance(media, dict) else None
        if not isinstance(media_id, str) or not media_id:
            harvest.fail("media", media, self.ig_user_id, "Instagram media has no id")
            return
        # Only what a comment's item needs of its media: not the media's whole comment tree.
        about = {"id": media_id, "caption": media.get("caption")}
        for comment in edge(media, "comments"):
            cid = comment.get("id") if isinstance(comment, dict) else None
            if not isinstance(cid, str) or not cid:
                error = f"Instagram comment on media {media_id} has no id"
                harvest.fail("comment", comment, self.ig_user_id, error, media=about)
                continue
            if not self._own(comment):
                harvest.take("comment", parse_comment, comment, self.ig_user_id, media=about)
            for reply in edge(comment, "replies"):
                if not self._own(reply):
                    harvest.take(
                        "comment", parse_comment, reply, self.ig_user_id, media=about, parent=cid
                    )

    def _harvest_conversation(self, harvest: Harvest, conversation: Any) -> None:
        if not isinstance(conversation, dict) or not isinstance(conversation.get("id"), str):
            error = "Instagram conversation has no id"
            harvest.fail("conversation", conversation, self.ig_user_id, error)
            return
        for raw in edge(conversation, "messages"):
            if not self._own(raw):
                harvest.take(
                    "message", parse_message, raw, self.ig_user_id,
                    conversation_id=conversation["id"],
                )  # fmt: skip

    def reply_length(self, text: str) -> int:
        """Instagram counts plain characters."""
        return len(text)

    def send_reply(self, reply: OutboundReply) -> SentReply:
        """Reply to a comment or mention as a comment, or send a DM inside its window."""
        now = self._clock()
        key = "id"
        if reply.kind == "comment":
            check_length(reply.text, COMMENT_LIMIT, "Instagram comments")
            # Instagram only takes replies to top-level comments: answer in the root's thread.
            result = self.graph.post(f"{_root(reply)}/replies", {"message": reply.text})
        elif reply.kind == "mention":
            check_length(reply.text, COMMENT_LIMIT, "Instagram comments")
            data = {"media_id": _root(reply), "message": reply.text}
            if reply.in_reply_to and reply.in_reply_to != data["media_id"]:
                data["comment_id"] = reply.in_reply_to
            result = self.graph.post(f"{self.ig_user_id}/mentions", data)
        elif reply.kind == "dm":
            check_length(reply.text, DM_LIMIT, "Instagram messages")
            fields = window_args(
                reply.last_inbound_at, now, human_agent=self.human_agent, product="Instagram"
            )
            result = self.graph.post(
                f"{self.page_id}/messages",
                {
                    "recipient": json.dumps({"id": _root(reply)}),
                    "message": json.dumps({"text": reply.text}, ensure_ascii=False),
                    **fields,
                },
            )
            key = "message_id"
        else:
            raise ReplyRefused(f"Instagram has no {reply.kind} items to answer")
        ext_id = result.get(key)
        if not isinstance(ext_id, str) or not ext_id:
            raise ConnectorError("Instagram accepted the reply but returned no id")
        return SentReply(external_id=ext_id, created_at=now, raw=result)

    def direct_thread_key(self, recipient: Author) -> str | None:
        """Instagram lets a business answer only after the person wrote: never first."""
        return None

    def find_sent(self, reply: OutboundReply, since: datetime) -> SentReply | None:
        """Look for this reply under its comment or in the DM conversation; mentions: None."""
        own = {self.ig_user_id, self.page_id}
        if reply.kind == "comment":
            page = self.graph.get(f"{_root(reply)}/replies", {"fields": _REPLY_FIELDS})
            found = sent_match(
                edge({"r": page}, "r"), own=own, text=reply.text, since=since,
                text_key="text", time_key="timestamp",
            )  # fmt: skip
            return None if found is None else _sent(found, "timestamp")
        if reply.kind != "dm":
            # Comments on other people's media cannot be listed with our token.
            return None
        page = self.graph.get(
            f"{self.page_id}/conversations",
            {"platform": "instagram", "user_id": _root(reply), "fields": CONVERSATION_FIELDS},
        )
        messages = [
            m for c in edge({"c": page}, "c") if isinstance(c, dict) for m in edge(c, "messages")
        ]
        found = sent_match(
            messages, own=own, text=reply.text, since=since,
            text_key="message", time_key="created_time",
        )  # fmt: skip
        return None if found is None else _sent(found, "created_time")


def _item(
    raw: Any, label: str, ig_user_id: str, *, text_key: str, time_key: str, **fields: Any
) -> InboundItem:
    if not isinstance(raw, dict):
        raise PayloadError(f"{label}: not a JSON object")
    author = user_field(raw, "from", label)
    return InboundItem(
        platform="instagram",
        account_ref=ig_user_id,
        external_id=text_field(raw, "id", label),
        author=Author(platform_user_id=author["id"], handle=author.get("username")),
        text=text_field(raw, text_key, label, empty_ok=True),
        created_at=parse_time(raw.get(time_key), label),
        raw=raw,
        **fields,
    )


def parse_comment(
    raw: Any, ig_user_id: str, *, media: Any, parent: str | None = None
) -> InboundItem:
    """Turn a comment on our media into an item; a reply names its top-level `parent`."""
    media_id = media.get("id") if isinstance(media, dict) else None
    if not isinstance(media_id, str) or not media_id:
        raise PayloadError("Instagram comment: its media has no id (field 'media.id')")
    caption = media.get("caption")
    context = {"post_id": media_id, "post_text": caption if isinstance(caption, str) else ""}
    label = f"Instagram comment {raw.get('id') if isinstance(raw, dict) else '?'}"
    root = parent or (text_field(raw, "id", label) if isinstance(raw, dict) else None)
    return _item(
        raw, label, ig_user_id, text_key="text", time_key="timestamp",
        kind="comment", thread_key=f"comment:{root}", in_reply_to=parent or media_id,
        context=context,
    )  # fmt: skip


def parse_mention(raw: Any, ig_user_id: str) -> InboundItem:
    """Turn media we are tagged in into a mention item, threaded by the media."""
    label = f"Instagram mention {raw.get('id') if isinstance(raw, dict) else '?'}"
    if not isinstance(raw, dict):
        raise PayloadError(f"{label}: not a JSON object")
    media_id = text_field(raw, "id", label)
    # Tagged media name their owner by username only; it stands in for the user id.
    username = text_field(raw, "username", label)
    caption = text_field(raw, "caption", label, empty_ok=True)
    return InboundItem(
        platform="instagram",
        account_ref=ig_user_id,
        external_id=media_id,
        kind="mention",
        author=Author(platform_user_id=username, handle=username),
        text=caption,
        created_at=parse_time(raw.get("timestamp"), label),
        thread_key=f"media:{media_id}",
        context={"media_id": media_id, "post_text": caption},
        raw=raw,
    )


def parse_message(raw: Any, ig_user_id: str, *, conversation_id: str) -> InboundItem:
    """Turn a customer's Instagram message into a DM item, threaded by the customer."""
    author = raw.get("from") if isinstance(raw, dict) else None
    customer = author.get("id") if isinstance(author, dict) else None
    label = f"Instagram message {raw.get('id') if isinstance(raw, dict) else '?'}"
    return _item(
        raw, label, ig_user_id, text_key="message", time_key="created_time",
        kind="dm", thread_key=f"dm:{customer}", context={"conversation_id": conversation_id},
    )  # fmt: skip


_SHAPES: dict[str, ShapeParser] = {
    **INSTAGRAM_WEBHOOK_SHAPES,
    "comment": parse_comment,
    "mention": parse_mention,
    "message": parse_message,
    "media": cannot_retry("Instagram media without an id"),
    "conversation": cannot_retry("An Instagram conversation without an id"),
}


@register_retry("instagram")
def retry_instagram(raw: Mapping[str, Any]) -> InboundItem:
    """Parse an Instagram dead letter again with the parser its envelope's shape names."""
    return retry_envelope(raw, "instagram", _SHAPES)


def _root(reply: OutboundReply) -> str:
    # Our thread keys name the root object (comment:…, media:…, dm:IGSID).
    if ":" in reply.thread_key:
        return reply.thread_key.split(":", 1)[1]
    return reply.in_reply_to or reply.recipient.platform_user_id


def _sent(row: Json, time_key: str) -> SentReply:
    return SentReply(
        external_id=row["id"], created_at=parse_time(row.get(time_key), "reply"), raw=row
    )


@register("instagram")
def make_instagram(
    credentials: Mapping[str, str], settings: Mapping[str, Any]
) -> InstagramConnector:
    """Build the Instagram connector from its Page's access token and the two ids."""
    return InstagramConnector(credentials, settings)
