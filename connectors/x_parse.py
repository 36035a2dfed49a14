"""Pure functions that turn X API v2 and Account Activity payloads into items."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import (
    Author,
    FailedPayload,
    InboundItem,
    PayloadError,
    SentReply,
    envelope,
)
from connectors.x_text import comparable

PLATFORM = "x"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


def string(raw: Any, key: str, label: str, what: str) -> str:
    """Read a non-empty string field, or raise PayloadError naming it."""
    value = raw.get(key) if isinstance(raw, Mapping) else None
    if value is None:
        raise PayloadError(f"{label}: {what} is missing (field {key!r})")
    if not isinstance(value, str):
        raise PayloadError(f"{label}: {what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise PayloadError(f"{label}: {what} is empty (field {key!r})")
    return value


def optional(raw: Any, key: str) -> str | None:
    """Read a string field that may be absent."""
    value = raw.get(key) if isinstance(raw, Mapping) else None
    return value if isinstance(value, str) and value else None


def snowflake(value: Any) -> int | None:
    """An X id as a number (ids grow with time), or None when it is not one."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def newer_id(a: str | None, b: str | None) -> str | None:
    """The later of two X ids; either may be missing."""
    if a is None or snowflake(a) is None:
        return b if snowflake(b) is not None else a
    if b is None or snowflake(b) is None:
        return a
    return a if int(a) >= int(b) else b


def parse_v2_time(value: Any, label: str) -> datetime:
    """Parse an API v2 timestamp like 2024-01-15T10:30:00.000Z into aware UTC."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise PayloadError(f"{label}: the timestamp is not an ISO date with zone: {value!r}")
    return parsed.astimezone(UTC)


def users_by_id(page: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Index a v2 page's includes.users by user id."""
    includes = page.get("includes")
    users = includes.get("users") if isinstance(includes, Mapping) else None
    return {
        u["id"]: u
        for u in (users if isinstance(users, list) else [])
        if isinstance(u, Mapping) and isinstance(u.get("id"), str)
    }


def _author(user_id: str, users: Mapping[str, Mapping[str, Any]], label: str) -> Author:
    user = users.get(user_id)
    if user is None:
        raise PayloadError(f"{label}: the author {user_id!r} is missing from includes.users")
    return Author(user_id, optional(user, "username"), optional(user, "name"))


def parse_mention(
    tweet: Any, users: Mapping[str, Mapping[str, Any]], account_ref: str
) -> InboundItem:
    """Turn one v2 tweet of the mentions timeline into a mention item."""
    label = f"X mention {optional(tweet, 'id') or '?'}"
    ext_id = string(tweet, "id", label, "the tweet id")
    author_id = string(tweet, "author_id", label, "the author's id")
    refs = tweet.get("referenced_tweets")
    replied = [
        r["id"]
        for r in (refs if isinstance(refs, list) else [])
        if isinstance(r, Mapping) and r.get("type") == "replied_to" and isinstance(r.get("id"), str)
    ]
    author = _author(author_id, users, label)
    return InboundItem(
        platform=PLATFORM,
        account_ref=account_ref,
        external_id=ext_id,
        kind="mention",
        author=author,
        text=string(tweet, "text", label, "the text"),
        created_at=parse_v2_time(tweet.get("created_at"), label),
        thread_key=f"tweet:{optional(tweet, 'conversation_id') or ext_id}",
        in_reply_to=replied[0] if replied else None,
        context={"lang": tweet["lang"]} if isinstance(tweet.get("lang"), str) else {},
        raw={"data": dict(tweet), "includes": {"users": [dict(users[author_id])]}},
    )


def parse_dm_event(
    event: Any, users: Mapping[str, Mapping[str, Any]], account_ref: str
) -> InboundItem:
    """Turn one v2 MessageCreate DM event someone sent us into a DM item."""
    label = f"X direct message {optional(event, 'id') or '?'}"
    ext_id = string(event, "id", label, "the event id")
    sender = string(event, "sender_id", label, "the sender's id")
    author = _author(sender, users, label)
    return InboundItem(
        platform=PLATFORM,
        account_ref=account_ref,
        external_id=ext_id,
        kind="dm",
        author=author,
        text=string(event, "text", label, "the text"),
        created_at=parse_v2_time(event.get("created_at"), label),
        # The other participant, not dm_conversation_id: webhooks carry no conversation id,
        # and polled and pushed messages must land in the same thread.
        thread_key=f"dm:{sender}",
        context={"dm_conversation_id": event.get("dm_conversation_id")},
        raw={"data": dict(event), "includes": {"users": [dict(users[sender])]}},
    )


def page_errors(page: Mapping[str, Any], account_ref: str = "") -> list[FailedPayload]:
    """Keep the partial errors[] of a 200 answer as failures, so nothing goes unnoticed."""
    errors = page.get("errors")
    failures = []
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, Mapping):
            title = error.get("title") or "Error"
            detail = error.get("detail") or error.get("message") or "no detail"
            text = f"X reported a partial error: {title}: {detail}"
        else:
            text = "X reported a partial error"
        failures.append(FailedPayload(raw=envelope("x_error", account_ref, error), error=text))
    return failures


def parse_page(
    page: Mapping[str, Any],
    parse: Callable[[Any, Mapping[str, Mapping[str, Any]], str], InboundItem],
    account_ref: str,
    keep: Callable[[Any], bool] = lambda _: True,
    *,
    shape: str = "mention",
) -> tuple[list[InboundItem], list[FailedPayload]]:
    """Parse every entry of a v2 page on its own, so one broken entry spoils only itself.

    `shape` names the entries ("mention" or "dm_event") in the envelopes of failures.
    """
    users = users_by_id(page)
    data = page.get("data", [])
    items: list[InboundItem] = []
    failures = page_errors(page, account_ref)
    if not isinstance(data, list):
        kept = envelope("x_page", account_ref, data)
        failures.append(FailedPayload(kept, "X page: 'data' is not a list"))
        return items, failures
    author_key = "sender_id" if shape == "dm_event" else "author_id"
    for entry in data:
        if not keep(entry):
            continue
        try:
            items.append(parse(entry, users, account_ref))
        except PayloadError as err:
            # The author lives in the page's includes, not in the entry: keep it alongside.
            author = users.get(optional(entry, author_key) or "")
            includes = {"users": [dict(author)] if author is not None else []}
            kept = envelope(shape, account_ref, entry, includes=includes)
            failures.append(FailedPayload(kept, str(err)))
    return items, failures


def parse_v1_time(value: Any, label: str) -> datetime:
    """Parse a v1.1 timestamp like 'Mon Jan 15 10:30:00 +0000 2024' (locale-independent)."""
    parts = value.split() if isinstance(value, str) else []
    try:
        _, month, day, clock, zone, year = parts
        hour, minute, second = (int(p) for p in clock.split(":"))
        local = datetime(int(year), _MONTHS[month], int(day), hour, minute, second)
        return datetime.fromisoformat(f"{local.isoformat()}{zone[:3]}:{zone[3:]}").astimezone(UTC)
    except (ValueError, KeyError):
        raise PayloadError(f"{label}: the timestamp is not a v1.1 date: {value!r}") from None


def parse_ms(value: Any, label: str) -> datetime:
    """Parse a millisecond epoch timestamp given as a digit string or an int."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise PayloadError(f"{label}: the timestamp is not milliseconds: {value!r}")
    return _EPOCH + timedelta(milliseconds=value)


def meta(page: Mapping[str, Any], key: str) -> str | None:
    """A string from a v2 page's meta (next_token, newest_id)."""
    return optional(page.get("meta"), key)


def entries(page: Mapping[str, Any]) -> list[Any]:
    """A v2 page's data list; empty pages carry no data key at all."""
    data = page.get("data")
    return data if isinstance(data, list) else []


def _time(entry: Mapping[str, Any]) -> datetime | None:
    try:
        return parse_v2_time(entry.get("created_at"), "")
    except PayloadError:
        return None


def older_than(page: Mapping[str, Any], earliest: datetime) -> bool:
    """Whether a newest-first page already reaches before `earliest`."""
    times = [t for e in entries(page) if isinstance(e, Mapping) and (t := _time(e))]
    return bool(times) and min(times) < earliest


def own_tweet(page: Mapping[str, Any], parent: str, wanted: str) -> SentReply | None:
    """Find our reply to `parent` whose comparable text is `wanted` in a page of our tweets."""
    for tweet in entries(page):
        if not isinstance(tweet, Mapping) or not isinstance(tweet.get("text"), str):
            continue
        refs = tweet.get("referenced_tweets")
        replies_to = any(
            isinstance(r, Mapping) and r.get("type") == "replied_to" and r.get("id") == parent
            for r in (refs if isinstance(refs, list) else [])
        )
        created = _time(tweet)
        if replies_to and created and optional(tweet, "id") and comparable(tweet["text"]) == wanted:
            return SentReply(external_id=tweet["id"], created_at=created, raw=dict(tweet))
    return None


def own_dm(
    page: Mapping[str, Any], account: str, wanted: str, earliest: datetime
) -> SentReply | None:
    """Find a DM we sent at or after `earliest` whose comparable text is `wanted`."""
    for event in entries(page):
        if not isinstance(event, Mapping) or event.get("sender_id") != account:
            continue
        created = _time(event)
        text = event.get("text")
        if created and created >= earliest and isinstance(text, str) and optional(event, "id"):
            if comparable(text) == wanted:
                return SentReply(external_id=event["id"], created_at=created, raw=dict(event))
    return None


def cursor_section(cursor: Mapping[str, Any], name: str) -> dict[str, str | None]:
    """Read the mentions or dms part of an X cursor, refusing one we did not write."""
    keys = ("since_id" if name == "mentions" else "last_id", "next_token", "pending_newest")
    section = cursor.get(name) or {}
    if not isinstance(section, Mapping) or not all(
        isinstance(section.get(k), str | None) for k in keys
    ):
        raise PayloadError(f"X cursor section {name!r} is invalid: {section!r}")
    return {k: section.get(k) for k in keys}


def unseen_dms(
    page: Mapping[str, Any], seen: int, account: str
) -> tuple[Mapping[str, Any], str | None, bool]:
    """Drop DM events up to id `seen` and our own sends from a page.

    Returns the reduced page, the newest event id on it and whether it reached `seen`.
    """
    if not isinstance(page.get("data"), list):
        return page, None, False
    newest: str | None = None
    reached = False
    fresh = []
    for event in page["data"]:
        event_id = snowflake(event.get("id")) if isinstance(event, Mapping) else None
        if event_id is not None and event_id <= seen:
            reached = True
            continue
        newest = newer_id(newest, str(event_id) if event_id is not None else None)
        # Our own sends (replies from this inbox or the X app) are not inbound.
        if not (isinstance(event, Mapping) and event.get("sender_id") == account):
            fresh.append(event)
    return {**page, "data": fresh}, newest, reached
