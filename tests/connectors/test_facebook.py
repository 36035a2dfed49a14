"""Behaviour of the Facebook Page connector against the real facebook-sdk over mocked HTTP."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses
from responses import matchers

from connectors import REGISTRY, RETRY_PARSERS, WEBHOOK_PARSERS
from connectors.base import (
    Author,
    ConnectorError,
    CredentialsRevoked,
    NotOfficialAccount,
    OutboundReply,
    PayloadError,
    RateLimited,
    ReplyRefused,
    TransientError,
)
from connectors.facebook import FacebookConnector, parse_page_webhook
from tests.connectors.conftest import GRAPH, NOW, TOKEN, graph_error, meta_fixture

PAGE_ID = "1029384756"
PSID = "6120019283746"
FEED = f"{GRAPH}/{PAGE_ID}/feed"
CONVERSATIONS = f"{GRAPH}/{PAGE_ID}/conversations"


def make_connector(**settings: Any) -> FacebookConnector:
    """A connector for the Quendelmarkt page with a fixed clock."""
    return FacebookConnector(
        {"page_access_token": TOKEN}, {"page_id": PAGE_ID, **settings}, clock=lambda: NOW
    )


def query(call: Any) -> dict[str, str]:
    """The query string of a recorded request, one value per key."""
    return {k: v[-1] for k, v in parse_qs(urlparse(call.request.url).query).items()}


def form(call: Any) -> dict[str, str]:
    """The form body of a recorded POST, one value per key."""
    return {k: v[-1] for k, v in parse_qs(call.request.body).items()}


def ts(moment: Any) -> int:
    """Unix seconds."""
    return int(moment.timestamp())


def dm_reply(text: str = "Wir schicken ein neues Paket.", **kw: Any) -> OutboundReply:
    """A Messenger reply to the customer PSID."""
    return OutboundReply(
        kind="dm",
        thread_key=f"dm:{PSID}",
        in_reply_to=None,
        recipient=Author(platform_user_id=PSID),
        text=text,
        **kw,
    )


def comment_reply(text: str = "Ja, alles vegan!") -> OutboundReply:
    """A reply to Jo's question under the menu post."""
    return OutboundReply(
        kind="comment",
        thread_key="comment:456_789",
        in_reply_to="456_791",
        recipient=Author(platform_user_id="5551"),
        text=text,
    )


def stub_poll(graph: responses.RequestsMock, feed_page1: Any | None = None) -> None:
    """Two feed pages and one page of Messenger conversations."""
    graph.get(FEED, json=feed_page1 or meta_fixture("fb_feed_page1.json"))
    graph.get(
        FEED,
        json=meta_fixture("fb_feed_page2.json"),
        match=[matchers.query_param_matcher({"after": "y1"}, strict_match=False)],
    )
    graph.get(CONVERSATIONS, json=meta_fixture("fb_conversations.json"))


def test_the_connector_is_registered_with_its_webhook_parser() -> None:
    assert REGISTRY["facebook"]({"page_access_token": TOKEN}, {"page_id": PAGE_ID}).platform == (
        "facebook"
    )
    assert WEBHOOK_PARSERS["facebook"] is parse_page_webhook


def test_identity_of_a_page_token(graph: responses.RequestsMock) -> None:
    graph.get(f"{GRAPH}/me", json=meta_fixture("fb_me_page.json"))
    who = make_connector().identity()
    assert (who.platform, who.account_ref, who.handle, who.display_name) == (
        "facebook",
        PAGE_ID,
        "Quendelmarkt",
        "Quendelmarkt",
    )
    assert query(graph.calls[0])["metadata"] == "1"
    assert str(graph.calls[0].request.url).startswith("https://graph.facebook.com/v21.0/me?")


def test_a_personal_user_token_is_not_the_official_account(graph: responses.RequestsMock) -> None:
    graph.get(f"{GRAPH}/me", json=meta_fixture("fb_me_user.json"))
    with pytest.raises(NotOfficialAccount) as err:
        make_connector().identity()
    assert "personal user token" in str(err.value)
    assert f"Page access token of page {PAGE_ID}" in str(err.value)
    assert "Erika" not in str(err.value)


def test_another_pages_token_is_not_the_official_account(graph: responses.RequestsMock) -> None:
    graph.get(f"{GRAPH}/me", json=meta_fixture("fb_me_other_page.json"))
    with pytest.raises(NotOfficialAccount, match="another page.*5550001111.*page 1029384756"):
        make_connector().identity()


def test_poll_reads_comments_replies_visitor_posts_and_messenger(
    graph: responses.RequestsMock,
) -> None:
    stub_poll(graph)
    result = make_connector().poll(None)
    by_id = {item.external_id: item for item in result.items}
    assert set(by_id) == {"456_789", "456_791", "456_795", "1029384756_333", "m_ask2", "m_old"}
    question, reply, nested = by_id["456_789"], by_id["456_791"], by_id["456_795"]
    assert (question.kind, question.thread_key, question.in_reply_to) == (
        "comment",
        "comment:456_789",
        "1029384756_456",
    )
    assert question.context == {
        "post_id": "1029384756_456",
        "post_text": "Unser neues Menü ist da!",
    }
    assert question.author == Author(platform_user_id="5551", display_name="Jo Doe")
    assert question.created_at.isoformat() == "2024-01-15T11:00:00+00:00"
    # Replies, nested or flat with a parent, join the root comment's thread.
    assert (reply.thread_key, reply.in_reply_to) == ("comment:456_789", "456_789")
    assert (nested.thread_key, nested.in_reply_to) == ("comment:456_789", "456_789")
    visitor = by_id["1029384756_333"]
    assert (visitor.kind, visitor.thread_key) == ("comment", "post:1029384756_333")
    dm = by_id["m_ask2"]
    assert (dm.kind, dm.thread_key, dm.text) == (
        "dm",
        f"dm:{PSID}",
        "Hallo, mein Paket ist nicht angekommen.",
    )
    # The page's own post, comments and messages never come back as customer items.
    assert not {"456_790", "333_100", "m_reply2", "1029384756_456"} & set(by_id)
    assert [json.loads(f.raw)["entry"]["id"] for f in result.failures] == ["456_799"]
    assert "author" in result.failures[0].error
    first = query(graph.calls[0])
    assert first["since"] == str(ts(NOW - timedelta(days=7)))
    assert "comments.limit(100)" in first["fields"]
    assert query(graph.calls[1])["after"] == "y1"
    assert query(graph.calls[2])["platform"] == "messenger"
    assert result.cursor["feed"]["since"] == ts(by_id["456_795"].created_at)
    assert result.cursor["dm"]["since"] == ts(dm.created_at)
    assert TOKEN not in json.dumps(result.cursor)


def test_poll_resumes_from_its_cursor(graph: responses.RequestsMock) -> None:
    stub_poll(graph)
    first = make_connector().poll(None)
    graph.reset()
    page1 = copy.deepcopy(meta_fixture("fb_feed_page1.json"))
    page1["data"][0]["comments"]["data"].append(
        {
            "id": "456_800",
            "message": "Gibt es das auch zum Mitnehmen?",
            "created_time": "2024-01-15T12:30:00+0000",
            "from": {"name": "Lea Sommer", "id": "5554"},
        }
    )
    stub_poll(graph, page1)
    second = make_connector().poll(first.cursor)
    # Only the new comment, plus what sits inside the 5-minute overlap before the watermark
    # (ingestion drops those duplicates); nothing older comes back.
    assert {item.external_id for item in second.items} == {"456_800", "456_795", "m_ask2"}
    assert second.cursor["feed"]["since"] == ts(NOW.replace(hour=12, minute=30))
    assert second.cursor["dm"] == first.cursor["dm"]


def test_a_capped_walk_resumes_where_it_stopped(
    graph: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.graph.MAX_PAGES", 1)
    stub_poll(graph)
    first = make_connector().poll(None)
    assert first.cursor["feed"]["resume"] == {"fields": "id", "limit": "25", "after": "y1"}
    assert first.cursor["feed"]["since"] is None
    assert "1029384756_333" not in {i.external_id for i in first.items}
    second = make_connector().poll(first.cursor)
    assert "1029384756_333" in {i.external_id for i in second.items}
    assert second.cursor["feed"]["resume"] is None
    assert second.cursor["feed"]["since"] == ts(NOW.replace(hour=11, minute=20))


def test_poll_skips_stale_conversations(graph: responses.RequestsMock) -> None:
    graph.get(FEED, json={"data": []})
    graph.get(CONVERSATIONS, json=meta_fixture("fb_conversations.json"))
    cursor = {"dm": {"since": ts(NOW.replace(hour=11, minute=0))}}
    result = make_connector().poll(cursor)
    assert [item.external_id for item in result.items] == ["m_ask2"]


@pytest.mark.parametrize("code", [4, 17, 32, 613])
def test_throttling_codes_are_rate_limited(graph: responses.RequestsMock, code: int) -> None:
    graph.get(FEED, json=graph_error(code, "(#4) Application request limit reached"), status=400)
    with pytest.raises(RateLimited) as err:
        make_connector().poll(None)
    assert err.value.retry_at == NOW + timedelta(minutes=15)
    assert TOKEN not in str(err.value)


def test_rate_limit_waits_as_long_as_meta_says(graph: responses.RequestsMock) -> None:
    usage = {PAGE_ID: [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 42}]}
    graph.get(
        FEED,
        json=graph_error(80001, "There have been too many calls to this Page account."),
        status=400,
        headers={"x-business-use-case-usage": json.dumps(usage)},
    )
    with pytest.raises(RateLimited) as err:
        make_connector().poll(None)
    assert err.value.retry_at == NOW + timedelta(minutes=42)


@pytest.mark.parametrize("subcode", [None, 460, 463])
def test_an_expired_token_needs_a_reconnect(
    graph: responses.RequestsMock, subcode: int | None
) -> None:
    graph.get(
        f"{GRAPH}/me", json=graph_error(190, "Error validating access token", subcode), status=400
    )
    with pytest.raises(CredentialsRevoked, match="connect the page again") as err:
        make_connector().identity()
    assert "AbCdEfGh123" in str(err.value)
    assert TOKEN not in str(err.value)


def test_a_missing_permission_is_a_connector_error_on_poll(graph: responses.RequestsMock) -> None:
    graph.get(FEED, json=graph_error(10, "(#10) Requires pages_read_engagement"), status=403)
    with pytest.raises(ConnectorError, match="Missing permission") as err:
        make_connector().poll(None)
    assert not isinstance(err.value, ReplyRefused)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("<html><body>Service Unavailable</body></html>", "text/html", 500),
        ('{"error": {"message": "An unexpected error has occurred.", "code": 2}}', None, 500),
        ('{"data": [{"id": "1029384756_456", "message": "Unser ne', None, 200),
    ],
    ids=["html-500", "code-2", "truncated-json"],
)
def test_server_failures_are_transient(
    graph: responses.RequestsMock, body: str, content_type: str | None, status: int
) -> None:
    graph.get(FEED, body=body, status=status, content_type=content_type or "application/json")
    with pytest.raises(TransientError) as err:
        make_connector().poll(None)
    assert TOKEN not in str(err.value)


def test_a_connection_error_is_transient_and_hides_the_url(graph: responses.RequestsMock) -> None:
    graph.get(
        FEED,
        body=requests.ConnectionError(f"Max retries exceeded with url: /feed?access_token={TOKEN}"),
    )
    with pytest.raises(TransientError) as err:
        make_connector().poll(None)
    assert TOKEN not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_an_unmatched_call_never_leaks_the_token(graph: responses.RequestsMock) -> None:
    # `responses` names the full URL (token included) when nothing matches.
    with pytest.raises(TransientError) as err:
        make_connector().identity()
    assert TOKEN not in str(err.value)


def test_reply_to_a_comment_posts_under_the_customers_comment(
    graph: responses.RequestsMock,
) -> None:
    graph.post(f"{GRAPH}/456_791/comments", json={"id": "456_801"})
    sent = make_connector().send_reply(comment_reply())
    assert sent.external_id == "456_801"
    assert sent.created_at == NOW
    body = form(graph.calls[0])
    assert body["message"] == "Ja, alles vegan!"
    assert body["access_token"] == TOKEN


def test_messenger_reply_inside_24_hours_is_a_response(graph: responses.RequestsMock) -> None:
    graph.post(f"{GRAPH}/{PAGE_ID}/messages", json={"recipient_id": PSID, "message_id": "m_new1"})
    sent = make_connector().send_reply(dm_reply(last_inbound_at=NOW - timedelta(hours=3)))
    assert sent.external_id == "m_new1"
    body = form(graph.calls[0])
    assert body["messaging_type"] == "RESPONSE"
    assert "tag" not in body
    assert json.loads(body["recipient"]) == {"id": PSID}
    assert json.loads(body["message"]) == {"text": "Wir schicken ein neues Paket."}


def test_messenger_reply_after_30_hours_is_refused_without_human_agent(
    graph: responses.RequestsMock,
) -> None:
    with pytest.raises(ReplyRefused) as err:
        make_connector().send_reply(dm_reply(last_inbound_at=NOW - timedelta(hours=30)))
    assert str(err.value) == (
        "The customer last wrote 30 hours ago; Messenger allows replies within 24 hours "
        "(7 days with the human-agent tag, which this account has not enabled)"
    )
    assert not graph.calls


def test_messenger_reply_after_30_hours_uses_the_human_agent_tag(
    graph: responses.RequestsMock,
) -> None:
    graph.post(f"{GRAPH}/{PAGE_ID}/messages", json={"recipient_id": PSID, "message_id": "m_new2"})
    connector = make_connector(human_agent_enabled=True)
    connector.send_reply(dm_reply(last_inbound_at=NOW - timedelta(hours=30)))
    body = form(graph.calls[0])
    assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


def test_messenger_reply_after_8_days_is_refused_even_with_human_agent() -> None:
    connector = make_connector(human_agent_enabled=True)
    with pytest.raises(ReplyRefused, match="8 days .* ago; Messenger allows replies within 24"):
        connector.send_reply(dm_reply(last_inbound_at=NOW - timedelta(days=8)))


def test_messenger_reply_without_a_known_last_message_is_refused() -> None:
    with pytest.raises(ReplyRefused, match="cannot prove Messenger's reply window is open"):
        make_connector(human_agent_enabled=True).send_reply(dm_reply())


def test_over_long_replies_are_refused_naming_the_limit() -> None:
    connector = make_connector()
    with pytest.raises(ReplyRefused, match="8001 characters long; Facebook comments allow .*8000"):
        connector.send_reply(comment_reply("x" * 8001))
    with pytest.raises(ReplyRefused, match="Messenger messages allow at most 2000"):
        connector.send_reply(dm_reply("x" * 2001, last_inbound_at=NOW))
    assert connector.reply_limit("dm") == 2000
    assert connector.max_reply_length == 8000


def test_a_refused_send_is_reply_refused(graph: responses.RequestsMock) -> None:
    graph.post(
        f"{GRAPH}/{PAGE_ID}/messages",
        json=graph_error(10, "This message is sent outside of allowed window.", 2018278),
        status=400,
    )
    with pytest.raises(ReplyRefused, match="10/2018278"):
        make_connector().send_reply(dm_reply(last_inbound_at=NOW))


def test_find_sent_finds_our_comment_reply(graph: responses.RequestsMock) -> None:
    graph.get(
        f"{GRAPH}/456_791/comments",
        json={
            "data": [
                {
                    "id": "456_801",
                    "message": "Ja, alles vegan!",
                    "from": {"name": "Quendelmarkt", "id": PAGE_ID},
                    "created_time": "2024-01-15T12:59:30+0000",
                },
                {
                    "id": "456_802",
                    "message": "Ja, alles vegan!",
                    "from": {"name": "Jo Doe", "id": "5551"},
                    "created_time": "2024-01-15T12:59:40+0000",
                },
            ]
        },
    )
    found = make_connector().find_sent(comment_reply(), NOW - timedelta(minutes=5))
    assert found is not None and found.external_id == "456_801"


def test_find_sent_misses_older_or_different_replies(graph: responses.RequestsMock) -> None:
    old = {
        "id": "456_700",
        "message": "Ja, alles vegan!",
        "from": {"name": "Quendelmarkt", "id": PAGE_ID},
        "created_time": "2024-01-14T12:00:00+0000",
    }
    graph.get(f"{GRAPH}/456_791/comments", json={"data": [old]})
    graph.get(f"{GRAPH}/456_789/comments", json={"data": [{**old, "message": "Anders"}]})
    assert make_connector().find_sent(comment_reply(), NOW - timedelta(minutes=5)) is None
    assert len(graph.calls) == 2


def test_find_sent_finds_our_messenger_message(graph: responses.RequestsMock) -> None:
    graph.get(CONVERSATIONS, json=meta_fixture("fb_conversations.json"))
    reply = dm_reply("Wir schauen nach!", last_inbound_at=NOW)
    found = make_connector().find_sent(reply, NOW - timedelta(hours=1, minutes=30))
    assert found is not None and found.external_id == "m_reply2"
    assert query(graph.calls[0])["user_id"] == PSID
    assert make_connector().find_sent(reply, NOW) is None


def test_page_webhook_parsing() -> None:
    batches = parse_page_webhook(meta_fixture("fb_webhook.json"))
    assert [b.account_ref for b in batches] == [PAGE_ID, ""]
    page = batches[0]
    by_id = {item.external_id: item for item in page.items}
    # Echoes, deliveries, reads, reactions, edits and the page's own comment are not inbound.
    assert set(by_id) == {"m_AG5Hz2Uq7tuw", "456_789", "456_791"}
    dm = by_id["m_AG5Hz2Uq7tuw"]
    assert (dm.kind, dm.thread_key, dm.created_at.isoformat()) == (
        "dm",
        f"dm:{PSID}",
        "2024-01-15T10:30:00+00:00",
    )
    top, reply = by_id["456_789"], by_id["456_791"]
    assert (top.thread_key, top.in_reply_to, top.text) == (
        "comment:456_789",
        "1029384756_456",
        "Ist das Menü vegan?",
    )
    assert (reply.thread_key, reply.in_reply_to) == ("comment:456_789", "456_789")
    assert reply.author == Author(platform_user_id="5552", display_name="Kim Berg")
    assert [f.error for f in page.failures] == [
        "facebook message ?: field 'mid' must be a non-empty string, got None"
    ]
    assert batches[1].failures[0].error == "Webhook entry has no account id"


def test_page_webhook_threads_agree_with_polling(graph: responses.RequestsMock) -> None:
    stub_poll(graph)
    polled = {i.external_id: i.thread_key for i in make_connector().poll(None).items}
    pushed = {
        i.external_id: i.thread_key
        for i in parse_page_webhook(meta_fixture("fb_webhook.json"))[0].items
    }
    assert pushed["456_789"] == polled["456_789"]
    assert pushed["456_791"] == polled["456_791"]


def test_a_failed_comment_keeps_its_post_and_parses_again_once_fixed(
    graph: responses.RequestsMock,
) -> None:
    stub_poll(graph)
    [failure] = make_connector().poll(None).failures
    kept = json.loads(failure.raw)
    assert (kept["shape"], kept["account_ref"]) == ("comment", PAGE_ID)
    assert kept["post"] == {"id": "1029384756_456", "message": "Unser neues Menü ist da!"}
    with pytest.raises(PayloadError, match="author"):
        RETRY_PARSERS["facebook"](kept)
    kept["entry"]["from"] = {"id": "5553", "name": "Sam Sommer"}
    item = RETRY_PARSERS["facebook"](json.loads(json.dumps(kept)))
    assert (item.external_id, item.thread_key, item.in_reply_to) == (
        "456_799",
        "comment:456_799",
        "1029384756_456",
    )
    assert item.context == {"post_id": "1029384756_456", "post_text": "Unser neues Menü ist da!"}


def test_failed_webhook_events_retry_through_the_webhook_parser() -> None:
    page, orphan = parse_page_webhook(meta_fixture("fb_webhook.json"))
    kept = json.loads(page.failures[0].raw)
    assert kept["shape"] == "messaging"
    kept["entry"]["message"]["mid"] = "m_fixed"
    item = RETRY_PARSERS["facebook"](kept)
    assert (item.external_id, item.kind, item.account_ref) == ("m_fixed", "dm", PAGE_ID)
    with pytest.raises(PayloadError, match="discard it"):
        RETRY_PARSERS["facebook"](json.loads(orphan.failures[0].raw))
