"""Facebook Page connector: page feed comments and Messenger through a Page access token."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from connectors.base import (
    Author,
    ConnectorError,
    InboundItem,
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
from connectors.graph import Clock, GraphClient, Json, parse_time, unix, utc_now, verify_page
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
from connectors.meta_webhook import PAGE_WEBHOOK_SHAPES
from connectors.meta_webhook import parse_page_webhook as parse_page_webhook

COMMENT_LIMIT = 8000
MESSENGER_LIMIT = 2000
# Comments on older posts still arrive: the feed is re-read for posts this young.
POST_WINDOW = timedelta(days=7)
FEED_FIELDS = (
    "id,message,from,created_time,comments.limit(100){id,message,from,created_time,"
    "parent{id},comments{id,message,from,created_time}}"
)
CONVERSATION_FIELDS = (
    "participants,updated_time,messages.limit(50){id,message,from,to,created_time}"
)


def thread_root(thread_key: str) -> str:
    """The Graph object id behind a thread key (`comment:…`, `post:…`, `dm:…`)."""
    return thread_key.split(":", 1)[1] if ":" in thread_key else thread_key


class FacebookConnector:
    """Reads a Page's feed comments and Messenger inbox, and answers as the Page."""

    platform = "facebook"
    # The larger limit (comments); Messenger's 2000 is enforced in send_reply.
    max_reply_length = COMMENT_LIMIT

    def __init__(
        self,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        *,
        clock: Clock = utc_now,
    ) -> None:
        """Read the page id, the human-agent flag and the Page access token."""
        page_id = settings.get("page_id")
        if not isinstance(page_id, str) or not page_id.strip():
            raise ConnectorError("Facebook setting 'page_id' is missing")
        human_agent = settings.get("human_agent_enabled", False)
        if not isinstance(human_agent, bool):
            raise ConnectorError("Facebook setting 'human_agent_enabled' must be true or false")
        self.page_id = page_id.strip()
        self.human_agent = human_agent
        self._clock = clock
        self.graph = GraphClient(credentials.get("page_access_token", ""), clock=clock)

    def reply_limit(self, kind: str) -> int:
        """The longest reply Facebook accepts for an item kind."""
        return MESSENGER_LIMIT if kind == "dm" else COMMENT_LIMIT

    def identity(self) -> PostingIdentity:
        """Check that the token is the Page token of the configured page and name the page."""
        me = verify_page(self.graph, self.page_id)
        name = str(me.get("name") or self.page_id)
        username = me.get("username")
        return PostingIdentity(
            platform=self.platform,
            account_ref=self.page_id,
            handle=username if isinstance(username, str) and username else name,
            display_name=name,
        )

    def poll(self, cursor: Mapping[str, Any] | None) -> PollResult:
        """Fetch new feed comments, visitor posts and Messenger messages since the cursor."""
        feed = Watermark.read(cursor, "feed")
        floor = feed.floor()
        start = self._clock() - POST_WINDOW
        since = unix(start if floor is None else min(floor, start))
        posts, feed_next = self.graph.pages(
            f"{self.page_id}/feed",
            {"fields": FEED_FIELDS, "since": str(since), "limit": "25"},
            resume=feed.resume,
        )
        harvest = Harvest()
        for post in posts:
            self._harvest_post(harvest, post)
        feed_times = [i.created_at for i in harvest.items]
        feed_items = [i for i in harvest.items if feed.fresh(i.created_at)]

        dms = Watermark.read(cursor, "dm")
        conversations, dm_next = self.graph.pages(
            f"{self.page_id}/conversations",
            {"platform": "messenger", "fields": CONVERSATION_FIELDS, "limit": "25"},
            resume=dms.resume,
            # Conversations come newest-updated first: a page of stale ones ends the walk.
            done=lambda rows: not any(_updated_since(c, dms) for c in rows),
        )
        inbox = Harvest()
        for conversation in conversations:
            if _updated_since(conversation, dms):
                self._harvest_conversation(inbox, conversation)
        dm_items = [i for i in inbox.items if dms.fresh(i.created_at)]
        return PollResult(
            items=feed_items + dm_items,
            failures=harvest.failures + inbox.failures,
            cursor={
                "feed": feed.advance(feed_times, feed_next),
                "dm": dms.advance((i.created_at for i in inbox.items), dm_next),
            },
        )

    def _own(self, raw: Any) -> bool:
        author = raw.get("from") if isinstance(raw, dict) else None
        return isinstance(author, dict) and author.get("id") == self.page_id

    def _harvest_post(self, harvest: Harvest, post: Any) -> None:
        if not isinstance(post, dict) or not isinstance(post.get("id"), str):
            harvest.fail("feed_entry", post, self.page_id, "Facebook feed entry has no post id")
            return
        post_id: str = post["id"]
        if not self._own(post):
            harvest.take("visitor_post", parse_visitor_post, post, self.page_id)
        # Only what a comment's item needs of its post: not the post's whole comment tree.
        about = {"id": post_id, "message": post.get("message")}
        for comment in edge(post, "comments"):
            cid = comment.get("id") if isinstance(comment, dict) else None
            if not isinstance(cid, str) or not cid:
                error = f"Facebook comment on post {post_id} has no id"
                harvest.fail("comment", comment, self.page_id, error, post=about)
                continue
            parent = comment.get("parent")
            parent_id = parent.get("id") if isinstance(parent, dict) else None
            # Graph nests replies one level; a reply to a reply still joins its root's thread.
            root = parent_id if isinstance(parent_id, str) and parent_id else cid
            if not self._own(comment):
                harvest.take("comment", parse_comment, comment, self.page_id, post=about)
            for reply in edge(comment, "comments"):
                if not self._own(reply):
                    harvest.take(
                        "comment", parse_comment, reply, self.page_id,
                        post=about, root=root, parent=cid,
                    )  # fmt: skip

    def _harvest_conversation(self, harvest: Harvest, conversation: Any) -> None:
        if not isinstance(conversation, dict) or not isinstance(conversation.get("id"), str):
            error = "Messenger conversation has no id"
            harvest.fail("conversation", conversation, self.page_id, error)
            return
        for raw in edge(conversation, "messages"):
            if not self._own(raw):
                harvest.take(
                    "message", parse_message, raw, self.page_id, conversation_id=conversation["id"]
                )

    def reply_length(self, text: str) -> int:
        """Facebook counts plain characters."""
        return len(text)

    def send_reply(self, reply: OutboundReply) -> SentReply:
        """Reply under the customer's comment, or send a Messenger message inside its window."""
        now = self._clock()
        if reply.kind == "comment":
            check_length(reply.text, COMMENT_LIMIT, "Facebook comments")
            target = reply.in_reply_to or thread_root(reply.thread_key)
            result = self.graph.post(f"{target}/comments", {"message": reply.text})
            ext_id = result.get("id")
        elif reply.kind == "dm":
            check_length(reply.text, MESSENGER_LIMIT, "Messenger messages")
            fields = window_args(
                reply.last_inbound_at, now, human_agent=self.human_agent, product="Messenger"
            )
            result = self.graph.post(
                f"{self.page_id}/messages",
                {
                    "recipient": json.dumps({"id": _psid(reply)}),
                    "message": json.dumps({"text": reply.text}, ensure_ascii=False),
                    **fields,
                },
            )
            ext_id = result.get("message_id")
        else:
            raise ReplyRefused(f"Facebook has no {reply.kind} items to answer")
        if not isinstance(ext_id, str) or not ext_id:
            raise ConnectorError("Facebook accepted the reply but returned no id")
        return SentReply(external_id=ext_id, created_at=now, raw=result)

    def direct_thread_key(self, recipient: Author) -> str | None:
        """Messenger lets a business answer only after the person wrote: never first."""
        return None

    def find_sent(self, reply: OutboundReply, since: datetime) -> SentReply | None:
        """Look for this reply, from the page and with the same text, posted since `since`."""
        if reply.kind == "comment":
            targets = dict.fromkeys([reply.in_reply_to or "", thread_root(reply.thread_key)])
            for target in filter(None, targets):
                page = self.graph.get(
                    f"{target}/comments",
                    {"fields": "id,message,from,created_time", "order": "reverse_chronological"},
                )
                found = sent_match(
                    edge({"c": page}, "c"), own={self.page_id}, text=reply.text, since=since,
                    text_key="message", time_key="created_time",
                )  # fmt: skip
                if found is not None:
                    return _sent(found)
            return None
        if reply.kind != "dm":
            return None
        page = self.graph.get(
            f"{self.page_id}/conversations",
            {
                "platform": "messenger",
                "user_id": _psid(reply),
                "fields": "messages.limit(25){id,message,from,created_time}",
            },
        )
        messages = [
            m for c in edge({"c": page}, "c") if isinstance(c, dict) for m in edge(c, "messages")
        ]
        found = sent_match(
            messages, own={self.page_id}, text=reply.text, since=since,
            text_key="message", time_key="created_time",
        )  # fmt: skip
        return None if found is None else _sent(found)


def _item(raw: Any, label: str, page_id: str, **fields: Any) -> InboundItem:
    if not isinstance(raw, dict):
        raise PayloadError(f"{label}: not a JSON object")
    author = user_field(raw, "from", label)
    return InboundItem(
        platform="facebook",
        account_ref=page_id,
        external_id=text_field(raw, "id", label),
        author=Author(platform_user_id=author["id"], display_name=author.get("name")),
        text=text_field(raw, "message", label, empty_ok=True),
        created_at=parse_time(raw.get("created_time"), label),
        raw=raw,
        **fields,
    )


def _post_context(post: Any) -> dict[str, str]:
    post_id = post.get("id") if isinstance(post, dict) else None
    if not isinstance(post_id, str) or not post_id:
        raise PayloadError("Facebook comment: its post has no id (field 'post.id')")
    message = post.get("message")
    return {"post_id": post_id, "post_text": message if isinstance(message, str) else ""}


def parse_visitor_post(post: Any, page_id: str) -> InboundItem:
    """Turn a visitor's post on the page's feed into a comment item, threaded by itself."""
    context = _post_context(post)
    label = f"Facebook visitor post {context['post_id']}"
    thread_key = f"post:{context['post_id']}"
    return _item(post, label, page_id, kind="comment", thread_key=thread_key, context=context)


def parse_comment(
    raw: Any, page_id: str, *, post: Any, root: str | None = None, parent: str | None = None
) -> InboundItem:
    """Turn a feed comment into an item; a nested reply names its `root` and `parent` comment."""
    context = _post_context(post)
    label = f"Facebook comment {raw.get('id') if isinstance(raw, dict) else '?'}"
    if parent is None:
        # A top-level comment names its own parent, if any, and otherwise roots its thread.
        cid = text_field(raw, "id", label) if isinstance(raw, dict) else None
        above = raw.get("parent") if isinstance(raw, dict) else None
        above_id = above.get("id") if isinstance(above, dict) else None
        parent_id = above_id if isinstance(above_id, str) and above_id else None
        root, in_reply_to = parent_id or cid, parent_id or context["post_id"]
    else:
        in_reply_to = parent
    return _item(
        raw, label, page_id, kind="comment",
        thread_key=f"comment:{root}", in_reply_to=in_reply_to, context=context,
    )  # fmt: skip


def parse_message(raw: Any, page_id: str, *, conversation_id: str) -> InboundItem:
    """Turn a customer's Messenger message into a DM item, threaded by the customer."""
    author = raw.get("from") if isinstance(raw, dict) else None
    customer = author.get("id") if isinstance(author, dict) else None
    label = f"Messenger message {raw.get('id') if isinstance(raw, dict) else '?'}"
    return _item(
        raw, label, page_id,
        kind="dm", thread_key=f"dm:{customer}", context={"conversation_id": conversation_id},
    )  # fmt: skip


_SHAPES: dict[str, ShapeParser] = {
    **PAGE_WEBHOOK_SHAPES,
    "visitor_post": parse_visitor_post,
    "comment": parse_comment,
    "message": parse_message,
    "feed_entry": cannot_retry("A Facebook feed entry without a post id"),
    "conversation": cannot_retry("A Messenger conversation without an id"),
}


@register_retry("facebook")
def retry_facebook(raw: Mapping[str, Any]) -> InboundItem:
    """Parse a Facebook dead letter again with the parser its envelope's shape names."""
    return retry_envelope(raw, "facebook", _SHAPES)


def _updated_since(conversation: Any, mark: Watermark) -> bool:
    updated = conversation.get("updated_time") if isinstance(conversation, dict) else None
    try:
        return mark.fresh(parse_time(updated, "conversation"))
    except PayloadError:
        return True  # let the parser report it


def _psid(reply: OutboundReply) -> str:
    # The thread key is ours and always names the customer; the recipient is a fallback.
    if reply.thread_key.startswith("dm:"):
        return reply.thread_key[3:]
    return reply.recipient.platform_user_id


def _sent(row: Json) -> SentReply:
    return SentReply(
        external_id=row["id"], created_at=parse_time(row.get("created_time"), "reply"), raw=row
    )


@register("facebook")
def make_facebook(credentials: Mapping[str, str], settings: Mapping[str, Any]) -> FacebookConnector:
    """Build the Facebook Page connector from its Page access token and page id."""
    return FacebookConnector(credentials, settings)
