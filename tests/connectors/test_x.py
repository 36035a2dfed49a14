"""The X connector against tweepy's real Client, with the HTTP transport intercepted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers

from connectors import RETRY_PARSERS, PayloadError, base
from connectors.base import (
    Author,
    ConnectorError,
    CredentialsRevoked,
    NotOfficialAccount,
    OutboundReply,
    RateLimited,
    ReplyRefused,
    TransientError,
)
from connectors.x import XConnector
from connectors.x_http import DEFAULT_TIMEOUT
from connectors.x_webhook import parse_account_activity

FIXTURES = Path(__file__).parent.parent / "fixtures" / "x"
API = "https://api.twitter.com/2"
ACCOUNT = "1450000000000000042"
MENTIONS = f"{API}/users/{ACCOUNT}/mentions"
DMS = f"{API}/dm_events"
NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
CREDENTIALS = {
    "consumer_key": "ck-LEAKME-consumer-key",
    "consumer_secret": "cs-LEAKME-consumer-secret",
    "access_token": "at-LEAKME-access-token",
    "access_token_secret": "ats-LEAKME-access-secret",
}
OLD_SINCE = "1800000000000000100"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def make(**settings: Any) -> XConnector:
    settings.setdefault("username", "quendelmarkt")
    settings.setdefault("user_id", ACCOUNT)
    return XConnector(CREDENTIALS, settings, clock=lambda: NOW)


def assert_no_secret(err: BaseException) -> None:
    for secret in CREDENTIALS.values():
        assert secret not in str(err)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def serve(
    rsps: responses.RequestsMock, url: str, pages: dict[str | None, Any]
) -> list[dict[str, str]]:
    """Serve a paginated endpoint by pagination_token (an int page is an HTTP error status).

    Returns the query of each call, as the test's record of what was asked.
    """
    calls: list[dict[str, str]] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        calls.append(query)
        page = pages[query.get("pagination_token")]
        if isinstance(page, int):
            return page, {"content-type": "application/json"}, json.dumps({"title": "Error"})
        return 200, {"content-type": "application/json"}, json.dumps(page)

    rsps.add_callback(responses.GET, url, callback=answer)
    return calls


def mention_cursor(since: str | None = OLD_SINCE) -> dict[str, Any]:
    return {"v": 1, "mentions": {"since_id": since}, "dms": {"last_id": "1900000000000000301"}}


# identity


def test_identity_returns_the_official_account(rsps: responses.RequestsMock) -> None:
    rsps.get(
        f"{API}/users/me",
        json=load("me"),
        match=[matchers.query_param_matcher({"user.fields": "username,name"})],
    )
    who = make(user_id=None).identity()
    assert who == base.PostingIdentity("x", ACCOUNT, "Quendelmarkt", "Quendelmarkt Kundenservice")
    assert rsps.calls[0].request.headers["Authorization"].startswith("OAuth ")


def test_identity_of_another_account_is_refused(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/users/me", json=load("me_other"))
    with pytest.raises(NotOfficialAccount) as caught:
        make(user_id=None).identity()
    assert "@jo_private" in str(caught.value) and "@quendelmarkt" in str(caught.value)


def test_registered_under_x_and_calls_time_out() -> None:
    conn = base.get_connector("x", CREDENTIALS, {"username": "@Quendelmarkt"})
    assert isinstance(conn, XConnector) and conn.max_reply_length == 280
    assert "x" in base.WEBHOOK_PARSERS
    with pytest.raises(ConnectorError, match="consumer_secret") as caught:
        XConnector({**CREDENTIALS, "consumer_secret": ""}, {"username": "q"})
    assert_no_secret(caught.value)


def test_requests_carry_a_timeout(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/users/me", json=load("me"))
    make(user_id=None).identity()
    assert rsps.calls[0].request.req_kwargs["timeout"] == DEFAULT_TIMEOUT


# polling mentions


def test_mentions_walk_all_pages_then_advance_since_id(rsps: responses.RequestsMock) -> None:
    calls = serve(
        rsps,
        MENTIONS,
        {None: load("mentions_p1"), "p2": load("mentions_p2"), "p3": load("mentions_p3")},
    )
    serve(rsps, DMS, {None: load("empty")})
    result = make().poll(mention_cursor())
    assert [i.external_id[-3:] for i in result.items] == ["105", "104", "103", "102", "101"]
    assert result.failures == []
    assert all(c["since_id"] == OLD_SINCE for c in calls)
    assert [c.get("pagination_token") for c in calls] == [None, "p2", "p3"]
    assert calls[0]["max_results"] == "100" and "referenced_tweets.id" in calls[0]["expansions"]
    assert result.cursor["mentions"] == {
        "since_id": "1800000000000000105",
        "next_token": None,
        "pending_newest": None,
    }
    first = result.items[0]
    assert first.kind == "mention" and first.platform == "x" and first.account_ref == ACCOUNT
    assert first.author == Author("7001", "jodoe", "Jo Doe")
    assert first.thread_key == f"tweet:{OLD_SINCE}" and first.in_reply_to == OLD_SINCE
    assert first.created_at == datetime(2024, 1, 15, 10, 55, tzinfo=UTC)
    assert first.text.endswith("😤")
    assert first.raw["includes"]["users"][0]["username"] == "jodoe"
    assert result.items[1].thread_key == "tweet:1800000000000000104"
    json.dumps(result.cursor)


def test_page_cap_keeps_the_walk_and_resume_loses_nothing(rsps: responses.RequestsMock) -> None:
    pages = {None: load("mentions_p1"), "p2": load("mentions_p2"), "p3": load("mentions_p3")}
    calls = serve(rsps, MENTIONS, pages)
    serve(rsps, DMS, {None: load("empty")})
    capped = make(max_pages=2).poll(mention_cursor())
    assert len(capped.items) == 4
    # since_id must not move yet: the oldest page between it and the newest is still unread.
    assert capped.cursor["mentions"] == {
        "since_id": OLD_SINCE,
        "next_token": "p3",
        "pending_newest": "1800000000000000105",
    }
    resumed = make(max_pages=2).poll(json.loads(json.dumps(capped.cursor)))
    assert [i.external_id[-3:] for i in resumed.items] == ["101"]
    assert calls[-1] == {**calls[-1], "pagination_token": "p3", "since_id": OLD_SINCE}
    assert resumed.cursor["mentions"]["since_id"] == "1800000000000000105"


def test_crash_mid_walk_repolls_from_the_old_cursor(rsps: responses.RequestsMock) -> None:
    pages: dict[str | None, Any] = {None: load("mentions_p1"), "p2": 503, "p3": load("mentions_p3")}
    calls = serve(rsps, MENTIONS, pages)
    serve(rsps, DMS, {None: load("empty")})
    cursor = mention_cursor()
    with pytest.raises(TransientError):
        make().poll(cursor)
    assert len(calls) == 2
    # The stored cursor did not move, so the next poll walks again from page 1: duplicates only.
    pages["p2"] = load("mentions_p2")
    retry = make().poll(cursor)
    assert [i.external_id[-3:] for i in retry.items] == ["105", "104", "103", "102", "101"]
    assert retry.cursor["mentions"]["since_id"] == "1800000000000000105"


def test_expired_pagination_token_restarts_the_walk(rsps: responses.RequestsMock) -> None:
    pages = {
        "gone": 400,
        None: load("mentions_p1"),
        "p2": load("mentions_p2"),
        "p3": load("mentions_p3"),
    }
    calls = serve(rsps, MENTIONS, pages)
    serve(rsps, DMS, {None: load("empty")})
    cursor = mention_cursor()
    cursor["mentions"] = {
        "since_id": OLD_SINCE,
        "next_token": "gone",
        "pending_newest": "1800000000000000103",
    }
    result = make().poll(cursor)
    assert [c.get("pagination_token") for c in calls] == ["gone", None, "p2", "p3"]
    assert len(result.items) == 5
    assert result.cursor["mentions"]["since_id"] == "1800000000000000105"


def test_identity_with_a_changed_user_id_is_refused(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/users/me", json=load("me"))
    with pytest.raises(NotOfficialAccount, match="changed hands|not the official account 1234"):
        make(user_id="1234").identity()


def test_first_poll_reads_only_the_newest_page(rsps: responses.RequestsMock) -> None:
    calls = serve(rsps, MENTIONS, {None: load("mentions_p1")})
    dm_calls = serve(rsps, DMS, {None: load("dm_p1")})
    result = make().poll(None)
    assert len(calls) == 1 and "since_id" not in calls[0] and len(dm_calls) == 1
    assert result.cursor["mentions"]["since_id"] == "1800000000000000105"
    assert result.cursor["mentions"]["next_token"] is None
    assert result.cursor["dms"] == {
        "last_id": "1900000000000000305",
        "next_token": None,
        "pending_newest": None,
    }


def test_empty_page_keeps_since_id(rsps: responses.RequestsMock) -> None:
    serve(rsps, MENTIONS, {None: load("empty")})
    serve(rsps, DMS, {None: load("empty")})
    result = make().poll(mention_cursor())
    assert result.items == [] and result.cursor["mentions"]["since_id"] == OLD_SINCE


def test_malformed_mentions_and_partial_errors_become_failures(
    rsps: responses.RequestsMock,
) -> None:
    serve(rsps, MENTIONS, {None: load("mentions_broken")})
    serve(rsps, DMS, {None: load("empty")})
    result = make().poll(mention_cursor())
    assert [i.external_id[-3:] for i in result.items] == ["124", "120"]
    errors = [f.error for f in result.failures]
    assert len(errors) == 4
    assert "Could not find tweet" in errors[0]
    assert any("the text is missing" in e for e in errors)
    assert any("gestern, 14 Uhr" in e for e in errors)
    assert any("'7777' is missing" in e for e in errors)
    assert all(json.loads(f.raw) for f in result.failures)
    assert result.cursor["mentions"]["since_id"] == "1800000000000000124"


# polling DMs


def test_dms_skip_own_sends_and_stop_at_the_last_seen(rsps: responses.RequestsMock) -> None:
    serve(rsps, MENTIONS, {None: load("empty")})
    calls = serve(rsps, DMS, {None: load("dm_p1"), "d2": load("dm_p2")})
    result = make().poll(mention_cursor())
    assert [i.external_id[-3:] for i in result.items] == ["305", "303", "302"]
    assert [c.get("pagination_token") for c in calls] == [None, "d2"]  # never d3
    assert calls[0]["event_types"] == "MessageCreate" and "sender_id" in calls[0]["dm_event.fields"]
    dm = result.items[0]
    assert dm.kind == "dm" and dm.thread_key == "dm:7001" and dm.author.handle == "jodoe"
    assert dm.created_at == datetime(2024, 1, 15, 11, 55, tzinfo=UTC)
    assert result.cursor["dms"]["last_id"] == "1900000000000000305"


def test_dm_page_cap_resumes_without_loss(rsps: responses.RequestsMock) -> None:
    serve(rsps, MENTIONS, {None: load("empty")})
    serve(rsps, DMS, {None: load("dm_p1"), "d2": load("dm_p2")})
    capped = make(max_pages=1).poll(mention_cursor())
    assert capped.cursor["dms"] == {
        "last_id": "1900000000000000301",
        "next_token": "d2",
        "pending_newest": "1900000000000000305",
    }
    resumed = make(max_pages=1).poll(capped.cursor)
    assert [i.external_id[-3:] for i in resumed.items] == ["302"]
    assert resumed.cursor["dms"]["last_id"] == "1900000000000000305"


# errors


def test_429_with_reset_header_gives_that_time(rsps: responses.RequestsMock) -> None:
    rsps.get(
        MENTIONS, status=429, json=load("error_429"), headers={"x-rate-limit-reset": "1705420800"}
    )
    with pytest.raises(RateLimited) as caught:
        make().poll(mention_cursor())
    assert caught.value.retry_at == datetime(2024, 1, 16, 16, 0, tzinfo=UTC)
    assert len(rsps.calls) == 1


def test_429_without_header_backs_off_fifteen_minutes(rsps: responses.RequestsMock) -> None:
    rsps.get(MENTIONS, status=429, json=load("error_429"))
    with pytest.raises(RateLimited) as caught:
        make().poll(mention_cursor())
    assert caught.value.retry_at == NOW + timedelta(minutes=15)
    assert len(rsps.calls) == 1  # no retry loop


def test_401_means_credentials_revoked(rsps: responses.RequestsMock) -> None:
    rsps.get(MENTIONS, status=401, json=load("error_401"))
    with pytest.raises(CredentialsRevoked) as caught:
        make().poll(mention_cursor())
    assert "reconnect" in str(caught.value)
    assert_no_secret(caught.value)


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 503, "json": {"title": "Service Unavailable"}},
        {"status": 200, "body": '{"data":[{"id":"18', "content_type": "application/json"},
        {"body": requests.ConnectionError("Connection reset by peer")},
        {"body": requests.ReadTimeout("read timed out")},
    ],
    ids=["503", "truncated", "reset", "timeout"],
)
def test_platform_trouble_is_transient(
    rsps: responses.RequestsMock, answer: dict[str, Any]
) -> None:
    rsps.get(MENTIONS, **answer)
    with pytest.raises(TransientError) as caught:
        make().poll(mention_cursor())
    assert_no_secret(caught.value)


def test_403_on_poll_is_a_connector_error(rsps: responses.RequestsMock) -> None:
    serve(rsps, MENTIONS, {None: load("empty")})
    rsps.get(DMS, status=403, json={"title": "Forbidden", "detail": "DM access not permitted"})
    with pytest.raises(ConnectorError, match="DM access not permitted") as caught:
        make().poll(mention_cursor())
    assert type(caught.value) is ConnectorError


def test_cursor_of_another_shape_is_refused() -> None:
    with pytest.raises(ConnectorError, match="cursor"):
        make().poll({"mentions": {"since_id": 5}})


# replies


def reply(kind: str = "mention", text: str = "Ihre Bestellung ist unterwegs.") -> OutboundReply:
    return OutboundReply(
        kind=kind,  # type: ignore[arg-type]
        thread_key="tweet:1800000000000000100" if kind == "mention" else "dm:7001",
        in_reply_to="1800000000000000105" if kind == "mention" else None,
        recipient=Author("7001", "jodoe", "Jo Doe"),
        text=text,
    )


def test_reply_to_mention_posts_a_reply_tweet(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{API}/tweets", status=201, json=load("tweet_created"))
    sent = make().send_reply(reply())
    body = json.loads(rsps.calls[0].request.body)
    assert body == {
        "text": "Ihre Bestellung ist unterwegs.",
        "reply": {"in_reply_to_tweet_id": "1800000000000000105"},
    }
    assert sent.external_id == "1800000000000000999" and sent.created_at == NOW
    assert sent.raw["data"]["id"] == "1800000000000000999"


def test_dm_reply_posts_to_the_conversation_with_the_customer(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{API}/dm_conversations/with/7001/messages", status=201, json=load("dm_created"))
    sent = make().send_reply(reply("dm", "Gern geschehen!"))
    assert json.loads(rsps.calls[0].request.body) == {"text": "Gern geschehen!"}
    assert sent.external_id == "1900000000000000999"


def test_403_on_send_is_refused_with_the_platform_detail(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{API}/tweets", status=403, json=load("error_403_duplicate"))
    with pytest.raises(ReplyRefused, match="duplicate content") as caught:
        make().send_reply(reply())
    assert_no_secret(caught.value)


def test_401_on_send_means_credentials_revoked(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{API}/tweets", status=401, json=load("error_401"))
    with pytest.raises(CredentialsRevoked):
        make().send_reply(reply())


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("Danke!", 6),
        ("Grüße aus München, Ihr Straßen-Team", 35),
        ("Danke 😀", 8),
        ("👨‍👩‍👧‍👦🇩🇪", 4),
        ("日本語", 6),
        ("Siehe https://quendelmarkt.de/hilfe/rueckgabe?bestellung=12345.", 30),
        ("Infos: quendelmarkt.de/faq", 30),
    ],
)
def test_weighted_length(text: str, length: int) -> None:
    assert make().reply_length(text) == length


def test_over_long_replies_are_refused_before_sending(rsps: responses.RequestsMock) -> None:
    conn = make()
    assert conn.reply_length("ä" * 280) == 280
    with pytest.raises(ReplyRefused, match="The reply has 282 of 280 characters as X counts them"):
        conn.send_reply(reply(text="日" * 141))
    with pytest.raises(ReplyRefused, match="10000"):
        conn.send_reply(reply("dm", "x" * 10_001))
    assert len(rsps.calls) == 0


def test_find_sent_recognises_an_earlier_reply(rsps: responses.RequestsMock) -> None:
    rsps.get(
        f"{API}/users/{ACCOUNT}/tweets",
        json=load("users_tweets"),
        match=[
            matchers.query_param_matcher({"start_time": "2024-01-15T10:49:00Z"}, strict_match=False)
        ],
    )
    text = "Danke für Ihre Geduld & Ihr Vertrauen! Details: https://quendelmarkt.de/hilfe"
    since = datetime(2024, 1, 15, 10, 50, tzinfo=UTC)
    found = make().find_sent(reply(text=text), since)
    assert found is not None and found.external_id == "1800000000000000998"
    assert make().find_sent(reply(text="Etwas ganz anderes"), since) is None


def test_find_sent_dm_matches_only_our_message_since(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/dm_conversations/with/7001/dm_events", json=load("dm_conversation"))
    text = "Ihre Rücksendung ist angekommen & wird erstattet: https://quendelmarkt.de/r/1"
    found = make().find_sent(reply("dm", text), datetime(2024, 1, 15, 11, 50, tzinfo=UTC))
    assert found is not None and found.external_id == "1900000000000000309"
    assert make().find_sent(reply("dm", text), datetime(2024, 1, 15, 12, 30, tzinfo=UTC)) is None


# Account Activity webhooks


def test_webhook_tweets_are_keyed_like_polled_mentions() -> None:
    [batch] = parse_account_activity(load("aaa_tweets"))
    assert batch.account_ref == ACCOUNT
    assert [i.external_id[-3:] for i in batch.items] == ["105", "107"]  # our own 106 skipped
    first, long = batch.items
    assert first.thread_key == f"tweet:{OLD_SINCE}" and first.in_reply_to == OLD_SINCE
    assert first.author == Author("7001", "jodoe", "Jo Doe")
    assert first.created_at == datetime(2024, 1, 15, 10, 55, tzinfo=UTC)
    assert long.text.endswith("Was ist da los?") and long.thread_key == "tweet:1800000000000000107"
    assert long.created_at == datetime(2024, 1, 15, 9, 57, 30, tzinfo=UTC)
    [failure] = batch.failures
    assert (
        "author" in failure.error
        and json.loads(failure.raw)["entry"]["id_str"] == "1800000000000000108"
    )


def test_webhook_dms_are_keyed_like_polled_dms() -> None:
    [batch] = parse_account_activity(load("aaa_dms"))
    [dm] = batch.items
    assert dm.external_id == "1900000000000000305" and dm.thread_key == "dm:7001"
    assert dm.author == Author("7001", "jodoe", "Jo Doe")
    assert dm.created_at == datetime(2024, 1, 15, 11, 55, tzinfo=UTC)
    [failure] = batch.failures
    assert "text is missing" in failure.error


def test_webhook_without_inbox_events_yields_nothing() -> None:
    assert parse_account_activity({"for_user_id": ACCOUNT, "favorite_events": [{}]}) == []
    with pytest.raises(ConnectorError, match="for_user_id"):
        parse_account_activity({"tweet_create_events": []})


# --- dead letters retried -------------------------------------------------------------


def _failure(failures: list[Any], tweet_id: str) -> dict[str, Any]:
    kept: list[dict[str, Any]] = [json.loads(f.raw) for f in failures]
    return next(k for k in kept if k["entry"].get("id") == tweet_id)


def test_a_failed_mention_keeps_its_author_and_parses_again_once_fixed(
    rsps: responses.RequestsMock,
) -> None:
    serve(rsps, MENTIONS, {None: load("mentions_broken")})
    serve(rsps, DMS, {None: load("empty")})
    result = make().poll(mention_cursor())
    kept = _failure(result.failures, "1800000000000000121")  # the mention without text
    assert (kept["envelope"], kept["shape"], kept["account_ref"]) == (1, "mention", ACCOUNT)
    assert kept["includes"]["users"][0]["username"] == "maxmuster"
    with pytest.raises(PayloadError, match="the text is missing"):
        RETRY_PARSERS["x"](kept)
    kept["entry"]["text"] = "@quendelmarkt wo bleibt mein Paket?"
    item = RETRY_PARSERS["x"](json.loads(json.dumps(kept)))
    assert (item.external_id, item.account_ref, item.kind) == (
        "1800000000000000121",
        ACCOUNT,
        "mention",
    )
    assert item.author == Author("7002", "maxmuster", "Max Mustermann")
    assert item.thread_key == "tweet:1800000000000000121"
    # An author missing from includes.users is kept as missing: a retry names it again.
    unknown = _failure(result.failures, "1800000000000000123")
    assert unknown["includes"]["users"] == []
    with pytest.raises(PayloadError, match="'7777' is missing"):
        RETRY_PARSERS["x"](unknown)


def test_a_partial_error_can_never_become_an_item(rsps: responses.RequestsMock) -> None:
    serve(rsps, MENTIONS, {None: load("mentions_broken")})
    serve(rsps, DMS, {None: load("empty")})
    result = make().poll(mention_cursor())
    error = json.loads(result.failures[0].raw)
    assert error["shape"] == "x_error" and error["account_ref"] == ACCOUNT
    with pytest.raises(PayloadError, match="no entry to parse again"):
        RETRY_PARSERS["x"](error)


def test_failed_webhook_entries_parse_again_once_fixed() -> None:
    [batch] = parse_account_activity(load("aaa_dms"))
    kept = json.loads(batch.failures[0].raw)
    assert kept["shape"] == "webhook_dm" and list(kept["users"]) == ["7003"]
    kept["entry"]["message_create"]["message_data"]["text"] = "Hallo?"
    item = RETRY_PARSERS["x"](kept)
    assert (item.external_id, item.thread_key, item.text) == (
        "1900000000000000306",
        "dm:7003",
        "Hallo?",
    )
    assert item.author == Author("7003", "anna_k", "Anna König")


def test_a_raw_stored_without_an_envelope_is_refused_clearly() -> None:
    with pytest.raises(PayloadError, match="no envelope"):
        RETRY_PARSERS["x"]({"id": "1800000000000000121", "author_id": "7002"})
    with pytest.raises(PayloadError, match="Unknown x payload shape 'tweet'"):
        RETRY_PARSERS["x"]({"envelope": 1, "shape": "tweet", "account_ref": ACCOUNT})
