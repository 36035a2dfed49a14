"""Behaviour of the offline demo connector."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors import REGISTRY, RETRY_PARSERS, get_connector
from connectors.base import (
    Author,
    ConnectorError,
    FailedPayload,
    InboundItem,
    OutboundReply,
    PayloadError,
)
from connectors.demo import DemoConnector, parse_payload
from connectors.demo_texts import BRAND_HANDLE, BRAND_NAME, CAST

START = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
LATE = START + timedelta(days=1)  # far enough that thousands of items exist


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make(now: datetime = LATE, **settings: Any) -> DemoConnector:
    settings.setdefault("start", START.isoformat())
    return DemoConnector({}, settings, clock=Clock(now))


def drain(conn: DemoConnector, count: int) -> tuple[list[InboundItem], list[FailedPayload]]:
    """Poll until `count` entries arrived (or nothing more comes)."""
    items: list[InboundItem] = []
    failures: list[FailedPayload] = []
    cursor: Mapping[str, Any] | None = None
    while len(items) + len(failures) < count:
        result = conn.poll(cursor)
        if not result.items and not result.failures:
            break
        items += result.items
        failures += result.failures
        cursor = result.cursor
    return items, failures


def first_items(n: int = 200, **settings: Any) -> list[InboundItem]:
    items, failures = drain(make(**settings), n)
    assert not failures
    return items[:n]


def reply(text: str) -> OutboundReply:
    return OutboundReply(
        kind="dm",
        thread_key="conv-7-1204857730",
        in_reply_to="dm-7-000001",
        recipient=Author("1204857730", "jana_mue", "Jana"),
        text=text,
    )


# --- registry and identity -------------------------------------------------------------


def test_registered_and_built_through_the_registry() -> None:
    assert "demo" in REGISTRY
    conn = get_connector("demo", {}, {"seed": 3})
    assert isinstance(conn, DemoConnector)
    assert conn.platform == "demo"
    assert conn.max_reply_length == 2000


def test_identity_is_the_brand_account() -> None:
    ident = make().identity()
    assert ident.platform == "demo"
    assert ident.handle == BRAND_HANDLE
    assert ident.display_name == BRAND_NAME
    assert ident.account_ref
    assert all(item.account_ref == ident.account_ref for item in first_items(50))


@pytest.mark.parametrize(
    "settings",
    [{"rate": 0}, {"rate": -1.0}, {"backlog": -1}, {"start": "next tuesday"}, {"seed": "7"}],
)
def test_bad_settings_are_rejected(settings: dict[str, Any]) -> None:
    with pytest.raises(ConnectorError, match="Demo setting"):
        DemoConnector({}, settings)


def test_bad_cursor_is_rejected() -> None:
    with pytest.raises(ConnectorError, match="cursor"):
        make().poll({"next_index": -3})


# --- determinism -----------------------------------------------------------------------


def test_same_seed_gives_identical_items() -> None:
    assert first_items(120, seed=11) == first_items(120, seed=11)


def test_batching_does_not_change_the_sequence() -> None:
    in_bulk = first_items(150)
    clock = Clock(START)
    trickle = DemoConnector({}, {"start": START.isoformat()}, clock=clock)
    items: list[InboundItem] = []
    cursor: Mapping[str, Any] | None = None
    step = 0
    while len(items) < 150:
        step += 1
        clock.now += timedelta(seconds=7 * step)  # uneven steps give uneven batch sizes
        result = trickle.poll(cursor)
        items += result.items
        cursor = result.cursor
    assert items[:150] == in_bulk


def test_poll_returns_at_most_50_and_resumes_at_the_cursor() -> None:
    conn = make()
    first = conn.poll(None)
    assert len(first.items) == 50
    assert first.cursor == {"next_index": 50}
    second = conn.poll(first.cursor)
    assert second.cursor == {"next_index": 100}
    assert {i.external_id for i in first.items}.isdisjoint(i.external_id for i in second.items)


def test_different_seed_gives_different_items() -> None:
    a = [i.text for i in first_items(50, seed=1)]
    b = [i.text for i in first_items(50, seed=2)]
    assert a != b


# --- timing ----------------------------------------------------------------------------


def test_only_the_backlog_exists_before_start() -> None:
    for now in (START - timedelta(days=3), START - timedelta(seconds=1), START):
        result = make(now, backlog=5).poll(None)
        assert len(result.items) == 5
        assert result.cursor == {"next_index": 5}


def test_rate_controls_how_many_items_are_available() -> None:
    clock = Clock(START)
    conn = DemoConnector({}, {"start": START.isoformat(), "backlog": 3, "rate": 6}, clock=clock)
    assert len(conn.poll(None).items) == 3
    clock.now = START + timedelta(seconds=59)
    assert len(conn.poll(None).items) == 3 + 5
    clock.now = START + timedelta(minutes=5)
    result = conn.poll(None)
    assert len(result.items) == 3 + 30
    assert conn.poll(result.cursor).items == []  # nothing new until time passes
    clock.now += timedelta(seconds=20)
    assert len(conn.poll(result.cursor).items) == 2


def test_created_at_follows_the_rate_and_backlog_precedes_start() -> None:
    items = first_items(20, backlog=4, rate=6)
    for item in items:
        assert item.created_at.tzinfo is not None
        assert item.created_at.utcoffset() == timedelta(0)
    for item in items[:4]:
        assert START - timedelta(hours=1) <= item.created_at < START
    for k, item in enumerate(items[4:]):
        assert item.created_at == START + timedelta(seconds=10 * k)
    assert [i.created_at for i in items] == sorted(i.created_at for i in items)


# --- content ---------------------------------------------------------------------------


def test_follow_ups_share_thread_and_author_with_their_root() -> None:
    items = first_items()
    by_id = {i.external_id: i for i in items}
    follow_ups = [i for i in items if i.in_reply_to is not None]
    assert len(follow_ups) >= 10
    assert {f.kind for f in follow_ups} == {"mention", "comment", "dm"}
    for f in follow_ups:
        root = by_id[f.in_reply_to]  # type: ignore[index]
        assert root.in_reply_to is None
        assert root.author == f.author
        assert root.thread_key == f.thread_key
        assert root.kind == f.kind
        assert root.created_at < f.created_at


def test_thread_keys_by_kind() -> None:
    items = first_items()
    for item in items:
        if item.kind == "dm":
            assert item.thread_key == f"conv-7-{item.author.platform_user_id}"
        elif item.in_reply_to is None:
            assert item.thread_key == item.external_id
        if item.kind == "comment":
            assert item.context["post_text"]
        if item.kind == "mention" and item.in_reply_to is None:
            assert f"@{BRAND_HANDLE}" in item.text


def test_all_kinds_and_both_languages_appear() -> None:
    items = first_items()
    assert {i.kind for i in items} == {"mention", "comment", "dm"}
    german = re.compile(r"\b(ich|und|nicht|mein|meine|ist|euch|ihr|Hallo|noch|Danke)\b")
    english = re.compile(r"\b(the|my|you|is|it|me|for|order|thanks|Thanks|update)\b")
    de = sum(1 for i in items if german.search(i.text))
    en = sum(1 for i in items if english.search(i.text) and not german.search(i.text))
    assert de > 0 and en > 0
    assert 0.5 < de / len(items) < 0.9


def test_cast_is_stable_and_varied() -> None:
    assert 25 <= len(CAST) <= 40
    assert len({c.user_id for c in CAST}) == len(CAST)
    assert len({c.handle for c in CAST}) == len(CAST)
    seen = {i.author for i in first_items()}
    assert len(seen) >= 20
    assert {a.platform_user_id for a in seen} <= {c.user_id for c in CAST}


PERSONAL_DATA = {
    "full name": "|".join(re.escape(f"{c.first} {c.last}") for c in CAST),
    "first-name intro": r"ich heiße \w+|ich bin \w+|my name is \w+",
    "phone": r"(?:\+49 \(\d+\) \d{6}|\+49 1\d\d \d{8}|01\d\d \d{7}|0\d{2,3}-\d{7}|0\d+/\d+)",
    "e-mail": r"[\w.]+@example\.(?:com|net|org)",
    "order number": r"\b\d{4}-202\d\b|#\d{6}\b|QM-\d{8}",
    "customer number": r"K-\d{7}",
    "contract number": r"QP-\d{6}",
    "address": r"\w+(?:straße|allee|weg|platz|bach) \d+[ab]?, \d{5} \w+",
    "other handle": "|".join(re.escape(f"@{c.handle}") for c in CAST),
}


@pytest.mark.parametrize("kind", PERSONAL_DATA)
def test_personal_data_of_each_kind_appears_in_texts(kind: str) -> None:
    pattern = re.compile(PERSONAL_DATA[kind])
    assert any(pattern.search(i.text) for i in first_items()), kind


def test_hostile_markup_appears() -> None:
    texts = [i.text for i in first_items()]
    assert any("<script>" in t for t in texts)
    assert any("<b>" in t or "<img" in t for t in texts)


def test_raw_is_kept_and_json_serialisable() -> None:
    for item in first_items(60):
        assert json.loads(json.dumps(item.raw)) == item.raw
        assert parse_payload(item.raw) == item


# --- malformed payloads ----------------------------------------------------------------


def test_malformed_every_yields_failures_and_keeps_the_rest() -> None:
    conn = make(malformed_every=5, backlog=40, now=START)
    result = conn.poll(None)
    assert result.cursor == {"next_index": 40}
    assert len(result.failures) == 8
    assert len(result.items) == 32
    assert [i.external_id[-2:] for i in result.items][:4] == ["00", "01", "02", "03"]
    for failure in result.failures:
        raw = json.loads(failure.raw)
        assert raw["shape"] == "payload" and raw["account_ref"] == "demo-quendelmarkt"
        raw = raw["entry"]
        assert raw["event_type"] in {"direct_message", "comment", "mention"}
        assert "payload" in failure.error
        assert re.search(r"missing|must be a string|timestamp", failure.error)


def good_raw(kind: str) -> dict[str, Any]:
    item = next(i for i in first_items(60) if i.kind == kind)
    return copy.deepcopy(dict(item.raw))


@pytest.mark.parametrize(
    ("kind", "path"),
    [("dm", ("message", "text")), ("comment", ("message",)), ("mention", ("data", "text"))],
)
def test_parse_rejects_a_payload_without_text(kind: str, path: tuple[str, ...]) -> None:
    raw = good_raw(kind)
    node = raw
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    with pytest.raises(PayloadError, match="the text is missing"):
        parse_payload(raw)


@pytest.mark.parametrize(
    ("kind", "path"),
    [("dm", ("sender",)), ("comment", ("from",)), ("mention", ("includes", "users"))],
)
def test_parse_rejects_a_payload_without_author(kind: str, path: tuple[str, ...]) -> None:
    raw = good_raw(kind)
    node = raw
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    with pytest.raises(PayloadError, match="author"):
        parse_payload(raw)


def test_parse_rejects_junk() -> None:
    with pytest.raises(PayloadError, match="event_type"):
        parse_payload({"event_type": "poke"})
    with pytest.raises(PayloadError, match="JSON object"):
        parse_payload(["not", "a", "dict"])  # type: ignore[arg-type]
    raw = good_raw("comment")
    raw["created_time"] = "yesterday"
    with pytest.raises(PayloadError, match="timestamp"):
        parse_payload(raw)


# --- replies ---------------------------------------------------------------------------


def test_too_long_reply_names_the_limit() -> None:
    with pytest.raises(ConnectorError, match=r"2001.*2000"):
        make().send_reply(reply("x" * 2001))


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_reply_is_rejected(text: str) -> None:
    with pytest.raises(ConnectorError, match=r"empty.*2000"):
        make().send_reply(reply(text))


def test_simulated_outage() -> None:
    with pytest.raises(ConnectorError, match="simulated outage"):
        make(fail_replies=True).send_reply(reply("Hallo Jana, wir kümmern uns."))


def test_good_reply_gets_a_unique_id() -> None:
    conn = make()
    first = conn.send_reply(reply("x" * 2000))
    second = conn.send_reply(reply("Hallo Jana, wir kümmern uns."))
    assert first.external_id.startswith("demo-out-")
    assert first.external_id != second.external_id
    assert first.created_at == LATE
    assert second.raw["text"] == "Hallo Jana, wir kümmern uns."
    assert json.loads(json.dumps(second.raw)) == second.raw


def test_a_failed_demo_payload_parses_again_once_its_field_is_restored() -> None:
    broken = make(malformed_every=5, backlog=40, now=START)
    good = make(backlog=40, now=START)
    for failure in broken.poll(None).failures:
        kept = json.loads(failure.raw)
        with pytest.raises(PayloadError):
            RETRY_PARSERS["demo"](kept)
        entry = kept["entry"]
        found = entry.get("data") or (entry["message"] if "sender" in entry else entry)
        index = int(found["id"].rsplit("-", 1)[1])
        kept["entry"] = good.payload(index)
        item = RETRY_PARSERS["demo"](kept)
        assert item == parse_payload(good.payload(index))
        # Letters stored before envelopes held the bare payload; they still retry.
        assert RETRY_PARSERS["demo"](good.payload(index)) == item
