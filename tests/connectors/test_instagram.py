"""Behaviour of the Instagram connector against the real facebook-sdk over mocked HTTP."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from connectors import REGISTRY, RETRY_PARSERS, WEBHOOK_PARSERS
from connectors.base import Author, NotOfficialAccount, OutboundReply, PayloadError, ReplyRefused
from connectors.instagram import InstagramConnector, parse_instagram_webhook
from tests.connectors.conftest import GRAPH, NOW, TOKEN, meta_fixture

PAGE_ID = "1029384756"
IG_USER_ID = "17841400000000001"
IGSID = "987654321012345"


def make_connector(**settings: Any) -> InstagramConnector:
    """A connector for Quendelmarkt's Instagram account with a fixed clock."""
    return InstagramConnector(
        {"page_access_token": TOKEN},
        {"ig_user_id": IG_USER_ID, "page_id": PAGE_ID, **settings},
        clock=lambda: NOW,
    )


def query(call: Any) -> dict[str, str]:
    """The query string of a recorded request, one value per key."""
    return {k: v[-1] for k, v in parse_qs(urlparse(call.request.url).query).items()}


def form(call: Any) -> dict[str, str]:
    """The form body of a recorded POST, one value per key."""
    return {k: v[-1] for k, v in parse_qs(call.request.body).items()}


def reply(kind: str, thread_key: str, in_reply_to: str | None, **kw: Any) -> OutboundReply:
    """An agent's reply on Instagram."""
    return OutboundReply(
        kind=kind,  # type: ignore[arg-type]
        thread_key=thread_key,
        in_reply_to=in_reply_to,
        recipient=Author(platform_user_id="17850000000000007", handle="jo.doe"),
        text=kw.pop("text", "Ab Freitag in allen Größen!"),
        **kw,
    )


def stub_poll(graph: responses.RequestsMock) -> None:
    """Recent media with comments, tagged media and Instagram conversations."""
    graph.get(f"{GRAPH}/{IG_USER_ID}/media", json=meta_fixture("ig_media.json"))
    graph.get(f"{GRAPH}/{IG_USER_ID}/tags", json=meta_fixture("ig_tags.json"))
    graph.get(f"{GRAPH}/{PAGE_ID}/conversations", json=meta_fixture("ig_conversations.json"))


def test_the_connector_is_registered_with_its_webhook_parser() -> None:
    settings = {"ig_user_id": IG_USER_ID, "page_id": PAGE_ID}
    assert REGISTRY["instagram"]({"page_access_token": TOKEN}, settings).platform == "instagram"
    assert WEBHOOK_PARSERS["instagram"] is parse_instagram_webhook


def test_identity_of_the_pages_instagram_account(graph: responses.RequestsMock) -> None:
    graph.get(f"{GRAPH}/me", json=meta_fixture("fb_me_page.json"))
    graph.get(f"{GRAPH}/{PAGE_ID}", json=meta_fixture("ig_page.json"))
    who = make_connector().identity()
    assert (who.platform, who.account_ref, who.handle, who.display_name) == (
        "instagram",
        IG_USER_ID,
        "quendelmarkt",
        "Quendelmarkt",
    )
    assert query(graph.calls[1])["fields"] == "instagram_business_account{id,username,name}"


def test_a_page_linked_to_another_instagram_account_is_refused(
    graph: responses.RequestsMock,
) -> None:
    graph.get(f"{GRAPH}/me", json=meta_fixture("fb_me_page.json"))
    other = {"instagram_business_account": {"id": "17841499999999999", "username": "fanclub"}}
    graph.get(f"{GRAPH}/{PAGE_ID}", json=other)
    with pytest.raises(NotOfficialAccount, match="@fanclub, not to 17841400000000001"):
        make_connector().identity()


def test_a_user_token_is_refused_for_instagram(graph: responses.RequestsMock) -> None:
    graph.get(f"{GRAPH}/me", json=meta_fixture("fb_me_user.json"))
    with pytest.raises(NotOfficialAccount, match="personal user token"):
        make_connector().identity()


def test_poll_reads_comments_mentions_and_dms(graph: responses.RequestsMock) -> None:
    stub_poll(graph)
    result = make_connector().poll(None)
    by_id = {item.external_id: item for item in result.items}
    assert set(by_id) == {
        "17860000000000003",
        "17860000000000005",
        "17895000000000010",
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE1",
    }
    comment, reply_ = by_id["17860000000000003"], by_id["17860000000000005"]
    assert (comment.kind, comment.thread_key, comment.in_reply_to) == (
        "comment",
        "comment:17860000000000003",
        "17890000000000002",
    )
    assert comment.author == Author(platform_user_id="17850000000000007", handle="jo.doe")
    assert comment.context["post_text"] == "Neue Kollektion ab Freitag!"
    assert (reply_.thread_key, reply_.in_reply_to) == (
        "comment:17860000000000003",
        "17860000000000003",
    )
    mention = by_id["17895000000000010"]
    assert (mention.kind, mention.thread_key, mention.author.handle) == (
        "mention",
        "media:17895000000000010",
        "kim.berg",
    )
    dm = by_id["aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE1"]
    assert (dm.kind, dm.thread_key, dm.author.handle) == ("dm", f"dm:{IGSID}", "jo.doe")
    assert [json.loads(f.raw)["entry"]["id"] for f in result.failures] == ["17860000000000006"]
    assert query(graph.calls[2])["platform"] == "instagram"
    assert set(result.cursor) == {"comments", "mentions", "dm"}


def test_poll_with_a_cursor_returns_only_new_items(graph: responses.RequestsMock) -> None:
    stub_poll(graph)
    late = {
        key: {"since": int((NOW - timedelta(minutes=1)).timestamp())}
        for key in ("comments", "mentions", "dm")
    }
    assert make_connector().poll(late).items == []


def test_reply_to_a_comment_answers_the_root_comment(graph: responses.RequestsMock) -> None:
    graph.post(f"{GRAPH}/17860000000000003/replies", json={"id": "17860000000000099"})
    sent = make_connector().send_reply(
        reply("comment", "comment:17860000000000003", "17860000000000005")
    )
    assert sent.external_id == "17860000000000099"
    assert form(graph.calls[0])["message"] == "Ab Freitag in allen Größen!"


def test_reply_to_a_mention_comments_on_the_media(graph: responses.RequestsMock) -> None:
    graph.post(f"{GRAPH}/{IG_USER_ID}/mentions", json={"id": "17860000000000100"})
    sent = make_connector().send_reply(reply("mention", "media:17895000000000010", None))
    assert sent.external_id == "17860000000000100"
    body = form(graph.calls[0])
    assert body["media_id"] == "17895000000000010"
    assert "comment_id" not in body


def test_dm_reply_inside_the_window(graph: responses.RequestsMock) -> None:
    graph.post(f"{GRAPH}/{PAGE_ID}/messages", json={"recipient_id": IGSID, "message_id": "mid.1"})
    sent = make_connector().send_reply(
        reply("dm", f"dm:{IGSID}", None, last_inbound_at=NOW - timedelta(hours=2))
    )
    assert sent.external_id == "mid.1"
    body = form(graph.calls[0])
    assert json.loads(body["recipient"]) == {"id": IGSID}
    assert body["messaging_type"] == "RESPONSE"


def test_dm_reply_outside_the_window_needs_the_human_agent_tag(
    graph: responses.RequestsMock,
) -> None:
    late = reply("dm", f"dm:{IGSID}", None, last_inbound_at=NOW - timedelta(hours=30))
    with pytest.raises(ReplyRefused, match="Instagram allows replies within 24 hours"):
        make_connector().send_reply(late)
    graph.post(f"{GRAPH}/{PAGE_ID}/messages", json={"recipient_id": IGSID, "message_id": "mid.2"})
    make_connector(human_agent_enabled=True).send_reply(late)
    assert form(graph.calls[0])["tag"] == "HUMAN_AGENT"


def test_instagram_length_limits() -> None:
    connector = make_connector()
    with pytest.raises(ReplyRefused, match="at most 2200"):
        connector.send_reply(reply("comment", "comment:1", "1", text="x" * 2201))
    with pytest.raises(ReplyRefused, match="at most 1000"):
        connector.send_reply(reply("dm", f"dm:{IGSID}", None, text="x" * 1001, last_inbound_at=NOW))


def test_find_sent_looks_in_the_comments_replies(graph: responses.RequestsMock) -> None:
    graph.get(f"{GRAPH}/17860000000000003/replies", json={"data": [
        {"id": "17860000000000099", "text": "Ab Freitag in allen Größen!",
         "timestamp": "2024-01-15T12:59:00+0000",
         "from": {"id": IG_USER_ID, "username": "quendelmarkt"}},
    ]})  # fmt: skip
    out = reply("comment", "comment:17860000000000003", "17860000000000005")
    found = make_connector().find_sent(out, NOW - timedelta(minutes=5))
    assert found is not None and found.external_id == "17860000000000099"
    assert make_connector().find_sent(out, NOW + timedelta(minutes=5)) is None


def test_instagram_webhook_parsing() -> None:
    (batch,) = parse_instagram_webhook(meta_fixture("ig_webhook.json"))
    assert batch.account_ref == IG_USER_ID
    by_id = {item.external_id: item for item in batch.items}
    assert set(by_id) == {
        "17860000000000003",
        "17860000000000009",
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE1",
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE3",
    }
    top, answer = by_id["17860000000000003"], by_id["17860000000000009"]
    assert (top.thread_key, top.in_reply_to, top.created_at.isoformat()) == (
        "comment:17860000000000003",
        "17890000000000002",
        "2024-01-15T11:00:00+00:00",
    )
    assert (answer.thread_key, answer.in_reply_to) == (
        "comment:17860000000000003",
        "17860000000000003",
    )
    photo = by_id["aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE3"]
    assert (photo.text, photo.context) == ("", {"attachments": ["image"]})
    errors = [f.error for f in batch.failures]
    assert len(errors) == 2
    assert "media id is missing" in errors[0]
    assert "carries no text or author" in errors[1]


def test_a_page_delivery_is_not_an_instagram_delivery() -> None:
    with pytest.raises(PayloadError, match="not for object 'instagram'"):
        parse_instagram_webhook({"object": "page", "entry": []})


def test_a_failed_comment_keeps_its_media_and_parses_again_once_fixed(
    graph: responses.RequestsMock,
) -> None:
    stub_poll(graph)
    [failure] = make_connector().poll(None).failures
    kept = json.loads(failure.raw)
    assert (kept["shape"], kept["account_ref"]) == ("comment", IG_USER_ID)
    assert kept["media"] == {"id": "17890000000000002", "caption": "Neue Kollektion ab Freitag!"}
    with pytest.raises(PayloadError, match="author"):
        RETRY_PARSERS["instagram"](kept)
    kept["entry"]["from"] = {"id": "17850000000000009", "username": "kaputt"}
    item = RETRY_PARSERS["instagram"](json.loads(json.dumps(kept)))
    assert (item.external_id, item.thread_key, item.in_reply_to) == (
        "17860000000000006",
        "comment:17860000000000006",
        "17890000000000002",
    )
    assert item.author == Author(platform_user_id="17850000000000009", handle="kaputt")
