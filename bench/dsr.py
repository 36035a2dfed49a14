"""Speed of data-subject requests: export and erase a contact with 10,000 messages.

    .venv/bin/python bench/dsr.py                                  # SQLite only
    .venv/bin/python bench/dsr.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/socialcare_test

Seeds a freshly migrated inbox database (SQLite file in a temporary folder; on PostgreSQL a
schema of its own in the given database, dropped afterwards): the data subject with
``--messages`` messages (default 10,000: half theirs, half our replies) in conversations of ten
messages, with tags, notes, research-outbox rows, a consent record and an audit trail of views;
around them ``--noise`` messages (default 100,000) of other contacts. Rows go in through
SQLAlchemy Core executemany, the SQLite full-text triggers fire as in production. Then it times
what the dpo's clicks run: the counts on the request page, the export (with the JSON encoding),
the erasure (bulk deletes, tombstones, audit, commit), and a re-poll of 1,000 erased items that
must store none. Prints seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.engine import make_url

# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# inbox package: look in the checkout instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from sqlmodel import Session, SQLModel  # noqa: E402

from connectors import Author, InboundItem  # noqa: E402
from inbox.db import make_engine  # noqa: E402
from inbox.dsr import contact_counts, erase_contact, export_contact  # noqa: E402
from inbox.ingest import commit_batch  # noqa: E402
from inbox.migrate import upgrade  # noqa: E402
from inbox.models import Account  # noqa: E402
from inbox.tombstones import register  # noqa: E402
from inbox.types import utcnow  # noqa: E402

_T = TypeVar("_T")
PER_CONVERSATION = 10
CHUNK = 20_000


def _table(name: str) -> Any:
    return SQLModel.metadata.tables[name]


def _insert(engine: Engine, name: str, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        for start in range(0, len(rows), CHUNK):
            connection.execute(insert(_table(name)), rows[start : start + CHUNK])


def _conversations(
    first_id: int, contact_id: int, count: int, thread: str
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    now = utcnow()
    for n in range(count):
        cid = first_id + n
        opened = now - timedelta(days=30, minutes=n)
        conversation = {
            "id": cid,
            "account_id": 1,
            "contact_id": contact_id,
            "kind": "dm",
            "thread_key": f"{thread}-{cid}",
            "status": "closed",
            "opened_at": opened,
            "last_message_at": opened,
            "closed_at": opened,
            "is_spam": False,
            "initiated_by_agent": False,
            "response_count": 0,
            "response_seconds_total": 0,
        }
        messages = []
        for m in range(PER_CONVERSATION):
            inbound = m % 2 == 0
            messages.append(
                {
                    "conversation_id": cid,
                    "account_id": 1,
                    "external_id": f"{thread}-{cid}-{m}",
                    "direction": "in" if inbound else "out",
                    "text": f"Nachricht {m} in Gespräch {cid}: wo bleibt Bestellung 4711-{cid}?",
                    "author_contact_id": contact_id if inbound else None,
                    "author_user_id": None if inbound else 1,
                    "created_at": opened + timedelta(seconds=m),
                    "received_at": opened + timedelta(seconds=m),
                    "context": {},
                    "raw": {"id": f"{thread}-{cid}-{m}", "from": str(contact_id), "text": "…"},
                    "delivery": None if inbound else "sent",
                    "attempts": 0,
                }
            )
        yield conversation, messages


def seed(engine: Engine, fernet: MultiFernet, messages: int, noise: int) -> int:
    """Fill the database; return the data subject's contact id."""
    now = utcnow()
    _insert(
        engine,
        "account",
        [
            {
                "id": 1,
                "platform": "demo",
                "display_name": "Quendelmarkt",
                "platform_account_id": "demo-quendelmarkt",
                "handle": "quendelmarkt",
                "credentials_encrypted": fernet.encrypt(b"{}"),
                "settings": {},
                "status": "active",
                "poll_interval_seconds": 60,
                "retention_days": 90,
                "raw_retention_days": 7,
                "pseudonym_key_days": 30,
                "sla_minutes": 30,
                "cursor": {},
                "research_dms": True,
                "consecutive_failures": 0,
                "created_at": now,
            }
        ],
    )
    _insert(
        engine,
        "user",
        [
            {
                "id": 1,
                "email": "agent@bench.example",
                "name": "Bench Agent",
                "role": "agent",
                "password_hash": "x",
                "active": True,
                "created_at": now,
                "recovery_codes": [],
                "session_version": 0,
            }
        ],
    )
    noise_contacts = max(1, noise // PER_CONVERSATION)
    subject = noise_contacts + 1
    _insert(
        engine,
        "contact",
        [
            {
                "id": n,
                "platform": "demo",
                "platform_user_id": str(1_000_000 + n),
                "handle": f"kunde{n}",
                "display_name": f"Kundin {n}",
                "first_seen_at": now,
                "research_objection": False,
            }
            for n in range(1, subject + 1)
        ],
    )
    # Noise first, so the subject's rows are not simply the table's first pages.
    for contact_id, count, first, thread in (
        (None, noise_contacts, 1, "noise"),
        (subject, max(1, messages // PER_CONVERSATION), noise_contacts + 1, "subject"),
    ):
        conversations: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for index, (conversation, batch) in enumerate(
            _conversations(first, contact_id or 0, count, thread)
        ):
            if contact_id is None:  # one noise contact per conversation
                conversation["contact_id"] = index + 1
                for row in batch:
                    if row["author_contact_id"] is not None:
                        row["author_contact_id"] = index + 1
            conversations.append(conversation)
            rows.extend(batch)
        _insert(engine, "conversation", conversations)
        _insert(engine, "message", rows)
    with engine.begin() as connection:
        ids = [
            row[0]
            for row in connection.execute(
                text(
                    "SELECT m.id FROM message m JOIN conversation c ON c.id = m.conversation_id "
                    "WHERE c.contact_id = :c AND m.direction = 'in'"
                ),
                {"c": subject},
            )
        ]
        conversation_ids = [
            row[0]
            for row in connection.execute(
                text("SELECT id FROM conversation WHERE contact_id = :c"), {"c": subject}
            )
        ]
    _insert(
        engine, "researchoutbox", [{"message_id": i, "created_at": now, "attempts": 0} for i in ids]
    )
    _insert(
        engine,
        "conversationtag",
        [{"conversation_id": c, "tag": "lieferung"} for c in conversation_ids],
    )
    _insert(
        engine,
        "note",
        [
            {"conversation_id": c, "author_user_id": 1, "text": "Rückruf", "created_at": now}
            for c in conversation_ids[::10]
        ],
    )
    _insert(
        engine,
        "auditevent",
        [
            {
                "at": now,
                "user_id": 1,
                "action": "view_conversation",
                "target_type": "conversation",
                "target_id": c,
                "contact_id": subject,
                "detail": {},
            }
            for c in conversation_ids
        ],
    )
    _insert(
        engine,
        "consentrecord",
        [
            {
                "contact_id": subject,
                "channel": "dm",
                "purpose": "service",
                "given_at": now,
                "source": "customer wrote first",
            }
        ],
    )
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return subject


def timed(label: str, work: Callable[[], _T]) -> _T:
    """Run and print how long it took."""
    started = time.perf_counter()
    result = work()
    print(f"  {label:<34} {time.perf_counter() - started:8.2f} s", flush=True)
    return result


def run(engine: Engine, backend: str, messages: int, noise: int) -> None:
    """Seed, then time counts, export, erasure and a re-poll on one database."""
    fernet = MultiFernet([Fernet(Fernet.generate_key())])
    register(engine=engine, fernet=fernet)
    print(f"{backend}: seeding {messages:,} + {noise:,} messages …", flush=True)
    subject = timed("seed", lambda: seed(engine, fernet, messages, noise))
    with Session(engine, expire_on_commit=False) as session:
        counts = timed(
            "counts (request page)", lambda: contact_counts(session=session, contact_id=subject)
        )
        print(f"    {counts}")
        data = timed("export", lambda: export_contact(session=session, contact_id=subject))
        body = timed("JSON encoding", lambda: json.dumps(data, ensure_ascii=False, indent=2))
        print(f"    {len(data['messages']):,} messages, {len(body) / 1e6:.1f} MB JSON")
        report = timed(
            "erase",
            lambda: erase_contact(
                session=session, contact_id=subject, by_user_id=None, ip=None, via="bench"
            ),
        )
        print(f"    {report.counts()}")
        account = session.get(Account, 1)
        assert account is not None
        again = [
            InboundItem(
                platform="demo",
                account_ref="demo-quendelmarkt",
                external_id=f"subject-{noise // PER_CONVERSATION + 1 + n // 5}-{(n % 5) * 2}",
                kind="dm",
                author=Author(
                    platform_user_id=str(1_000_000 + subject), handle="x", display_name="x"
                ),
                text="again",
                created_at=utcnow(),
                thread_key=f"again-{n}",
                raw={},
            )
            for n in range(1000)
        ]
        result = timed(
            "re-poll of 1,000 erased items",
            lambda: commit_batch(
                session=session, account=account, items=again, failures=[], source="bench"
            ),
        )
        print(f"    new {result.new}, skipped {result.duplicates}")
        assert result.new == 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on SQLite, and on PostgreSQL when a URL is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="the data subject's")
    parser.add_argument("--noise", type=int, default=100_000, help="other contacts' messages")
    parser.add_argument("--database-url", help="also run on this PostgreSQL database")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/inbox.db")
        upgrade(engine, "inbox")
        run(engine, "SQLite", args.messages, args.noise)
        engine.dispose()
    if args.database_url:
        schema = f"bench_dsr_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(args.database_url)
        url = url.set(query={**url.query, "options": f"-csearch_path={schema}"})
        engine = make_engine(url.render_as_string(hide_password=False))
        try:
            upgrade(engine, "inbox")
            run(engine, "PostgreSQL", args.messages, args.noise)
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
