"""The audit trail's hash chain: sealed on insert, linear under concurrent writers, append-only,
and `socialcare audit verify` names the first event someone changed, removed or moved."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, insert
from sqlalchemy import text as sql
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from inbox import audit
from inbox.db import databases
from inbox.ingest import ingest
from inbox.models import AuditEvent, Conversation, Role, User
from tests.conftest import (
    csrf_token,
    load_migration,
    login,
    make_account,
    make_item,
    make_member,
    make_user,
    post_form,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def install_triggers(engine: Engine) -> None:
    """The append-only triggers exactly as migration 0009 makes them (the fixtures use
    create_all)."""
    migration = load_migration("0009_privacy_controls")
    statements = (
        migration.SQLITE_TRIGGERS
        if engine.dialect.name == "sqlite"
        else [migration.POSTGRES_FUNCTION, migration.POSTGRES_TRIGGER]
    )
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sql(statement))


def drop_triggers(engine: Engine) -> None:
    """What an attacker with database rights does first."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            for what in ("update", "delete"):
                connection.execute(sql(f"DROP TRIGGER auditevent_append_only_{what}"))
        else:
            connection.execute(sql("DROP TRIGGER auditevent_append_only ON auditevent"))


def write_events(session: Session, count: int, *, per_commit: int = 1) -> list[int]:
    """`count` events at one-minute steps from T0, committed `per_commit` at a time."""
    events = []
    for n in range(count):
        events.append(
            audit.record(
                session=session,
                action="view_conversation" if n % 2 else "login",
                user_id=None,
                target_type="conversation",
                target_id=100 + n,
                contact_id=n,
                ip="192.0.2.7",
                detail={"n": n, "note": "<script>alert(1)</script>", "ü": ["a", 1]},
                now=T0 + timedelta(minutes=n),
            )
        )
        if (n + 1) % per_commit == 0:
            session.commit()
    session.commit()
    return [e.id for e in events if e.id is not None]


def verify(runner: FlaskCliRunner) -> tuple[int, str]:
    result = runner.invoke(args=["audit", "verify", "--batch-size", "3"])
    return result.exit_code, result.output


def test_every_event_is_sealed_and_the_chain_verifies(
    runner: FlaskCliRunner, session: Session
) -> None:
    write_events(session, 4)
    write_events(session, 6, per_commit=3)  # several events in one flush

    rows = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    assert all(row.hash and len(row.hash) == 64 for row in rows)
    assert len({row.hash for row in rows}) == 10
    code, output = verify(runner)
    assert code == 0, output
    assert "audit trail intact: 10 events" in output
    assert f"last hash: {rows[-1].hash}" in output


def test_an_empty_trail_verifies(runner: FlaskCliRunner) -> None:
    code, output = verify(runner)
    assert code == 0
    assert "audit trail intact: 0 events" in output


def test_the_triggers_refuse_changing_or_deleting_an_event(app: Flask, session: Session) -> None:
    engine = databases(app).inbox
    install_triggers(engine)
    (event_id, *_) = write_events(session, 2)

    for statement in (
        "UPDATE auditevent SET action = 'nothing' WHERE id = :id",
        "DELETE FROM auditevent WHERE id = :id",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(sql(statement), {"id": event_id})
    # Appending still works with the triggers in place.
    write_events(session, 1)
    assert len(session.exec(select(AuditEvent)).all()) == 3


@pytest.fixture
def tampered(app: Flask, session: Session) -> tuple[Engine, list[int]]:
    """Ten sealed events, with the triggers installed and then dropped by an attacker."""
    engine = databases(app).inbox
    install_triggers(engine)
    ids = write_events(session, 10)
    drop_triggers(engine)
    return engine, ids


def test_a_changed_field_is_named(
    runner: FlaskCliRunner, tampered: tuple[Engine, list[int]]
) -> None:
    engine, ids = tampered
    with engine.begin() as connection:
        connection.execute(
            sql("UPDATE auditevent SET ip = '10.0.0.1' WHERE id = :id"), {"id": ids[5]}
        )

    code, output = verify(runner)

    assert code == 1
    assert (
        f"event #{ids[5]} (2026-11-23 10:05 UTC, view_conversation): hash does not match "
        "— changed, or an event before it was removed"
    ) in output


def test_a_changed_detail_is_named(
    runner: FlaskCliRunner, session: Session, tampered: tuple[Engine, list[int]]
) -> None:
    _engine, ids = tampered
    # Through the ORM this time, as a careless admin script would.
    event = session.get(AuditEvent, ids[2])
    assert event is not None
    event.detail = {**event.detail, "n": 99}
    session.add(event)
    session.commit()

    code, output = verify(runner)

    assert code == 1
    assert f"event #{ids[2]} (2026-11-23 10:02 UTC, login)" in output


def test_a_removed_event_is_named_by_the_next_one(
    runner: FlaskCliRunner, tampered: tuple[Engine, list[int]]
) -> None:
    engine, ids = tampered
    with engine.begin() as connection:
        connection.execute(sql("DELETE FROM auditevent WHERE id = :id"), {"id": ids[3]})

    code, output = verify(runner)

    assert code == 1
    assert f"event #{ids[4]} (2026-11-23 10:04 UTC, login): hash does not match" in output


def test_reordered_events_are_named(
    runner: FlaskCliRunner, tampered: tuple[Engine, list[int]]
) -> None:
    engine, ids = tampered
    with engine.begin() as connection:
        for old, new in ((ids[6], -1), (ids[7], ids[6]), (-1, ids[7])):
            connection.execute(
                sql("UPDATE auditevent SET id = :new WHERE id = :old"), {"old": old, "new": new}
            )

    code, output = verify(runner)

    assert code == 1
    # The event now at #ids[6] is the one written at 10:07.
    assert f"event #{ids[6]} (2026-11-23 10:07 UTC, view_conversation)" in output


def test_a_removed_last_event_still_verifies_but_the_last_hash_changes(
    runner: FlaskCliRunner, tampered: tuple[Engine, list[int]]
) -> None:
    """A chain cannot show that its end was cut off; the printed last hash can, when someone
    noted it down before."""
    engine, ids = tampered
    _code, before = verify(runner)
    with engine.begin() as connection:
        connection.execute(sql("DELETE FROM auditevent WHERE id = :id"), {"id": ids[-1]})

    code, after = verify(runner)

    assert code == 0
    assert "intact: 9 events" in after
    assert after.splitlines()[-1] != before.splitlines()[-1]


def test_events_from_before_the_chain_are_allowed_only_first(
    app: Flask, runner: FlaskCliRunner, session: Session
) -> None:
    engine = databases(app).inbox
    legacy = {"action": "login", "at": T0, "detail": {}}
    with engine.begin() as connection:  # as migration 0009 found them: no hash
        connection.execute(insert(AuditEvent), [legacy, legacy])
    ids = write_events(session, 3)

    code, output = verify(runner)
    assert code == 0, output
    assert "audit trail intact: 5 events" in output
    assert "2 of them from before the chain began" in output

    with engine.begin() as connection:  # an unhashed event after sealed ones
        connection.execute(insert(AuditEvent), [legacy])
    code, output = verify(runner)
    assert code == 1
    assert f"event #{ids[-1] + 1} (2026-11-23 10:00 UTC, login): has no hash" in output


def test_a_writer_waits_for_the_one_before_it_and_chains_to_its_event(
    app: Flask, runner: FlaskCliRunner, session: Session
) -> None:
    """Two transactions append at once: the second must see the first's hash, not the one
    that was last when it started."""
    write_events(session, 1)
    audit.record(session=session, action="first", user_id=None)
    session.flush()  # the first transaction now holds the chain

    def second() -> None:
        with Session(databases(app).inbox) as other:
            audit.record(session=other, action="second", user_id=None)
            other.commit()

    writer = threading.Thread(target=second)
    writer.start()
    writer.join(timeout=0.5)
    assert writer.is_alive(), "the second writer must wait for the first to commit"
    session.commit()
    writer.join(timeout=10)
    assert not writer.is_alive()

    actions = session.exec(select(AuditEvent.action).order_by(col(AuditEvent.id))).all()
    assert actions == ["login", "first", "second"]
    code, output = verify(runner)
    assert code == 0, output


@pytest.mark.postgres_only
def test_concurrent_writers_keep_one_linear_chain(app: Flask, runner: FlaskCliRunner) -> None:
    engine = databases(app).inbox
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            for round_ in range(15):
                with Session(engine) as session:
                    for n in range(1 + round_ % 3):
                        audit.record(
                            session=session,
                            action="view_conversation",
                            user_id=None,
                            detail={"writer": number, "round": round_, "n": n},
                        )
                        session.flush()
                    session.commit()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors

    code, output = verify(runner)
    assert code == 0, output
    assert f"audit trail intact: {6 * (5 * (1 + 2 + 3))} events" in output


# The viewer ----------------------------------------------------------------------------------


def viewer(client: FlaskClient, session: Session, role: Role = Role.dpo, **kwargs: Any) -> User:
    """Log a user of this role in on `client`."""
    user = make_user(session, role=role, **kwargs)
    assert login(client, user.email).status_code == 302
    return user


def shown_ids(body: str) -> list[int]:
    """The event ids in the viewer's table, top to bottom."""
    return [int(n) for n in re.findall(r"<tr>\s*<td>(\d+)</td>", body)]


def page(client: FlaskClient, **params: str) -> str:
    response = client.get("/audit", query_string=params)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.admin, True), (Role.dpo, True), (Role.agent, False), (Role.marketing, False)],
)
def test_only_admins_and_the_dpo_read_the_trail(
    client: FlaskClient, session: Session, role: Role, allowed: bool
) -> None:
    audit.record(session=session, action="login", user_id=None, ip="192.0.2.99")
    session.commit()
    viewer(client, session, role)
    for path in ("/audit", "/audit/export.csv"):
        response = client.get(path)
        assert response.status_code == (200 if allowed else 403), path
        assert ("192.0.2.99" in response.get_data(as_text=True)) is allowed, path


def test_the_trail_needs_a_login(client: FlaskClient) -> None:
    for path in ("/audit", "/audit/export.csv"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_filters_by_user_contact_action_and_days_in_berlin(
    client: FlaskClient, session: Session
) -> None:
    viewer(client, session)
    agent = make_user(session, role=Role.agent, name="Aino Agent")

    def add(action: str, at: datetime, user_id: int | None = None, **fields: Any) -> int:
        event = audit.record(session=session, action=action, user_id=user_id, now=at, **fields)
        session.commit()
        assert event.id is not None
        return event.id

    early = add("reply", datetime(2026, 11, 10, 22, 30, tzinfo=UTC), user_id=agent.id)
    late = add("view_conversation", datetime(2026, 11, 10, 23, 30, tzinfo=UTC), user_id=agent.id)
    other = add("view_conversation", datetime(2026, 11, 11, 9, 0, tzinfo=UTC), contact_id=77)
    add("tag_add", datetime(2026, 11, 12, 9, 0, tzinfo=UTC), contact_id=78)

    assert shown_ids(page(client, user=str(agent.id))) == [late, early]
    assert shown_ids(page(client, contact="77")) == [other]
    assert shown_ids(page(client, action="view_conversation")) == [other, late]
    # 23:30 UTC is half past midnight on the 11th in Berlin; 22:30 UTC is still the 10th.
    on_11th = page(client, **{"from": "2026-11-11", "to": "2026-11-11"})
    assert shown_ids(on_11th) == [other, late]
    assert shown_ids(page(client, to="2026-11-10", user=str(agent.id))) == [early]
    combined = page(client, user=str(agent.id), action="reply", **{"from": "2026-11-10"})
    assert shown_ids(combined) == [early]
    # Labels in words, the user's name, the selected filter kept in the form.
    assert "Viewed a conversation" in on_11th and "Aino Agent" in on_11th
    assert f'<option value="{agent.id}" selected>' in page(client, user=str(agent.id))


def test_labels_are_german_for_a_german_reader(client: FlaskClient, session: Session) -> None:
    viewer(client, session, Role.admin)
    audit.record(session=session, action="view_conversation", user_id=None)
    session.commit()
    client.post(
        "/language",
        data={"lang": "de", "next": "/audit", "csrf_token": csrf_token(client, "/audit")},
    )
    body = page(client, action="view_conversation")
    assert "Unterhaltung angesehen" in body
    assert "Prüfprotokoll" in body


def test_malformed_filters_are_refused(client: FlaskClient, session: Session) -> None:
    viewer(client, session)
    for params in (
        {"contact": "x1"},
        {"user": "12345678901"},
        {"from": "23.11.2026"},
        {"action": "<script>"},
        {"before": "-1"},
    ):
        assert client.get("/audit", query_string=params).status_code == 400, params


def test_pages_go_back_in_time_without_gaps_or_repeats(
    client: FlaskClient, session: Session
) -> None:
    viewer(client, session)
    written = write_events(session, 120, per_commit=40)
    viewed_ids = [i for n, i in enumerate(written) if n % 2 == 1]

    seen: list[int] = []
    body = page(client, action="view_conversation")
    while True:
        seen += shown_ids(body)
        older = re.search(r'<a rel="next" href="([^"]+)"', body)
        if older is None:
            break
        body = client.get(html.unescape(older.group(1))).get_data(as_text=True)

    assert seen == sorted(viewed_ids, reverse=True)
    assert len(viewed_ids) == 60  # two pages: 50 and 10


def test_viewing_and_exporting_are_audited(client: FlaskClient, session: Session) -> None:
    dpo = viewer(client, session)

    page(client, contact="42", action="reply")
    client.get("/audit/export.csv", query_string={"user": str(dpo.id)}).get_data()

    session.expire_all()
    viewed = session.exec(select(AuditEvent).where(AuditEvent.action == "view_audit")).one()
    assert viewed.user_id == dpo.id
    assert viewed.contact_id == 42
    assert viewed.detail["action"] == "reply" and viewed.detail["events"] == 0
    exported = session.exec(select(AuditEvent).where(AuditEvent.action == "export_audit")).one()
    assert exported.user_id == dpo.id
    assert exported.detail == {"user_id": dpo.id}


def test_hostile_values_are_escaped_on_the_page_and_defused_in_the_csv(
    client: FlaskClient, session: Session
) -> None:
    viewer(client, session, Role.admin)
    evil = make_user(session, role=Role.agent, name="<script>alert(1)</script>")
    audit.record(
        session=session,
        action="tag_add",
        user_id=evil.id,
        target_type="conversation",
        target_id=9,
        contact_id=5,
        ip="198.51.100.4",
        detail={"tag": '<img src=x onerror="alert(2)">', "formula": "=HYPERLINK(1)"},
    )
    session.commit()

    body = page(client, action="tag_add")
    assert "<script>alert(1)" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=" in body
    assert "198.51.100.4" in body and "Conversation #9" in body

    response = client.get("/audit/export.csv", query_string={"action": "tag_add"})
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    header, row = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert header[:5] == ["id", "time_utc", "user_id", "user", "action"]
    record = dict(zip(header, row, strict=True))
    assert record["user"] == "<script>alert(1)</script>"
    assert record["contact_id"] == "5" and record["ip"] == "198.51.100.4"
    assert json.loads(record["detail"])["formula"] == "=HYPERLINK(1)"
    # A cell that starts like a formula would run in a spreadsheet: it starts with ' instead.
    sly = make_user(session, role=Role.agent, name='=HYPERLINK("https://evil.example")')
    audit.record(session=session, action="login", user_id=sly.id)
    session.commit()
    response = client.get("/audit/export.csv", query_string={"user": str(sly.id)})
    (row,) = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert row["user"] == '\'=HYPERLINK("https://evil.example")'


def test_the_export_holds_every_matching_event(client: FlaskClient, session: Session) -> None:
    viewer(client, session)
    write_events(session, 30, per_commit=30)
    response = client.get("/audit/export.csv", query_string={"action": "view_conversation"})
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 15
    assert [int(r["id"]) for r in rows] == sorted((int(r["id"]) for r in rows), reverse=True)
    assert rows[-1]["time_utc"] == "2026-11-23T10:01:00+00:00"


# Whose data: every conversation event names the contact ----------------------------------------


def test_conversation_events_name_the_contact(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    agent = make_user(session, role=Role.agent)
    make_member(session, agent, account)
    message = ingest(session=session, account=account, item=make_item()).message
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation is not None
    assert login(client, agent.email).status_code == 302
    url = f"/conversations/{conversation.id}"

    assert client.get(url).status_code == 200
    post_form(client, url, f"{url}/status", {"status": "closed"})
    post_form(client, url, f"{url}/reply", {"text": "Wir kümmern uns darum."})

    session.expire_all()
    events = session.exec(select(AuditEvent).where(AuditEvent.target_type == "conversation")).all()
    actions = {event.action for event in events}
    assert {"view_conversation", "status_closed", "reply"} <= actions
    assert {event.contact_id for event in events} == {conversation.contact_id}


def test_events_about_a_conversation_or_contact_name_the_person_unasked(
    session: Session, fernet: MultiFernet
) -> None:
    """Code that forgets contact_id (canned replies, presence, newer views) still says whose
    data it touched: access requests list events by contact."""
    account = make_account(session, fernet)
    message = ingest(session=session, account=account, item=make_item()).message
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation is not None

    about_thread = audit.record(
        session=session,
        action="x",
        user_id=None,
        target_type="conversation",
        target_id=conversation.id,
    )
    about_contact = audit.record(
        session=session, action="x", user_id=None, target_type="contact", target_id=31
    )
    about_account = audit.record(
        session=session, action="x", user_id=None, target_type="account", target_id=account.id
    )
    session.commit()

    assert about_thread.contact_id == conversation.contact_id
    assert about_contact.contact_id == 31
    assert about_account.contact_id is None
