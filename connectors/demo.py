"""Offline demo connector: deterministic, realistic care traffic for the fictional Quendelmarkt.

Nothing here touches a network or a database. Item i is derived only from (seed, i), so
the same seed yields the same stream however it is polled.
"""

from __future__ import annotations

import copy
import math
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors import demo_texts as texts
from connectors.base import (
    KINDS,
    Author,
    ConnectorError,
    FailedPayload,
    InboundItem,
    Kind,
    OutboundReply,
    PayloadError,
    PollResult,
    PostingIdentity,
    ReplyRefused,
    SentReply,
    TransientError,
    envelope,
    register,
    register_retry,
    retry_envelope,
)

DEFAULT_START = "2024-06-03T08:00:00+00:00"
MAX_BATCH = 50
FOLLOW_UP_SHARE = 0.3
LOOKBACK = 4
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _rng(seed: int, i: int, purpose: str) -> random.Random:
    # Not crypto: a seeded PRNG is exactly what makes the demo stream reproducible.
    return random.Random(f"{seed}:{i}:{purpose}")  # noqa: S311


@dataclass(frozen=True, slots=True)
class _Root:
    kind: Kind
    customer: texts.Customer
    post: tuple[str, str]  # drawn for every kind, used by comments only


def _root(seed: int, i: int) -> _Root:
    rng = _rng(seed, i, "root")
    customer = rng.choice(texts.CAST)
    kind: Kind = rng.choices(KINDS, weights=(4, 3, 3))[0]
    post = rng.choice(texts.POSTS)
    return _Root(kind, customer, post)


def _wants_follow_up(seed: int, i: int) -> tuple[bool, int]:
    rng = _rng(seed, i, "role")
    return rng.random() < FOLLOW_UP_SHARE, rng.randint(1, LOOKBACK)


def _root_index(seed: int, i: int) -> int | None:
    """Index of the root item i follows up on, or None when i starts its own thread."""
    wants, distance = _wants_follow_up(seed, i)
    j = i - distance
    # Only items that did not themselves want to follow up count as roots: this keeps
    # the decision local to (seed, j) instead of recursing through the whole history.
    if not wants or j < 0 or _wants_follow_up(seed, j)[0]:
        return None
    return j


def _item_id(seed: int, i: int, kind: Kind) -> str:
    prefix = {"dm": "dm", "comment": "cm", "mention": "tw"}[kind]
    return f"{prefix}-{seed}-{i:06d}"


def _text(seed: int, i: int, root: _Root, follow_up: bool) -> str:
    rng = _rng(seed, i, "text")
    return texts.compose(rng, root.customer, follow_up=follow_up, mention=root.kind == "mention")


def _iso_ms(created_ms: int, zone: str) -> str:
    # Platforms report milliseconds; the zone suffix differs (Graph "+0000", X/Twitter "Z").
    created = _EPOCH + timedelta(milliseconds=created_ms)
    return created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created_ms % 1000:03d}{zone}"


def _user(c: texts.Customer) -> dict[str, str]:
    return {"id": c.user_id, "username": c.handle, "name": c.display_name}


def build_payload(seed: int, i: int, created_ms: int) -> dict[str, Any]:
    """Build the well-formed platform-like payload of item i for a seed."""
    j = _root_index(seed, i)
    root = _root(seed, i if j is None else j)
    ext_id = _item_id(seed, i, root.kind)
    root_id = None if j is None else _item_id(seed, j, root.kind)
    text = _text(seed, i, root, follow_up=j is not None)
    c = root.customer
    if root.kind == "dm":
        return {
            "event_type": "direct_message",
            "conversation_id": f"conv-{seed}-{c.user_id}",
            "message": {
                "id": ext_id,
                "text": text,
                "created_timestamp": created_ms,
                "reply_to": root_id,
            },
            "sender": _user(c),
            "recipient": {"id": texts.ACCOUNT_REF},
        }
    if root.kind == "comment":
        post_id, post_text = root.post
        return {
            "event_type": "comment",
            "id": ext_id,
            "message": text,
            "created_time": _iso_ms(created_ms, "+0000"),
            "from": _user(c),
            "parent_id": root_id,
            "post": {"id": post_id, "owner_id": texts.ACCOUNT_REF, "message": post_text},
        }
    refs = [] if root_id is None else [{"type": "replied_to", "id": root_id}]
    return {
        "event_type": "mention",
        "for_user_id": texts.ACCOUNT_REF,
        "data": {
            "id": ext_id,
            "text": text,
            "author_id": c.user_id,
            "conversation_id": root_id or ext_id,
            "created_at": _iso_ms(created_ms, "Z"),
            "referenced_tweets": refs,
            "lang": c.lang,
        },
        "includes": {"users": [_user(c)]},
    }


_BREAKAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # event: (text path, author path, time path)
    "direct_message": (("message", "text"), ("sender",), ("message", "created_timestamp")),
    "comment": (("message",), ("from",), ("created_time",)),
    "mention": (("data", "text"), ("includes", "users"), ("data", "created_at")),
}


def _malform(payload: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    broken = copy.deepcopy(payload)
    text_path, author_path, time_path = _BREAKAGES[broken["event_type"]]
    path, value = rng.choice(
        (
            (text_path, None),
            (author_path, None),
            (time_path, "gestern, 14 Uhr"),
            (text_path, 12345),
        )
    )
    parent = broken
    for part in path[:-1]:
        parent = parent[part]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return broken


def _dig(raw: Mapping[str, Any], path: str, label: str, what: str = "a required field") -> Any:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, Mapping) or node.get(part) is None:
            raise PayloadError(f"{label}: {what} is missing (field {path!r})")
        node = node[part]
    return node


def _string(raw: Mapping[str, Any], path: str, label: str, what: str = "a required field") -> str:
    value = _dig(raw, path, label, what)
    if not isinstance(value, str):
        raise PayloadError(
            f"{label}: {what} must be a string, got {type(value).__name__} (field {path!r})"
        )
    if not value.strip():
        raise PayloadError(f"{label}: {what} is empty (field {path!r})")
    return value


def _optional(raw: Mapping[str, Any], path: str) -> str | None:
    try:
        return _string(raw, path, "")
    except PayloadError:
        return None


def _timestamp(raw: Mapping[str, Any], path: str, label: str) -> datetime:
    value = _dig(raw, path, label, "the timestamp")
    if isinstance(value, int) and not isinstance(value, bool):
        return _EPOCH + timedelta(milliseconds=value)
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise PayloadError(
            f"{label}: the timestamp is not a date with time zone: {value!r} (field {path!r})"
        )
    return parsed.astimezone(UTC)


def _author(user: Any, path: str, label: str) -> Author:
    if not isinstance(user, Mapping):
        raise PayloadError(f"{label}: the author is missing (field {path!r})")
    return Author(
        platform_user_id=_string(user, "id", label, "the author's id"),
        handle=_optional(user, "username"),
        display_name=_optional(user, "name"),
    )


def _parse_dm(raw: Mapping[str, Any]) -> InboundItem:
    label = f"direct_message payload {_optional(raw, 'message.id') or '?'}"
    return InboundItem(
        platform="demo",
        account_ref=_string(raw, "recipient.id", label, "the recipient account"),
        external_id=_string(raw, "message.id", label, "the message id"),
        kind="dm",
        author=_author(raw.get("sender"), "sender", label),
        text=_string(raw, "message.text", label, "the text"),
        created_at=_timestamp(raw, "message.created_timestamp", label),
        thread_key=_string(raw, "conversation_id", label, "the conversation id"),
        in_reply_to=_optional(raw, "message.reply_to"),
        raw=dict(raw),
    )


def _parse_comment(raw: Mapping[str, Any]) -> InboundItem:
    label = f"comment payload {_optional(raw, 'id') or '?'}"
    ext_id = _string(raw, "id", label, "the comment id")
    parent = _optional(raw, "parent_id")
    return InboundItem(
        platform="demo",
        account_ref=_string(raw, "post.owner_id", label, "the post owner"),
        external_id=ext_id,
        kind="comment",
        author=_author(raw.get("from"), "from", label),
        text=_string(raw, "message", label, "the text"),
        created_at=_timestamp(raw, "created_time", label),
        # Replies to a comment belong to the root comment's thread.
        thread_key=parent or ext_id,
        in_reply_to=parent,
        context={
            "post_id": _string(raw, "post.id", label, "the post id"),
            "post_text": _string(raw, "post.message", label, "the post text"),
        },
        raw=dict(raw),
    )


def _parse_mention(raw: Mapping[str, Any]) -> InboundItem:
    label = f"mention payload {_optional(raw, 'data.id') or '?'}"
    ext_id = _string(raw, "data.id", label, "the tweet id")
    author_id = _string(raw, "data.author_id", label, "the author's id")
    users = (
        raw.get("includes", {}).get("users") if isinstance(raw.get("includes"), Mapping) else None
    )
    matches = [u for u in users or () if isinstance(u, Mapping) and u.get("id") == author_id]
    if not isinstance(users, list) or not matches:
        raise PayloadError(f"{label}: the author {author_id!r} is missing (field 'includes.users')")
    refs = raw["data"].get("referenced_tweets")
    replied = [
        r["id"]
        for r in (refs if isinstance(refs, list) else [])
        if isinstance(r, Mapping) and r.get("type") == "replied_to" and isinstance(r.get("id"), str)
    ]
    return InboundItem(
        platform="demo",
        account_ref=_string(raw, "for_user_id", label, "the mentioned account"),
        external_id=ext_id,
        kind="mention",
        author=_author(matches[0], "includes.users", label),
        text=_string(raw, "data.text", label, "the text"),
        created_at=_timestamp(raw, "data.created_at", label),
        thread_key=_optional(raw, "data.conversation_id") or ext_id,
        in_reply_to=replied[0] if replied else None,
        raw=dict(raw),
    )


_PARSERS: dict[str, Callable[[Mapping[str, Any]], InboundItem]] = {
    "direct_message": _parse_dm,
    "comment": _parse_comment,
    "mention": _parse_mention,
}


def parse_payload(raw: Mapping[str, Any]) -> InboundItem:
    """Parse one demo platform payload into an item, or raise PayloadError saying why."""
    if not isinstance(raw, Mapping):
        raise PayloadError(f"payload must be a JSON object, got {type(raw).__name__}")
    event = raw.get("event_type")
    parser = _PARSERS.get(event) if isinstance(event, str) else None
    if parser is None:
        raise PayloadError(f"payload has unknown event_type {event!r}")
    return parser(raw)


def _parse_entry(entry: Any, account_ref: str) -> InboundItem:
    # The demo payload names its own account; the envelope's is only for people reading it.
    return parse_payload(entry)


@register_retry("demo")
def retry_payload(raw: Mapping[str, Any]) -> InboundItem:
    """Parse a dead letter's stored demo payload again (enveloped, or bare as stored before)."""
    if "envelope" not in raw and "event_type" in raw:
        return parse_payload(raw)
    return retry_envelope(raw, "demo", {"payload": _parse_entry})


def _setting(settings: Mapping[str, Any], key: str, default: Any, kind: type) -> Any:
    value = settings.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConnectorError(f"Demo setting {key!r} must be {kind.__name__}, got {value!r}")
    return value


class DemoConnector:
    """Serves generated traffic for the fictional Quendelmarkt as if it came from a platform."""

    platform = "demo"
    max_reply_length = 2000

    def __init__(
        self,
        credentials: Mapping[str, str] | None = None,
        settings: Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Read the settings (the demo needs no credentials); clock defaults to UTC now."""
        settings = settings or {}
        self.seed: int = _setting(settings, "seed", 7, int)
        self.rate: float = _setting(settings, "rate", 6.0, float)
        self.backlog: int = _setting(settings, "backlog", 12, int)
        self.malformed_every: int = _setting(settings, "malformed_every", 0, int)
        self.fail_replies: bool = _setting(settings, "fail_replies", False, bool)
        start_text: str = _setting(settings, "start", DEFAULT_START, str)
        try:
            start = datetime.fromisoformat(start_text)
        except ValueError:
            raise ConnectorError(f"Demo setting 'start' is not ISO-8601: {start_text!r}") from None
        # A naive start is read as UTC: the settings form has no time zone of its own.
        self.start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
        if not math.isfinite(self.rate) or self.rate <= 0:
            raise ConnectorError(f"Demo setting 'rate' must be positive, got {self.rate!r}")
        if self.backlog < 0 or self.malformed_every < 0:
            raise ConnectorError("Demo settings 'backlog' and 'malformed_every' must be >= 0")
        self._clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))

    def identity(self) -> PostingIdentity:
        """Return Quendelmarkt's official demo account."""
        return PostingIdentity(
            platform=self.platform,
            account_ref=texts.ACCOUNT_REF,
            handle=texts.BRAND_HANDLE,
            display_name=texts.BRAND_NAME,
        )

    def available(self, now: datetime) -> int:
        """Count the items that exist at a given moment."""
        elapsed = max(0.0, (now - self.start).total_seconds())
        return self.backlog + math.floor(elapsed * self.rate / 60)

    def created_ms(self, i: int) -> int:
        """Milliseconds since the epoch at which item i was posted."""
        start_ms = (self.start - _EPOCH) // timedelta(milliseconds=1)
        if i < self.backlog:
            return start_ms - 3_600_000 + i * 3_600_000 // self.backlog
        return start_ms + round((i - self.backlog) * 60_000 / self.rate)

    def payload(self, i: int) -> dict[str, Any]:
        """Return item i's raw payload, deliberately broken when malformed_every says so."""
        good = build_payload(self.seed, i, self.created_ms(i))
        if self.malformed_every and (i + 1) % self.malformed_every == 0:
            return _malform(good, _rng(self.seed, i, "malform"))
        return good

    def poll(self, cursor: Mapping[str, Any] | None) -> PollResult:
        """Return up to 50 items that appeared since the cursor."""
        start = 0 if cursor is None else cursor.get("next_index", 0)
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise ConnectorError(f"Demo cursor is invalid: {dict(cursor or {})!r}")
        end = max(start, min(self.available(self._clock()), start + MAX_BATCH))
        items: list[InboundItem] = []
        failures: list[FailedPayload] = []
        for i in range(start, end):
            raw = self.payload(i)
            try:
                items.append(parse_payload(raw))
            except PayloadError as err:
                kept = envelope("payload", texts.ACCOUNT_REF, raw)
                failures.append(FailedPayload(raw=kept, error=str(err)))
        return PollResult(items=items, failures=failures, cursor={"next_index": end})

    def reply_length(self, text: str) -> int:
        """The demo platform counts plain characters."""
        return len(text)

    def find_sent(self, reply: OutboundReply, since: datetime) -> SentReply | None:
        """The demo keeps no timeline to look in."""
        return None

    def direct_thread_key(self, recipient: Author) -> str | None:
        """The demo DM conversation id, as its DM payloads name it."""
        return f"conv-{self.seed}-{recipient.platform_user_id}"

    def send_reply(self, reply: OutboundReply) -> SentReply:
        """Pretend to post a reply, enforcing the length limit and the simulated outage."""
        if not reply.text.strip():
            raise ReplyRefused(
                f"Reply is empty ({len(reply.text)} characters of whitespace at most); the demo "
                f"platform needs 1 to {self.max_reply_length} characters"
            )
        if len(reply.text) > self.max_reply_length:
            raise ReplyRefused(
                f"Reply is {len(reply.text)} characters long; the demo platform allows at most "
                f"{self.max_reply_length}"
            )
        if self.fail_replies:
            raise TransientError("Demo platform rejected the reply (simulated outage)")
        now = self._clock()
        ext_id = f"demo-out-{uuid.uuid4().hex}"
        return SentReply(
            external_id=ext_id,
            created_at=now,
            raw={
                "id": ext_id,
                "from": texts.BRAND_HANDLE,
                "kind": reply.kind,
                "thread_key": reply.thread_key,
                "in_reply_to": reply.in_reply_to,
                "recipient": reply.recipient.platform_user_id,
                "text": reply.text,
                "created_at": now.isoformat(),
            },
        )


@register("demo")
def make_demo(credentials: Mapping[str, str], settings: Mapping[str, Any]) -> DemoConnector:
    """Build the demo connector; it needs no credentials."""
    return DemoConnector(credentials, settings)
