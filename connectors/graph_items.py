"""Payload helpers shared by the Meta connectors: fields, cursors, reply rules, webhooks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.base import (
    Author,
    ConnectorError,
    FailedPayload,
    InboundItem,
    PayloadError,
    ReplyRefused,
    ShapeParser,
    WebhookBatch,
    envelope,
)
from connectors.graph import EPOCH, Json, parse_time, unix

# Re-read a little before the watermark: Graph timestamps have second precision and items can
# show up late; ingestion is idempotent, so the overlap only costs duplicates it drops.
OVERLAP = timedelta(minutes=5)
# Meta skews clocks and rounds to seconds: a sent reply may carry a time just before `since`.
SENT_SKEW = timedelta(minutes=1)
WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)


def text_field(raw: Mapping[str, Any], key: str, label: str, *, empty_ok: bool = False) -> str:
    """A string field of a payload, or PayloadError naming it."""
    value = raw.get(key)
    if value is None and empty_ok:
        return ""
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise PayloadError(f"{label}: field {key!r} must be a non-empty string, got {value!r}")
    return value


def user_field(raw: Mapping[str, Any], key: str, label: str) -> Json:
    """A `{id, name|username}` user object of a payload, or PayloadError naming it."""
    value = raw.get(key)
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        raise PayloadError(f"{label}: the author ({key!r}) is missing or has no id")
    return value


def edge(raw: Mapping[str, Any], key: str) -> list[Any]:
    """The `data` list of a nested Graph edge (`{"data": [...], "paging": ...}`), else []."""
    value = raw.get(key)
    data = value.get("data") if isinstance(value, dict) else None
    return data if isinstance(data, list) else []


def window_args(
    last_inbound_at: datetime | None, now: datetime, *, human_agent: bool, product: str
) -> dict[str, str]:
    """The Send API fields a DM needs inside the messaging window, or ReplyRefused outside it."""
    tag_hint = (
        "7 days with the human-agent tag"
        if human_agent
        else "7 days with the human-agent tag, which this account has not enabled"
    )
    if last_inbound_at is None:
        raise ReplyRefused(
            f"We do not know when the customer last wrote, so we cannot prove {product}'s "
            f"reply window is open; {product} allows replies within 24 hours ({tag_hint})"
        )
    age = now - last_inbound_at
    if age <= WINDOW:
        return {"messaging_type": "RESPONSE"}
    if human_agent and age <= HUMAN_AGENT_WINDOW:
        return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    hours = int(age.total_seconds() // 3600)
    ago = f"{hours} hours" if hours < 72 else f"{hours // 24} days ({hours} hours)"
    raise ReplyRefused(
        f"The customer last wrote {ago} ago; {product} allows replies within 24 hours ({tag_hint})"
    )


def check_length(text: str, limit: int, what: str) -> None:
    """Refuse an empty reply or one longer than the platform's limit for its kind."""
    if not text.strip():
        raise ReplyRefused(f"Reply is empty; {what} need 1 to {limit} characters")
    if len(text) > limit:
        raise ReplyRefused(
            f"Reply is {len(text)} characters long; {what} allow at most {limit} characters"
        )


@dataclass(frozen=True, slots=True)
class Watermark:
    """One stream's cursor: newest item time of the last finished walk, and an unfinished walk."""

    since: int | None = None
    resume: dict[str, str] | None = None
    seen: int | None = None

    @classmethod
    def read(cls, cursor: Mapping[str, Any] | None, key: str) -> Watermark:
        """Read the stream's part of a poll cursor, refusing one that is not ours."""
        part = (cursor or {}).get(key)
        if part is None:
            return cls()
        ok = isinstance(part, dict) and all(
            part.get(k) is None or isinstance(part.get(k), int) for k in ("since", "seen")
        )
        resume = part.get("resume") if isinstance(part, dict) else None
        if not ok or not (resume is None or isinstance(resume, dict)):
            raise ConnectorError(f"Poll cursor {key!r} is invalid: {part!r}")
        return cls(part.get("since"), resume, part.get("seen"))

    def floor(self) -> datetime | None:
        """Items older than this were delivered by an earlier walk."""
        return None if self.since is None else EPOCH + timedelta(seconds=self.since) - OVERLAP

    def fresh(self, moment: datetime) -> bool:
        """Whether an item at `moment` may be new to the inbox."""
        floor = self.floor()
        return floor is None or moment >= floor

    def advance(self, times: Iterable[datetime], resume: dict[str, str] | None) -> dict[str, Any]:
        """The cursor part after a walk that saw `times` and stopped at `resume`."""
        newest = max([unix(t) for t in times] + [self.seen or 0, self.since or 0]) or None
        if resume is None:
            return {"since": newest, "resume": None, "seen": None}
        # Mid-walk the floor must stay put, or older pages still to come would look seen.
        return {"since": self.since, "resume": resume, "seen": newest}


class Harvest:
    """Items and failures gathered from payloads parsed one by one, so one bad row hides nothing.

    A failure keeps its entry in an envelope with the shape and context its parser took, so
    the platform's retry parser can call the same parser again after a fix.
    """

    def __init__(self) -> None:
        """Start empty."""
        self.items: list[InboundItem] = []
        self.failures: list[FailedPayload] = []

    def take(
        self, shape: str, parse: ShapeParser, entry: Any, account_ref: str, **context: Any
    ) -> None:
        """Parse `entry` with `parse(entry, account_ref, **context)`; keep the item or the error."""
        try:
            item = parse(entry, account_ref, **context)
        except PayloadError as err:
            self.fail(shape, entry, account_ref, str(err), **context)
            return
        if item is not None:
            self.items.append(item)

    def fail(self, shape: str, entry: Any, account_ref: str, error: str, **context: Any) -> None:
        """Keep an entry that cannot be parsed, with the context a retry needs."""
        self.failures.append(FailedPayload(envelope(shape, account_ref, entry, **context), error))


def messaging_item(event: Any, account_ref: str, *, platform: str) -> InboundItem | None:
    """Turn a webhook `messaging[]` event into a DM item; echoes, receipts and the like: None."""
    if not isinstance(event, dict):
        raise PayloadError(f"{platform} messaging event is not an object")
    # Delivery, read, reaction and postback events carry no customer message.
    if "message" not in event:
        return None
    message = event["message"]
    if not isinstance(message, dict):
        raise PayloadError(f"{platform} messaging event: 'message' is not an object")
    if message.get("is_echo") or message.get("is_deleted"):
        return None
    label = f"{platform} message {message.get('mid') or '?'}"
    mid = text_field(message, "mid", label)
    sender = user_field(event, "sender", label)
    if sender["id"] == account_ref:
        return None
    text = text_field(message, "text", label, empty_ok=True)
    attachments = message.get("attachments")
    kinds = [a.get("type") for a in attachments if isinstance(a, dict)] if attachments else []
    if not text and not kinds:
        raise PayloadError(f"{label}: neither text nor attachments")
    return InboundItem(
        platform=platform,
        account_ref=account_ref,
        external_id=mid,
        kind="dm",
        author=Author(platform_user_id=sender["id"]),
        text=text,
        created_at=parse_time(event.get("timestamp"), label),
        thread_key=f"dm:{sender['id']}",
        context={"attachments": kinds} if kinds else {},
        raw=event,
    )


def parse_webhook(
    payload: Mapping[str, Any], expected: str, shapes: Mapping[str, ShapeParser]
) -> list[WebhookBatch]:
    """Split a Meta webhook delivery into per-account batches; bad events become failures."""
    if not isinstance(payload, Mapping) or payload.get("object") != expected:
        got = payload.get("object") if isinstance(payload, Mapping) else type(payload).__name__
        raise PayloadError(f"Webhook delivery is not for object {expected!r}: {got!r}")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("Webhook delivery has no 'entry' list")
    batches: dict[str, Harvest] = {}
    for entry in entries:
        account = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(account, str) or not account:
            # Unattributable: kept under the empty account_ref so nothing is lost.
            error = "Webhook entry has no account id"
            batches.setdefault("", Harvest()).fail("webhook_entry", entry, "", error)
            continue
        harvest = batches.setdefault(account, Harvest())
        events, changes = entry.get("messaging") or [], entry.get("changes") or []
        for event in events if isinstance(events, list) else [events]:
            harvest.take("messaging", shapes["messaging"], event, account)
        for change in changes if isinstance(changes, list) else [changes]:
            time = entry.get("time")
            harvest.take("change", shapes["change"], change, account, entry_time=time)
    return [WebhookBatch(ref, h.items, h.failures) for ref, h in batches.items()]


def cannot_retry(what: str) -> ShapeParser:
    """A shape parser for a failure that holds no single item: a retry says so."""

    def refuse(entry: Any, account_ref: str, **context: Any) -> None:
        raise PayloadError(f"{what} holds no single item to parse again; discard it once checked")

    return refuse


def sent_match(
    rows: Iterable[Any], *, own: set[str], text: str, since: datetime, text_key: str, time_key: str
) -> Json | None:
    """The row among a timeline's rows that is our reply with this text, posted since `since`."""
    wanted = text.strip()
    for row in rows:
        if not isinstance(row, dict):
            continue
        author = row.get("from")
        if not isinstance(author, dict) or author.get("id") not in own:
            continue
        body = row.get(text_key)
        if (
            not isinstance(body, str)
            or body.strip() != wanted
            or not isinstance(row.get("id"), str)
        ):
            continue
        try:
            if parse_time(row.get(time_key), "sent reply") >= since - SENT_SKEW:
                return row
        except PayloadError:
            continue
    return None
