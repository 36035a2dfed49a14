"""Speed of the agent inbox at a million messages: list views, a conversation, search.

    .venv/bin/python bench/inbox.py                   # both databases, 1,000,000 messages
    .venv/bin/python bench/inbox.py --backend sqlite --messages 20000 --repeat 20
    .venv/bin/python bench/inbox.py --backend postgresql --reseed --sql

Seeding: 1,000,000 messages in 100,000 conversations (one tenth of ``--messages``) with as many
contacts, across 5 official accounts on three platforms and 50 agents. Texts are the demo
connector's German and English customer posts (about 70/30), randomised and of varied length
(one, two or three posts, or a one-liner), with agents' replies signed like ``^JS``; kinds are
mention, comment and DM; about 90 % of the conversations are closed, the rest open or pending
(one in seven of those snoozed), open ones carry an SLA due time, some already overdue; assignees
spread over the 50 agents, tags on about 30 %, a note on 5 %. Rows go in through SQLAlchemy Core
executemany in batches, one transaction per batch; the SQLite full-text triggers fire as in
production. Then ``ANALYZE`` (on PostgreSQL ``VACUUM ANALYZE``, the state autovacuum keeps a live
database in). Each database is seeded once and reused while its counts match (migrations that
landed since are applied to it): SQLite in ``--data-dir`` (default /tmp/socialcare-bench),
PostgreSQL in the database ``socialcare_bench``, created when missing (``--pg-url``).
``--reseed`` starts over, ``--seed-only`` stops after seeding. The research store, which these
pages never touch, is a SQLite file in the data folder for both backends.

Measuring: one process, Flask's test client logged in as an agent through the login form, so
routing, sessions, queries and template rendering are all counted. For every view the list page
links to (mine, unassigned, open, pending, snoozed, closed, spam): its first page, the page its
"next" link leads to, and a deep page (``--deep-page``, default 1,000, or the view's last page
if it is shorter) opened from a signed cursor as the list view makes them; two filtered first
pages; the conversation view (random conversations and the longest thread); search (words
newest first and by relevance, an order number, a word with a tag, a handle, a family name).
Each is warmed up, then requested ``--repeat`` times. The table shows the median and the 95th
percentile (nearest rank) of the wall time against the targets, 50 ms for list and
conversation views and 200 ms for search, then the medians of the time spent in SQL, of the
number of statements and of this process's CPU time: on a busy machine the wall time grows
with the load, the CPU time much less. ``--sql`` adds, for every view that misses, the statement
that took most of its SQL time, with the database's plan (EXPLAIN QUERY PLAN / EXPLAIN ANALYZE).
"""

from __future__ import annotations

import argparse
import html
import math
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, create_engine, event, insert, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# inbox package: look in the checkout instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from connectors.demo_texts import BRAND_HANDLE, CAST, POSTS, compose  # noqa: E402
from inbox import create_app, db  # noqa: E402
from inbox.db import databases, make_engine  # noqa: E402
from inbox.migrate import pending, upgrade  # noqa: E402
from inbox.models import ConversationStatus, Delivery, Direction, Role  # noqa: E402
from inbox.types import utcnow  # noqa: E402

PASSWORD = "bench-password-not-secret"
LOGIN_EMAIL = "agent01@bench.example"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/socialcare_bench"
LIST_TARGET_MS, SEARCH_TARGET_MS = 50.0, 200.0
CHUNK = 2_000  # conversations per transaction (about 20,000 messages)
AGENTS = 50
# Filtered first pages: a common filter, and a narrow combination the index order cannot serve.
FILTERED = (
    ("open", {"tag": "vip"}),
    ("closed", {"account": "5", "kind": "dm", "tag": "presse", "language": "en"}),
)
ACCOUNTS = (
    ("facebook", "Quendelmarkt"),
    ("instagram", "quendelmarkt"),
    ("x", "Quendelmarkt Hilfe"),
    ("facebook", "Quendel Plus"),
    ("instagram", "Quendelmarkt Reisen"),
)
PLATFORMS = ("facebook", "instagram", "x")
TAGS = ("lieferung", "erstattung", "kündigung", "defekt", "rechnung", "lob", "vip", "presse")
FIRST = (
    "Jana Lukas Sabine Thomas Katrin Jörg Anneliese Felix Marie Mehmet Ayşe Emre Zeynep Can "
    "Kasia Piotr Tomasz Olga Dmitri Natalja Sergej Yasmin Omar Layla Karim Emily James Hannah "
    "Oliver Lena Murat Svenja Tarek Paul Sophie Ben Mia Noah Emma Leon Hanna Elias Lea"
).split()
LAST = (
    "Müller Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer "
    "Richter Klein Wolf Yılmaz Kaya Demir Şahin Nowak Kowalski Zieliński Iwanowa Petrow "
    "Haddad Mansour Clarke O'Connor Whitfield Bennett Brandt Krüger Hartmann Lange Werner"
).split()
SHORT = {"de": ("Danke!", "Hallo??", "👍", "Ok, danke.", "Und jetzt?"), "en": ("Thanks!", "??")}
REPLIES = {
    "de": (
        "Hallo {first}, das tut uns leid! Schick uns bitte deine Bestellnummer per DM, dann "
        "schauen wir sofort nach.",
        "Danke für deine Geduld, {first}. Die Erstattung ist veranlasst und sollte in 3–5 "
        "Werktagen auf deinem Konto sein.",
        "Hallo {first}, wir haben beim Versanddienstleister nachgefragt und melden uns, sobald "
        "wir mehr wissen.",
        "Gern geschehen, {first}! Schönen Tag noch 😊",
        "Hallo {first}, deine Kündigung ist eingegangen, die Bestätigung kommt per Mail.",
    ),
    "en": (
        "Hi {first}, sorry about that! Please send us your order number by DM and we'll check.",
        "Thanks for your patience, {first}. Your refund is on its way (3–5 working days).",
        "You're welcome, {first}! Have a great day 😊",
    ),
}
NOTE = "Kunde hat schon angerufen, Ticket 4711 – bitte nicht doppelt erstatten."
TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ı": "i", "ş": "s"})


@dataclass(frozen=True, slots=True)
class Scale:
    """How much to seed."""

    messages: int

    @property
    def conversations(self) -> int:
        """One conversation per ten messages."""
        return max(1, self.messages // 10)

    @property
    def contacts(self) -> int:
        """As many contacts as conversations; some write more than once."""
        return self.conversations


@dataclass(slots=True)
class Texts:
    """Pools of customer posts and agent replies per language, varied on every draw."""

    rng: random.Random
    posts: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for lang in ("de", "en"):
            cast = [c for c in CAST if c.lang == lang]
            self.posts[lang] = [
                compose(self.rng, self.rng.choice(cast), follow_up=i % 3 == 0, mention=False)
                for i in range(4_000)
            ]

    def customer(self, lang: str) -> str:
        """A customer message: a one-liner, or one to three posts run together."""
        roll = self.rng.random()
        if roll < 0.1:
            return self.rng.choice(SHORT[lang])
        parts = 1 if roll < 0.75 else (2 if roll < 0.93 else 3)
        return " ".join(self.rng.choice(self.posts[lang]) for _ in range(parts))

    def reply(self, lang: str, first: str, signature: str) -> str:
        """An agent's reply with their signature."""
        return f"{self.rng.choice(REPLIES[lang]).format(first=first)} {signature}"


def _table(name: str) -> Any:
    return SQLModel.metadata.tables[name]


def _signature(agent: int) -> str:
    return f"^{FIRST[agent % len(FIRST)][0]}{LAST[agent % len(LAST)][0]}"


def _agents(now: datetime) -> list[dict[str, Any]]:
    # One argon2 hash for everyone: hashing 50 passwords would cost more than the rest.
    password_hash = PasswordHasher().hash(PASSWORD)
    return [
        {
            "id": n,
            "email": f"agent{n:02d}@bench.example",
            "name": f"{FIRST[n % len(FIRST)]} {LAST[n % len(LAST)]}",
            "role": Role.agent,
            "password_hash": password_hash,
            "active": True,
            "created_at": now - timedelta(days=400),
        }
        for n in range(1, AGENTS + 1)
    ]


def _contact(rng: random.Random, n: int, now: datetime) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    handle = re.sub(r"[^a-z0-9_.]", "", f"{first}_{last}".lower().translate(TRANSLIT))
    return {
        "id": n,
        "platform": PLATFORMS[n % 3],
        "platform_user_id": str(1_000_000_000 + n),
        "handle": f"{handle}{n}",
        "display_name": f"{first} {last}",
        "first_seen_at": now - timedelta(days=rng.uniform(0, 800)),
        "research_objection": rng.random() < 0.03,
    }


def _message_counts(rng: random.Random, scale: Scale) -> list[int]:
    # Every conversation has one message; the rest spread with a long tail (up to ~80).
    counts = [1] * scale.conversations
    weights = [rng.gammavariate(1.5, 1.0) for _ in counts]
    for index in rng.choices(range(len(counts)), weights=weights, k=scale.messages - len(counts)):
        counts[index] += 1
    return counts


@dataclass(slots=True)
class Batch:
    """Rows of one transaction."""

    conversations: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)


def _status(rng: random.Random) -> tuple[ConversationStatus, int]:
    """About 90 % closed, 6 % open (a third unassigned), 4 % pending; the assignee (0: none)."""
    roll, assignee = rng.random(), rng.randint(1, AGENTS)
    if roll < 0.06:
        return ConversationStatus.open, 0 if rng.random() < 0.35 else assignee
    return ConversationStatus.pending if roll < 0.10 else ConversationStatus.closed, assignee


def _timeline(
    rng: random.Random, count: int, status: ConversationStatus, now: datetime
) -> list[tuple[Direction, datetime]]:
    """Who wrote each message when: agents answer most customer messages within two hours;
    an open conversation ends with the customer waiting, recently."""
    directions = [Direction.inbound]
    for _ in range(count - 1):
        answer = directions[-1] == Direction.inbound and rng.random() < 0.7
        directions.append(Direction.outbound if answer else Direction.inbound)
    if status == ConversationStatus.open:
        directions[-1] = Direction.inbound
    gaps = [
        rng.uniform(120, 7_200) if d == Direction.outbound else rng.uniform(60, 86_400)
        for d in directions[1:]
    ]
    back = {ConversationStatus.open: (0, 5_400), ConversationStatus.pending: (3_600, 259_200)}
    at = now - timedelta(seconds=rng.uniform(*back.get(status, (10_800, 31_536_000))) + sum(gaps))
    times = [at]
    for gap in gaps:
        times.append(times[-1] + timedelta(seconds=gap))
    return list(zip(directions, times, strict=True))


def _batches(rng: random.Random, scale: Scale, now: datetime, firsts: list[str]) -> Iterator[Batch]:
    texts = Texts(rng)
    on_platform = {p: [i + 1 for i, a in enumerate(ACCOUNTS) if a[0] == p] for p in PLATFORMS}
    message_id = 0
    batch = Batch()
    for conversation_id, count in enumerate(_message_counts(rng, scale), start=1):
        contact_id = rng.randint(1, scale.contacts)
        account_id = rng.choice(on_platform[PLATFORMS[contact_id % 3]])
        lang = "de" if contact_id % 10 < 7 else "en"
        kind = rng.choices(("mention", "comment", "dm"), weights=(3, 4, 3))[0]
        status, assignee = _status(rng)
        post_id, post_text = rng.choice(POSTS)
        context = {"post_id": post_id, "post_text": post_text} if kind == "comment" else {}
        first_response: datetime | None = None
        waiting: datetime | None = None
        responses, response_total = 0, 0
        for index, (direction, at) in enumerate(_timeline(rng, count, status, now)):
            message_id += 1
            row: dict[str, Any] = {
                "id": message_id, "conversation_id": conversation_id, "account_id": account_id,
                "direction": direction, "created_at": at, "received_at": at,
                "in_reply_to": post_id if kind == "comment" and index == 0 else None,
                "context": context, "raw": {"id": f"m{message_id}"}, "attempts": 0,
                "delivery_error": None, "external_id": f"m{message_id}",
                "author_contact_id": None, "author_user_id": None, "delivery": None,
            }  # fmt: skip
            if direction == Direction.inbound:
                mention = f"@{BRAND_HANDLE} " if kind == "mention" and index == 0 else ""
                row |= {"text": mention + texts.customer(lang), "author_contact_id": contact_id}
                waiting = waiting or at
            else:
                author = assignee or rng.randint(1, AGENTS)
                reply = texts.reply(lang, firsts[contact_id], _signature(author))
                row |= {"text": reply, "author_user_id": author, "delivery": Delivery.sent}
                if waiting is not None:
                    responses += 1
                    response_total += int((at - waiting).total_seconds())
                    waiting = None
                first_response = first_response or at
            batch.messages.append(row)
        opened, closed = batch.messages[-count]["created_at"], status == ConversationStatus.closed
        # An open conversation ends with the customer's message: its answer is due.
        due = (
            waiting + timedelta(minutes=30)
            if waiting and status == ConversationStatus.open
            else None
        )
        snoozed = not closed and rng.random() < 0.15
        batch.conversations.append({
            "id": conversation_id, "account_id": account_id, "contact_id": contact_id,
            "kind": kind, "thread_key": f"{kind}-{conversation_id}", "status": status,
            "assignee_id": assignee or None, "opened_at": opened, "last_message_at": at,
            "sla_due_at": due, "first_response_at": first_response,
            "closed_at": at + timedelta(minutes=5) if closed else None,
            "snoozed_until": now + timedelta(hours=rng.uniform(1, 72)) if snoozed else None,
            "is_spam": closed and rng.random() < 0.005, "language": lang,
            "first_response_seconds":
                int((first_response - opened).total_seconds()) if first_response else None,
            "response_count": responses, "response_seconds_total": response_total,
        })  # fmt: skip
        if rng.random() < 0.3:
            for tag in rng.sample(TAGS, rng.choice((1, 1, 2))):
                batch.tags.append({"conversation_id": conversation_id, "tag": tag})
        if rng.random() < 0.05:
            author = rng.randint(1, AGENTS)
            batch.notes.append(
                {"conversation_id": conversation_id, "author_user_id": author, "text": NOTE,
                 "created_at": at}
            )  # fmt: skip
        if len(batch.conversations) >= CHUNK:
            yield batch
            batch = Batch()
    if batch.conversations:
        yield batch


def _accounts(now: datetime, key: bytes) -> list[dict[str, Any]]:
    credentials = Fernet(key).encrypt(b'{"token": "bench"}')
    return [
        {
            "id": n,
            "platform": platform,
            "display_name": name,
            "platform_account_id": f"bench-{n}",
            "handle": BRAND_HANDLE,
            "credentials_encrypted": credentials,
            "settings": {},
            "status": "active",
            "poll_interval_seconds": 60,
            "retention_days": 180,
            "sla_minutes": 30,
            "cursor": {},
            "research_dms": True,
            "consecutive_failures": 0,
            "created_at": now - timedelta(days=400),
        }
        for n, (platform, name) in enumerate(ACCOUNTS, start=1)
    ]


def _workflow_rows(now: datetime) -> dict[str, list[dict[str, Any]]]:
    members = [
        {"account_id": a, "user_id": u, "signature": _signature(u)}
        for a in range(1, len(ACCOUNTS) + 1)
        for u in range(1, AGENTS + 1)
    ]
    canned = [
        {
            "account_id": None,
            "language": lang,
            "title": f"Antwort {n}",
            "text": reply,
            "updated_at": now,
        }
        for lang, replies in REPLIES.items()
        for n, reply in enumerate(replies, start=1)
    ]
    return {"accountmember": members, "cannedreply": canned}


def seed(engine: Engine, scale: Scale, key: bytes) -> None:
    """Fill a migrated, empty inbox database; rows go in by executemany, a batch per commit."""
    rng = random.Random(1_000_000)
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(insert(_table("account")), _accounts(now, key))
        connection.execute(insert(_table("user")), _agents(now))
        for name, rows in _workflow_rows(now).items():
            connection.execute(insert(_table(name)), rows)
    firsts = [""]
    for start in range(1, scale.contacts + 1, 20_000):
        contacts = [
            _contact(rng, n, now) for n in range(start, min(start + 20_000, scale.contacts + 1))
        ]
        firsts += [c["display_name"].split(" ")[0] for c in contacts]
        with engine.begin() as connection:
            connection.execute(insert(_table("contact")), contacts)
    done = 0
    for batch in _batches(rng, scale, now, firsts):
        with engine.begin() as connection:
            connection.execute(insert(_table("conversation")), batch.conversations)
            connection.execute(insert(_table("message")), batch.messages)
            for name, rows in (("conversationtag", batch.tags), ("note", batch.notes)):
                if rows:
                    connection.execute(insert(_table(name)), rows)
        done += len(batch.messages)
        print(f"\r  {done:>9,} / {scale.messages:,} messages", end="", flush=True)
    print()
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            for name in (
                "account",
                "user",
                "contact",
                "conversation",
                "message",
                "note",
                "cannedreply",
            ):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "
                        f'coalesce((SELECT max(id) FROM "{name}"), 1))'
                    )
                )


def analyze(engine: Engine) -> None:
    """Give the planner statistics; PostgreSQL also gets the visibility map autovacuum builds."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))


@dataclass(frozen=True, slots=True)
class Target:
    """One database to seed and measure."""

    backend: str
    url: str
    research_url: str


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                name: int(connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
                for name in ("message", "conversation", "contact", "user")
            }
    except Exception:  # missing database or tables: not seeded
        return {}
    finally:
        engine.dispose()


def _wipe(target: Target) -> None:
    url = make_url(target.url)
    if target.backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{url.database}{suffix}").unlink(missing_ok=True)
        return
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def ensure_seeded(target: Target, scale: Scale, key: bytes, reseed: bool) -> str:
    """Seed the target unless it already holds this scale; say what was done."""
    expected = {
        "message": scale.messages,
        "conversation": scale.conversations,
        "contact": scale.contacts,
        "user": AGENTS,
    }
    if not reseed and _counts(target.url) == expected:
        engine = make_engine(target.url)
        try:
            # Migrations that landed since seeding (an index, say) apply to the seeded data.
            missing = pending(engine, "inbox")
            if missing:
                upgrade(engine, "inbox")
                analyze(engine)
        finally:
            engine.dispose()
        applied = f", migrated to {missing[-1]}" if missing else ""
        return f"reused {make_url(target.url).render_as_string()}{applied}"
    _wipe(target)
    engine = make_engine(target.url)
    try:
        upgrade(engine, "inbox")
        started = time.perf_counter()
        seed(engine, scale, key)
        seeded = time.perf_counter() - started
        started = time.perf_counter()
        analyze(engine)
        analyzed = time.perf_counter() - started
    finally:
        engine.dispose()
    return (
        f"seeded in {seeded:,.1f} s ({scale.messages / seeded:,.0f} messages/s), "
        f"ANALYZE {analyzed:,.1f} s"
    )


@dataclass(slots=True)
class Result:
    """The timings of one view."""

    view: str
    target_ms: float
    requests: list[Request] = field(default_factory=list)
    error: str = ""
    # Per distinct statement: total milliseconds over all requests, and its last parameters.
    statements: dict[str, tuple[float, Any]] = field(default_factory=dict)

    def percentile(self, q: float, of: Callable[[Request], float] = lambda r: r.ms) -> float:
        """Nearest-rank percentile, in milliseconds unless ``of`` picks something else."""
        ordered = sorted(of(r) for r in self.requests)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    @property
    def verdict(self) -> str:
        """OK, MISS, or the error."""
        if self.error:
            return f"ERROR: {self.error}"
        return "OK" if self.percentile(0.95) < self.target_ms else "MISS"


_CSRF = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')
_VIEW_LINK = re.compile(r'href="[^"]*[?&;]view=(\w+)')
_NEXT = re.compile(r'<a\b[^>]*\brel="next"[^>]*>|<a\b[^>]*href="[^"]*[?&;]cursor=[^"]*"[^>]*>')
_HREF = re.compile(r'href="([^"]+)"')


def next_link(page: str) -> str | None:
    """The list page's link to the next page: rel="next", else the first link with a cursor."""
    found = _NEXT.search(page)
    href = _HREF.search(found.group(0)) if found else None
    return html.unescape(href.group(1)) if href else None


# How to reach a deep page of a list view: (bench, view, page number) -> the deep page's URL
# and its number (lower when the view is shorter), or None when the view has one page.
DeepPage = Callable[["Bench", str, int], tuple[str, int] | None]


def walk_next_links(
    bench: Bench, view: str, page: int, url: str | None = None, reached: int = 1
) -> tuple[str, int] | None:
    """Follow "next" links (untimed) up to the wanted page or the view's last page."""
    url = url or bench.url("agent.conversations", view=view)
    while reached < page:
        following = next_link(bench.page(url))
        if following is None:
            break
        url, reached = following, reached + 1
    return (url, reached) if reached > 1 else None


def service_cursor(bench: Bench, view: str, page: int) -> tuple[str, int] | None:
    """Skip ahead with inbox.conversation_list, 20 pages a call, and sign the cursor as the
    list view does; walk the links for the last stretch. Falls back to walking if its API moved.
    """
    try:
        from inbox.conversation_list import PAGE_SIZE, View, list_conversations
        from inbox.list_params import encode_cursor

        after: Any = None
        done = 0  # pages before the one the cursor opens
        with bench.app.app_context():
            session = db.session()
            while done < page - 1:
                step = min(20, page - 1 - done)
                found = list_conversations(
                    session=session,
                    view=cast(View, view),
                    user_id=bench.user_id,
                    now=utcnow(),
                    after=after,
                    limit=step * PAGE_SIZE,
                )
                if found.next is None:
                    break
                after, done = found.next, done + step
            secret = bench.app.secret_key or ""
            token = encode_cursor(after, secret=secret) if after else None
    except (ImportError, TypeError, AttributeError) as moved:
        print(f"   (cursor shortcut unavailable: {moved!r}; walking the next links)")
        return walk_next_links(bench, view, page)
    if token is None:
        return walk_next_links(bench, view, page)
    return walk_next_links(
        bench, view, page, bench.url("agent.conversations", view=view, cursor=token), done + 1
    )


@dataclass(slots=True)
class Request:
    """What one timed request cost."""

    ms: float
    cpu_ms: float
    sql_ms: float
    queries: int


class Bench:
    """A logged-in test client that times views and the SQL they run."""

    def __init__(self, app: Flask, repeat: int) -> None:
        self.app, self.repeat = app, repeat
        self.client: FlaskClient = app.test_client()
        self.engine = databases(app).inbox
        self._statements: list[tuple[float, str, Any]] = []
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        token = _CSRF.search(self.page("/login"))
        assert token, "no CSRF token on the login page"
        response = self.client.post(
            "/login", data={"email": LOGIN_EMAIL, "password": PASSWORD, "csrf_token": token[1]}
        )
        assert response.status_code == 302, "bench agent could not log in"
        self.user_id = 1

    def _before(self, conn: Connection, *args: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(
        self, conn: Connection, _cursor: Any, statement: str, params: Any, *args: Any
    ) -> None:
        took = 1000 * (time.perf_counter() - conn.info.pop("bench_started"))
        self._statements.append((took, statement, params))

    def url(self, endpoint: str, **values: Any) -> str:
        """A URL of the app, built as the templates do."""
        with self.app.test_request_context():
            return url_for(endpoint, **values)

    def page(self, url: str) -> str:
        """One page's HTML, untimed."""
        return self.client.get(url).get_data(as_text=True)

    def time(self, view: str, target_ms: float, urls: list[str]) -> Result:
        """Warm up, then request the URLs in turn ``repeat`` times."""
        result = Result(view, target_ms)
        for url in urls[:2]:
            self.client.get(url)
        for index in range(self.repeat):
            url = urls[index % len(urls)]
            self._statements.clear()
            started, cpu = time.perf_counter(), time.process_time()
            response = self.client.get(url)
            took = 1000 * (time.perf_counter() - started)
            cpu = 1000 * (time.process_time() - cpu)
            sql = sum(s[0] for s in self._statements)
            result.requests.append(Request(took, cpu, sql, len(self._statements)))
            for took_ms, statement, params in self._statements:
                total = result.statements.get(statement, (0.0, None))[0]
                result.statements[statement] = (total + took_ms, params)
            if response.status_code != 200:
                result.error = f"HTTP {response.status_code} on {url}"
                break
        return result


def list_views(bench: Bench, deep_page: int, find_deep: DeepPage) -> Iterator[Result]:
    """First, second and a deep page of every view the list page links to; a few filters."""
    views = list(dict.fromkeys(_VIEW_LINK.findall(bench.page(bench.url("agent.conversations")))))
    for view in views:
        first = bench.url("agent.conversations", view=view)
        yield bench.time(f"list {view} p1", LIST_TARGET_MS, [first])
        second = next_link(bench.page(first))
        if second is None:
            continue
        yield bench.time(f"list {view} p2 (next link)", LIST_TARGET_MS, [second])
        deep = find_deep(bench, view, deep_page)
        if deep is not None and deep[1] > 2:
            yield bench.time(f"list {view} p{deep[1]:,} (cursor)", LIST_TARGET_MS, [deep[0]])
    for view, filters in FILTERED:
        url = bench.url("agent.conversations", view=view, **filters)
        yield bench.time(f"list {view} p1 ?{'&'.join(filters)}", LIST_TARGET_MS, [url])


def thread_views(bench: Bench, scale: Scale) -> Iterator[Result]:
    """Random conversations, then the longest thread."""
    rng = random.Random(5)
    ids = rng.sample(range(1, scale.conversations + 1), k=min(bench.repeat, scale.conversations))
    urls = [bench.url("agent.thread", conversation_id=i) for i in ids]
    yield bench.time("conversation (random)", LIST_TARGET_MS, urls)
    with bench.engine.connect() as connection:
        longest, count = connection.execute(
            text(
                "SELECT conversation_id, count(*) AS n FROM message "
                "GROUP BY conversation_id ORDER BY n DESC LIMIT 1"
            )
        ).one()
    url = bench.url("agent.thread", conversation_id=longest)
    yield bench.time(f"conversation (longest, {count} msgs)", LIST_TARGET_MS, [url])


def searches(bench: Bench, scale: Scale) -> Iterator[Result]:
    """Frequent and rarer words (newest first and by relevance), an order number, a word with
    a tag, a contact's handle and a family name."""
    with bench.engine.connect() as connection:
        sample = connection.execute(
            text("SELECT text FROM message WHERE text LIKE '%QM-%' ORDER BY id LIMIT 1")
        ).scalar()
        handle = connection.execute(
            text("SELECT handle FROM contact WHERE id = :id"),
            {"id": 1 + 4_242 % scale.contacts},
        ).scalar_one()
    order = re.search(r"QM-\d+", sample or "")
    queries: list[tuple[str, dict[str, str]]] = [
        ("frequent word", {"q": "Bestellung"}),
        ("frequent word by relevance", {"q": "Bestellung", "order": "relevance"}),
        ("rarer word", {"q": "Kinderwagen"}),
        ("order number", {"q": order[0] if order else "QM-12345678"}),
        ("word and tag", {"q": "Erstattung tag:vip"}),
        ("handle", {"q": handle}),
        ("family name", {"q": "Yılmaz"}),
    ]
    for label, args in queries:
        try:
            url = bench.url("agent.search", **args)
        except Exception as missing:  # no search view in this version of the app
            yield Result(f"search: {label}", SEARCH_TARGET_MS, error=type(missing).__name__)
            return
        yield bench.time(f"search: {label} ({args['q']})", SEARCH_TARGET_MS, [url])


def explain(engine: Engine, statement: str, params: Any) -> str:
    """The database's plan for one captured statement (PostgreSQL runs it: EXPLAIN ANALYZE)."""
    prefix = "EXPLAIN ANALYZE " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(prefix + statement, params)
        rows = cursor.fetchall()
    finally:
        connection.close()
    return "\n".join("    " + " | ".join(str(v) for v in row) for row in rows)


def measure(target: Target, scale: Scale, args: argparse.Namespace, key: bytes) -> list[Result]:
    """Start the app on a seeded database and time every view."""
    app = create_app(
        {
            "SECRET_KEY": "socialcare-bench-signing-key-" + "x" * 16,
            "ENCRYPTION_KEYS": key.decode(),
            "DATABASE_URL": target.url,
            "RESEARCH_DATABASE_URL": target.research_url,
            "INSTANCE_PATH": str(args.data_dir / "instance"),
            "PROPAGATE_EXCEPTIONS": True,
            # Every request reads its rows: the pages are asked for many times in a row, and
            # the rows shared for a second would measure the cache, not the queries.
            "CONVERSATION_ROWS_TTL": 0,
        }
    )
    upgrade(databases(app).research, "research")
    bench = Bench(app, args.repeat)
    results = [*list_views(bench, args.deep_page, service_cursor)]
    results += [*thread_views(bench, scale), *searches(bench, scale)]
    databases(app).inbox.dispose()
    databases(app).research.dispose()
    return results


def report(backend: str, results: list[Result], engine_url: str | None) -> None:
    """Print the table; given a database URL, the costliest statement and plan of each miss."""
    print(
        f"{'view':<50}{'p50 ms':>7}{'p95 ms':>7}{'n':>4}{'target':>7}  {'result':<6}"
        "  medians of SQL time, statements, CPU time"
    )
    for r in results:
        if not r.requests:
            print(f"{r.view:<50}{'':>7}{'':>7}{0:>4}{r.target_ms:>7.0f}  {r.verdict}")
            continue
        sql = r.percentile(0.5, lambda q: q.sql_ms)
        queries = r.percentile(0.5, lambda q: q.queries)
        cpu = r.percentile(0.5, lambda q: q.cpu_ms)
        print(
            f"{r.view:<50}{r.percentile(0.5):>7.1f}{r.percentile(0.95):>7.1f}"
            f"{len(r.requests):>4}{r.target_ms:>7.0f}  {r.verdict:<6}"
            f"  sql {sql:.1f} ms, {queries:.0f} q, cpu {cpu:.0f} ms"
        )
    if engine_url is None:
        return
    engine = make_engine(engine_url)
    for r in results:
        if r.verdict != "MISS" or not r.statements:
            continue
        statement, (total, params) = max(r.statements.items(), key=lambda item: item[1][0])
        shown = re.sub(r"^SELECT .{120,}? FROM ", "SELECT … FROM ", " ".join(statement.split()))
        print(
            f"\n[{backend}] {r.view}: costliest statement, {total / len(r.requests):.1f} ms"
            f" per request ({100 * total / sum(q.sql_ms for q in r.requests):.0f} % of SQL time)"
            f"\n  {shown}\n  params {params!r}\n{explain(engine, statement, params)}"
        )
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Seed (or reuse) each database, time the views and print p50/p95 per view."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=40, help="timed requests per view")
    parser.add_argument("--deep-page", type=int, default=1_000)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/socialcare-bench"))
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--reseed", action="store_true", help="seed again even if present")
    parser.add_argument("--sql", action="store_true", help="explain the costliest SQL of misses")
    parser.add_argument("--seed-only", action="store_true", help="seed, measure nothing")
    args = parser.parse_args(argv)
    scale = Scale(args.messages)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    key_file = args.data_dir / "fernet.key"
    if not key_file.exists():
        key_file.write_bytes(Fernet.generate_key())
    key = key_file.read_bytes().strip()
    research = f"sqlite:///{args.data_dir / 'research.db'}"
    targets = [
        Target("sqlite", f"sqlite:///{args.data_dir / f'inbox-{scale.messages}.db'}", research),
        Target("postgresql", args.pg_url, research),
    ]
    failed = False
    for target in targets:
        if args.backend not in (target.backend, "both"):
            continue
        print(
            f"== {target.backend}: {scale.messages:,} messages, {scale.conversations:,} "
            f"conversations, {scale.contacts:,} contacts, {len(ACCOUNTS)} accounts, "
            f"{AGENTS} agents"
        )
        print(f"   {ensure_seeded(target, scale, key, args.reseed)}")
        if args.seed_only:
            continue
        load = os.getloadavg()[0]
        results = measure(target, scale, args, key)
        print(
            f"   load average {load:.1f} before, {os.getloadavg()[0]:.1f} after"
            f" ({os.cpu_count()} CPUs)"
        )
        report(target.backend, results, target.url if args.sql else None)
        failed = failed or any(r.error for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
