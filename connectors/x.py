"""X connector: API v2 through tweepy's Client, in the user context of the official account.

Cursor (a JSON-able dict, version 1)::

    {"v": 1,
     "mentions": {"since_id": str | None, "next_token": str | None, "pending_newest": str | None},
     "dms": {"last_id": str | None, "next_token": str | None, "pending_newest": str | None}}

X pages newest first. While a walk back to the last seen id is unfinished, `next_token` and
the newest id seen so far (`pending_newest`) are kept and `since_id`/`last_id` stay put; they
advance only when the walk ends. A crash or the page cap therefore never skips an item, at
the price of duplicates, which ingestion ignores by external id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import tweepy

from connectors import x_webhook  # noqa: F401  (registers the Account Activity parser)
from connectors.base import (
    Author,
    ConnectorError,
    FailedPayload,
    InboundItem,
    NotOfficialAccount,
    OutboundReply,
    PollResult,
    PostingIdentity,
    ReplyRefused,
    SentReply,
    TransientError,
    register,
)
from connectors.x_http import DEFAULT_TIMEOUT, make_session, stale_token, translated
from connectors.x_parse import (
    PLATFORM,
    cursor_section,
    meta,
    newer_id,
    older_than,
    optional,
    own_dm,
    own_tweet,
    parse_dm_event,
    parse_mention,
    parse_page,
    string,
    unseen_dms,
)
from connectors.x_text import MAX_TWEET_WEIGHT, comparable, weighted_length

MAX_PAGES = 5
DM_MAX_LENGTH = 10_000
CLOCK_SKEW = timedelta(minutes=1)
CREDENTIAL_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
_USER_FIELDS = ["username", "name"]
_DM_FIELDS = "id,event_type,text,sender_id,dm_conversation_id,created_at,participant_ids"
_MENTION_PARAMS: dict[str, Any] = {
    "max_results": 100,
    "expansions": "author_id,referenced_tweets.id",
    "tweet_fields": "created_at,author_id,conversation_id,in_reply_to_user_id,"
    "referenced_tweets,lang",
    "user_fields": _USER_FIELDS,
}
_DM_PARAMS: dict[str, Any] = {
    "event_types": "MessageCreate",
    "dm_event_fields": _DM_FIELDS,
    "max_results": 100,
}


class XConnector:
    """Reads mentions and DMs of the official X account and replies as it."""

    platform = PLATFORM
    max_reply_length = MAX_TWEET_WEIGHT

    def __init__(
        self,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Check credentials and settings and build the tweepy Client (no network yet)."""
        missing = [k for k in CREDENTIAL_KEYS if not credentials.get(k)]
        if missing:
            raise ConnectorError(f"X credentials lack: {', '.join(missing)}")
        username = settings.get("username")
        if not isinstance(username, str) or not username.strip("@ "):
            raise ConnectorError("X setting 'username' (the official account) is missing")
        self.username = username.strip().lstrip("@")
        # connect_account stores the platform's account id as account_ref: no get_me per poll.
        user_id = settings.get("user_id") or settings.get("account_ref")
        self._user_id: str | None = user_id if isinstance(user_id, str) and user_id else None
        max_pages = settings.get("max_pages", MAX_PAGES)
        if not isinstance(max_pages, int) or isinstance(max_pages, bool) or max_pages < 1:
            raise ConnectorError(f"X setting 'max_pages' must be a positive int: {max_pages!r}")
        self.max_pages = max_pages
        self.poll_dms = settings.get("poll_dms", True) is not False
        self._secrets = [credentials[k] for k in CREDENTIAL_KEYS]
        self._now: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._client = tweepy.Client(
            **{k: credentials[k] for k in CREDENTIAL_KEYS},
            return_type=dict,  # raw JSON, so a malformed entry can be kept as it came
            wait_on_rate_limit=False,  # the worker backs off per account instead of sleeping
        )
        timeout = settings.get("timeout_seconds")
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise ConnectorError(f"X setting 'timeout_seconds' must be positive: {timeout!r}")
        self._client.session = make_session(
            (float(timeout), float(timeout)) if timeout else DEFAULT_TIMEOUT,
            api_base=settings.get("api_base") or None,
        )

    def _call(
        self, action: str, method: Callable[..., Any], /, sending: bool = False, **params: Any
    ) -> Mapping[str, Any]:
        with translated(action, sending=sending, secrets=self._secrets, now=self._now):
            answer = method(user_auth=True, **params)
        if not isinstance(answer, Mapping):
            raise TransientError(f"X sent an answer that is not a JSON object while {action}")
        return answer

    def identity(self) -> PostingIdentity:
        """Ask X whose credentials these are; refuse any account but the official one."""
        answer = self._call("reading the account", self._client.get_me, user_fields=_USER_FIELDS)
        data = answer.get("data")
        user_id = string(data, "id", "X account", "the user id")
        handle = string(data, "username", "X account", "the username")
        if handle.lower() != self.username.lower():
            raise NotOfficialAccount(
                f"The X credentials belong to @{handle}, not to the official account "
                f"@{self.username} the admin named; connect the official account instead"
            )
        if self._user_id not in (None, user_id):
            # Same name, other account: the official handle changed hands since setup.
            raise NotOfficialAccount(
                f"@{handle} is now X user {user_id}, not the official account {self._user_id} "
                "connected before; an admin must check and reconnect the account"
            )
        self._user_id = user_id
        return PostingIdentity(PLATFORM, user_id, handle, optional(data, "name") or handle)

    def _account_id(self) -> str:
        return self._user_id or self.identity().account_ref

    def poll(self, cursor: Mapping[str, Any] | None) -> PollResult:
        """Fetch new mentions and DMs, at most `max_pages` pages of each per poll."""
        account = self._account_id()
        cursor = cursor or {}
        items: list[InboundItem] = []
        failures: list[FailedPayload] = []
        mentions = self._poll_mentions(account, cursor_section(cursor, "mentions"), items, failures)
        dms = cursor_section(cursor, "dms")
        if self.poll_dms:
            dms = self._poll_dms(account, dms, items, failures)
        return PollResult(items, failures, {"v": 1, "mentions": mentions, "dms": dms})

    def _poll_mentions(
        self,
        account: str,
        state: dict[str, str | None],
        items: list[InboundItem],
        failures: list[FailedPayload],
    ) -> dict[str, str | None]:
        since, token, pending = state["since_id"], state["next_token"], state["pending_newest"]
        first = since is None and token is None  # never walk the whole history at first
        for _ in range(1 if first else self.max_pages):
            try:
                page = self._call(
                    "reading mentions",
                    self._client.get_users_mentions,
                    id=account,
                    since_id=since,
                    pagination_token=token,
                    **_MENTION_PARAMS,
                )
            except ConnectorError as err:
                if not stale_token(err, token):
                    raise
                token = None
                continue
            got, bad = parse_page(page, parse_mention, account)
            items.extend(got)
            failures.extend(bad)
            pending = newer_id(pending, meta(page, "newest_id"))
            token = meta(page, "next_token")
            if token is None:
                break
        if token is None or first:
            return {
                "since_id": newer_id(since, pending),
                "next_token": None,
                "pending_newest": None,
            }
        return {"since_id": since, "next_token": token, "pending_newest": pending}

    def _poll_dms(
        self,
        account: str,
        state: dict[str, str | None],
        items: list[InboundItem],
        failures: list[FailedPayload],
    ) -> dict[str, str | None]:
        last, token, pending = state["last_id"], state["next_token"], state["pending_newest"]
        first = last is None and token is None
        seen = int(last) if last and last.isdigit() else 0
        for _ in range(1 if first else self.max_pages):
            try:
                page = self._call(
                    "reading direct messages",
                    self._client.get_direct_message_events,
                    expansions="sender_id",
                    user_fields=_USER_FIELDS,
                    pagination_token=token,
                    **_DM_PARAMS,
                )
            except ConnectorError as err:
                if not stale_token(err, token):
                    raise
                token = None
                continue
            page, newest, reached_seen = unseen_dms(page, seen, account)
            pending = newer_id(pending, newest)
            got, bad = parse_page(page, parse_dm_event, account, shape="dm_event")
            items.extend(got)
            failures.extend(bad)
            token = None if reached_seen else meta(page, "next_token")
            if token is None:
                break
        if token is None or first:
            return {"last_id": newer_id(last, pending), "next_token": None, "pending_newest": None}
        return {"last_id": last, "next_token": token, "pending_newest": pending}

    def reply_length(self, text: str) -> int:
        """X's weighted length (emoji and most non-Latin characters 2, each URL 23)."""
        return weighted_length(text)

    def send_reply(self, reply: OutboundReply) -> SentReply:
        """Post a reply tweet to a mention, or a DM to the customer, as the official account."""
        text = reply.text
        if not text.strip():
            raise ReplyRefused("The reply is empty; X needs some text")
        if reply.kind == "dm":
            if len(text) > DM_MAX_LENGTH:
                raise ReplyRefused(
                    f"The direct message has {len(text)} of {DM_MAX_LENGTH} characters X allows"
                )
            answer = self._call(
                "sending the direct message",
                self._client.create_direct_message,
                sending=True,
                participant_id=reply.recipient.platform_user_id,
                text=text,
            )
            key = "dm_event_id"
        elif reply.kind == "mention":
            length = weighted_length(text)
            if length > MAX_TWEET_WEIGHT:
                raise ReplyRefused(
                    f"The reply has {length} of {MAX_TWEET_WEIGHT} characters as X counts them"
                )
            if not reply.in_reply_to:
                raise ReplyRefused("A reply on X needs the post it answers (in_reply_to)")
            answer = self._call(
                "sending the reply",
                self._client.create_tweet,
                sending=True,
                text=text,
                in_reply_to_tweet_id=reply.in_reply_to,
            )
            key = "id"
        else:
            raise ReplyRefused(f"X has no {reply.kind} replies; answer mentions or DMs")
        ext_id = optional(answer.get("data"), key)
        if ext_id is None:
            raise ConnectorError(f"X accepted the {reply.kind} reply but sent back no {key}")
        return SentReply(external_id=ext_id, created_at=self._now(), raw=dict(answer))

    def direct_thread_key(self, recipient: Author) -> str | None:
        """DM threads are keyed by the other participant, as x_parse and x_webhook key them."""
        return f"dm:{recipient.platform_user_id}"

    def find_sent(self, reply: OutboundReply, since: datetime) -> SentReply | None:
        """Look in our own tweets or the DM conversation for this reply, posted since `since`."""
        account = self._account_id()
        wanted = comparable(reply.text)
        earliest = since - CLOCK_SKEW  # X's clock and ours may disagree a little
        token: str | None = None
        for _ in range(self.max_pages):
            if reply.kind == "mention" and reply.in_reply_to:
                page = self._call(
                    "looking for an earlier reply",
                    self._client.get_users_tweets,
                    id=account,
                    start_time=earliest,
                    tweet_fields=["referenced_tweets", "created_at"],
                    max_results=100,
                    pagination_token=token,
                )
                match = own_tweet(page, reply.in_reply_to, wanted)
            elif reply.kind == "dm":
                page = self._call(
                    "looking for an earlier direct message",
                    self._client.get_direct_message_events,
                    participant_id=reply.recipient.platform_user_id,
                    pagination_token=token,
                    **_DM_PARAMS,
                )
                match = own_dm(page, account, wanted, earliest)
            else:
                return None
            if match is not None:
                return match
            token = meta(page, "next_token")
            if token is None or older_than(page, earliest):
                return None
        return None


@register("x")
def make_x(credentials: Mapping[str, str], settings: Mapping[str, Any]) -> XConnector:
    """Build the X connector from the four OAuth 1.0a keys and the official username."""
    return XConnector(credentials, settings)
