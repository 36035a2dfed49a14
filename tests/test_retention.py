"""Retention: closed conversations, raw payloads, dead letters and pseudonym keys expire per
account policy; the preview says what a run will delete and the run deletes exactly that."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text
from sqlmodel import Session, func, select

from inbox.db import databases
from inbox.models import (
    Account,
    AuditEvent,
    Contact,
    Conversation,
    ConversationStatus,
    DeadLetter,
    Direction,
    Message,
    PseudonymKey,
    ResearchOutbox,
    Role,
)
from inbox.privacy_models import ConsentRecord
from inbox.retention import apply, plan
from inbox.retention_policy import _LOCK_KEY, due, next_run, previous_run, run_daily
from inbox.worker import apply_retention, configure, context_from_app
from inbox.workflow_models import ConversationTag, Note, Presence
from tests.conftest import login, login_admin, make_account, make_user, post_form

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


def _contact(session: Session, name: str = "Jo Doe") -> Contact:
    contact = Contact(platform="demo", platform_user_id=f"u-{next(_ids)}", display_name=name)
    session.add(contact)
    session.commit()
    session.expunge(contact)  # a detached copy: its id stays readable after it is deleted
    return contact


def _conversation(
    session: Session,
    account: Account,
    contact: Contact,
    *,
    closed_days: float | None = None,
    messages: int = 2,
    received_days: float = 200,
    authors: list[Contact] | None = None,
) -> Conversation:
    """A conversation with `messages` inbound messages, closed `closed_days` ago if given."""
    assert account.id is not None and contact.id is not None
    opened = NOW - timedelta(days=received_days)
    conversation = Conversation(
        account_id=account.id,
        contact_id=contact.id,
        kind="comment",
        thread_key=f"t-{next(_ids)}",
        opened_at=opened,
        last_message_at=opened,
        status=ConversationStatus.open if closed_days is None else ConversationStatus.closed,
        closed_at=None if closed_days is None else NOW - timedelta(days=closed_days),
    )
    session.add(conversation)
    session.flush()
    assert conversation.id is not None
    for n, author in zip(range(messages), itertools.cycle(authors or [contact]), strict=False):
        message = Message(
            conversation_id=conversation.id,
            account_id=account.id,
            external_id=f"m-{next(_ids)}",
            direction=Direction.inbound,
            text=f"Nachricht {n}",
            author_contact_id=author.id,
            created_at=opened,
            received_at=opened,
            raw={"payload": "personal"},
        )
        session.add(message)
        session.flush()
        session.add(ResearchOutbox(message_id=message.id))
    session.commit()
    session.expunge(conversation)
    return conversation


def _second_account(session: Session, **policy: int) -> Account:
    account = Account(
        platform="demo",
        display_name="Zweitmarkt",
        platform_account_id=f"demo-{next(_ids)}",
        credentials_encrypted=b"unused",
        **policy,
    )
    session.add(account)
    session.commit()
    return account


def _count(session: Session, table: type) -> int:
    return session.exec(select(func.count()).select_from(table)).one()


def test_a_closed_conversation_past_the_limit_goes_with_everything_hanging_off_it(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    agent = make_user(session, role=Role.agent)
    jo = _contact(session)
    old = _conversation(session, account, jo, closed_days=91)
    recent = _conversation(session, account, jo, closed_days=89)
    still_open = _conversation(session, account, jo, received_days=2000)
    assert old.id is not None and agent.id is not None
    session.add(Note(conversation_id=old.id, author_user_id=agent.id, text="Kunde ruft an"))
    session.add(ConversationTag(conversation_id=old.id, tag="billing"))
    session.add(Presence(conversation_id=old.id, user_id=agent.id, seen_at=NOW))
    session.commit()

    preview = plan(session=session, now=NOW)
    row = preview.accounts[0]
    assert (row.conversations, row.messages, row.notes) == (1, 2, 1)

    report = apply(session=session, now=NOW)
    assert (report.accounts[0].conversations, report.accounts[0].messages) == (1, 2)
    session.expire_all()
    assert session.get(Conversation, old.id) is None
    assert session.get(Conversation, recent.id) is not None
    assert session.get(Conversation, still_open.id) is not None
    assert session.exec(select(Message).where(Message.conversation_id == old.id)).all() == []
    assert _count(session, Note) == _count(session, ConversationTag) == 0
    assert _count(session, Presence) == 0
    assert _count(session, ResearchOutbox) == 4  # the two kept conversations' messages
    assert session.get(Contact, jo.id) is not None  # still in the kept conversations

    again = apply(session=session, now=NOW)
    assert again.accounts[0].conversations == again.accounts[0].messages == 0


def test_each_account_keeps_conversations_as_long_as_its_own_policy_says(
    session: Session, fernet: MultiFernet
) -> None:
    strict = _second_account(session, retention_days=30)
    lenient = make_account(session, fernet)  # 90 days
    jo = _contact(session)
    kept = _conversation(session, lenient, jo, closed_days=40)
    gone = _conversation(session, strict, jo, closed_days=40)
    report = apply(session=session, now=NOW)
    by_account = {row.account_id: row.conversations for row in report.accounts}
    assert by_account == {strict.id: 1, lenient.id: 0}
    session.expire_all()
    assert session.get(Conversation, kept.id) is not None
    assert session.get(Conversation, gone.id) is None


def test_raw_payloads_are_emptied_after_seven_days_and_the_messages_stay(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    jo = _contact(session)
    old = _conversation(session, account, jo, messages=5, received_days=8)
    new = _conversation(session, account, jo, messages=1, received_days=6)
    assert plan(session=session, now=NOW).accounts[0].raw_payloads == 5

    # A batch of two with five rows of one arrival time: ties are emptied together.
    report = apply(session=session, now=NOW, raw_batch=2)
    assert report.accounts[0].raw_payloads == 5
    session.expire_all()
    raws = {m.conversation_id: m.raw for m in session.exec(select(Message)).all()}
    assert raws == {old.id: {}, new.id: {"payload": "personal"}}
    assert _count(session, Message) == 6
    assert session.get(Account, account.id).raw_purged_before == NOW - timedelta(days=7)

    # The watermark: the same day again finds nothing, the next day only what came due since.
    assert plan(session=session, now=NOW).accounts[0].raw_payloads == 0
    assert apply(session=session, now=NOW).accounts[0].raw_payloads == 0
    later = NOW + timedelta(days=1, hours=1)
    assert plan(session=session, now=later).accounts[0].raw_payloads == 1
    assert apply(session=session, now=later).accounts[0].raw_payloads == 1
    session.expire_all()
    assert all(m.raw == {} for m in session.exec(select(Message)).all())


def _keys(session: Session, *months: str) -> None:
    for month in months:
        session.add(PseudonymKey(month=month, key_encrypted=b"secret"))
    session.commit()


def _destroyed(session: Session) -> list[str]:
    session.expire_all()
    rows = session.exec(select(PseudonymKey).where(PseudonymKey.key_encrypted == None)).all()  # noqa: E711
    return sorted(row.month for row in rows)


def test_a_months_pseudonym_key_is_destroyed_thirty_days_after_the_month_ends(
    session: Session, fernet: MultiFernet
) -> None:
    make_account(session, fernet)
    _keys(session, "2026-10", "2026-11")
    day_before = datetime(2026, 11, 30, 23, tzinfo=UTC)
    assert plan(session=session, now=day_before).key_months == []
    assert apply(session=session, now=day_before).key_months == []
    due_at = datetime(2026, 12, 1, tzinfo=UTC)
    assert plan(session=session, now=due_at).key_months == ["2026-10"]
    assert apply(session=session, now=due_at).key_months == ["2026-10"]
    assert _destroyed(session) == ["2026-10"]
    assert apply(session=session, now=due_at).key_months == []


def test_the_strictest_account_decides_when_the_shared_keys_go(
    session: Session, fernet: MultiFernet
) -> None:
    make_account(session, fernet)  # 30 days
    _second_account(session, pseudonym_key_days=10)
    _keys(session, "2026-10")
    assert apply(session=session, now=datetime(2026, 11, 10, 23, tzinfo=UTC)).key_months == []
    report = apply(session=session, now=datetime(2026, 11, 11, tzinfo=UTC))
    assert (report.key_days, report.key_months) == (10, ["2026-10"])


def test_without_accounts_the_configured_key_retention_applies(session: Session) -> None:
    _keys(session, "2026-10")
    assert plan(session=session, now=NOW, default_key_days=30).key_months == []
    assert plan(session=session, now=NOW, default_key_days=20).key_months == ["2026-10"]


def test_contacts_left_with_nothing_go_and_the_others_stay(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    orphan, busy, consented, commenter = (_contact(session, n) for n in "ABCD")
    _conversation(session, account, orphan, closed_days=100)
    _conversation(session, account, busy, closed_days=100)
    _conversation(session, account, busy)  # another, open conversation
    _conversation(session, account, consented, closed_days=100)
    session.add(
        ConsentRecord(
            contact_id=consented.id,
            channel="dm",
            purpose="marketing",
            given_at=NOW - timedelta(days=300),
            source="web form",
        )
    )
    session.commit()
    # A commenter who wrote only in an expired thread of someone else's.
    _conversation(session, account, orphan, closed_days=100, authors=[orphan, commenter])

    assert plan(session=session, now=NOW).contacts == 2
    assert apply(session=session, now=NOW).contacts == 2
    session.expire_all()
    assert session.get(Contact, orphan.id) is None
    assert session.get(Contact, commenter.id) is None
    assert session.get(Contact, busy.id) is not None
    assert session.get(Contact, consented.id) is not None
    assert _count(session, ConsentRecord) == 1


def test_dead_letters_go_after_the_raw_days_once_resolved_and_after_the_limit_otherwise(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)

    def letter(days: int, *, resolved: bool, account_id: int | None = account.id) -> DeadLetter:
        row = DeadLetter(
            account_id=account_id,
            platform="demo",
            source="poll",
            error="bad",
            raw='{"name": "Jo"}',
            received_at=NOW - timedelta(days=days),
            resolved_at=NOW - timedelta(days=days) if resolved else None,
        )
        session.add(row)
        session.commit()
        session.expunge(row)
        return row

    resolved_old, open_week, open_ancient, orphan = (
        letter(8, resolved=True),
        letter(8, resolved=False),
        letter(91, resolved=False),
        letter(8, resolved=True, account_id=None),
    )
    resolved_new = letter(6, resolved=True)
    preview = plan(session=session, now=NOW)
    assert (preview.accounts[0].dead_letters, preview.unassigned_dead_letters) == (2, 1)
    apply(session=session, now=NOW)
    session.expire_all()
    left = {row.id for row in session.exec(select(DeadLetter)).all()}
    assert left == {open_week.id, resolved_new.id}
    assert not {resolved_old.id, open_ancient.id, orphan.id} & left


def test_the_preview_counts_what_the_run_then_deletes_and_the_run_is_audited(
    session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    other = _second_account(session, retention_days=10, raw_retention_days=3)
    people = [_contact(session, f"P{n}") for n in range(4)]
    for n, person in enumerate(people):
        _conversation(session, account, person, closed_days=95 - n * 3, received_days=120)
        _conversation(session, other, person, closed_days=n * 5, received_days=5 + n)
    _keys(session, "2026-09", "2026-10")
    preview = plan(session=session, now=NOW)
    report = apply(session=session, now=NOW)
    assert report.detail() == preview.detail()
    assert sum(row.conversations for row in report.accounts) > 0
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "retention_applied")).one()
    assert event.user_id is None
    assert event.detail["via"] == "worker"
    assert event.detail["accounts"][0] == {
        "account_id": account.id,
        "conversations": report.accounts[0].conversations,
        "messages": report.accounts[0].messages,
        "notes": 0,
        "raw_payloads": report.accounts[0].raw_payloads,
        "dead_letters": 0,
    }
    assert "P0" not in str(event.detail)
    after = plan(session=session, now=NOW)
    assert all(row.empty for row in after.accounts) and after.contacts == 0
    assert after.key_months == []


# The schedule ----------------------------------------------------------------------------------


def test_the_worker_schedules_retention_daily_at_three_in_the_teams_zone(app: Flask) -> None:
    scheduler = configure(BackgroundScheduler(timezone="UTC"), context_from_app(app))
    job = scheduler.get_job("retention")
    assert isinstance(job.trigger, CronTrigger)
    assert str(job.trigger.timezone) == "Europe/Berlin"
    assert job.coalesce and job.misfire_grace_time >= 3600
    assert job.next_run_time is not None  # once right away: it runs then only if it is due
    assert scheduler.get_job("keys") is None  # keys go through retention, by one rule
    winter = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)  # 03:30 in Berlin
    fire = job.trigger.get_next_fire_time(None, winter)
    assert fire.astimezone(ZoneInfo("Europe/Berlin")).hour == 3
    assert fire == next_run(now=winter, timezone="Europe/Berlin")


def test_a_run_is_due_once_per_scheduled_time_also_after_the_worker_was_down(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    make_account(session, fernet)
    engine = databases(app).inbox
    zone = "Europe/Berlin"
    monday_4am = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 04:00 in Berlin
    assert previous_run(now=monday_4am, timezone=zone) == datetime(2026, 11, 23, 2, tzinfo=UTC)
    assert due(session=session, now=monday_4am, timezone=zone)  # never ran
    assert run_daily(engine=engine, now=monday_4am, timezone=zone, default_key_days=30)
    later = monday_4am + timedelta(hours=10)  # a restart the same day: nothing to do
    assert run_daily(engine=engine, now=later, timezone=zone, default_key_days=30) is None
    tuesday = datetime(2026, 11, 24, 2, 0, 1, tzinfo=UTC)  # 03:00:01 in Berlin
    assert run_daily(engine=engine, now=tuesday, timezone=zone, default_key_days=30)
    forced = run_daily(
        engine=engine, now=tuesday, timezone=zone, default_key_days=30, force=True, via="cli"
    )
    assert forced is not None
    session.expire_all()
    runs = session.exec(select(AuditEvent).where(AuditEvent.action == "retention_applied")).all()
    assert [e.detail["via"] for e in runs] == ["worker", "worker", "cli"]


def test_the_worker_job_applies_retention_with_the_apps_settings(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    conversation = _conversation(session, account, _contact(session), closed_days=1000)
    report = apply_retention(context_from_app(app))
    assert report is not None and report.accounts[0].conversations == 1
    session.expire_all()
    assert session.get(Conversation, conversation.id) is None
    assert apply_retention(context_from_app(app)) is None  # done for today


# The admin page and the CLI --------------------------------------------------------------------


def test_admins_edit_the_policy_and_see_the_preview(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    account.display_name = "<script>alert(1)</script>"
    session.add(account)
    session.commit()
    _conversation(session, account, _contact(session), closed_days=50, messages=3)
    login_admin(client, session)
    page = client.get("/admin/retention").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert 'name="retention_days"' in page and 'value="90"' in page
    assert "Next run:" in page and "No run yet." in page

    form = {"retention_days": "30", "raw_retention_days": "7", "pseudonym_key_days": "14"}
    action = f"/admin/retention/{account.id}"
    response = post_form(client, "/admin/retention", action, form)
    assert response.status_code == 302
    session.expire_all()
    saved = session.get(Account, account.id)
    assert (saved.retention_days, saved.pseudonym_key_days) == (30, 14)
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "retention_changed")).one()
    assert event.target_id == account.id and event.user_id is not None
    assert event.detail["changes"] == {
        "retention_days": {"old": 90, "new": 30},
        "pseudonym_key_days": {"old": 30, "new": 14},
    }
    page = client.get("/admin/retention").get_data(as_text=True)
    assert "Retention policy of &lt;script&gt;" in page
    # The preview now counts the conversation closed 50 days ago, with its three messages.
    assert "<td>1</td>\n      <td>3</td>" in page


def test_invalid_figures_are_refused_and_change_nothing(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    login_admin(client, session)
    action = f"/admin/retention/{account.id}"
    for bad in ("0", "3651", "abc", ""):
        form = {"retention_days": bad, "raw_retention_days": "7", "pseudonym_key_days": "30"}
        response = post_form(client, "/admin/retention", action, form)
        assert response.status_code == 422
        assert "whole number of days from 1 to 3650" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Account, account.id).retention_days == 90
    assert (
        session.exec(select(AuditEvent).where(AuditEvent.action == "retention_changed")).all() == []
    )
    form = {"retention_days": "5", "raw_retention_days": "7", "pseudonym_key_days": "30"}
    page = post_form(client, "/admin/retention", action, form)
    assert "Raw payloads are kept longer" in client.get("/admin/retention").get_data(as_text=True)
    assert page.status_code == 302


def test_agents_and_marketing_may_not_see_or_change_retention(
    client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    for role in (Role.agent, Role.marketing):
        client.post("/logout")
        login(client, make_user(session, role=role).email)
        assert client.get("/admin/retention").status_code == 403
        response = client.post(f"/admin/retention/{account.id}", data={"retention_days": "1"})
        assert response.status_code in (400, 403)
    session.expire_all()
    assert session.get(Account, account.id).retention_days == 90


def test_the_cli_previews_and_applies(
    runner: FlaskCliRunner, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    conversation = _conversation(session, account, _contact(session), closed_days=1000)
    preview = runner.invoke(args=["retention", "preview"])
    assert preview.exit_code == 0, preview.output
    assert "will delete 1 closed conversation(s) with 2 message(s)" in preview.output
    session.expire_all()
    assert session.get(Conversation, conversation.id) is not None
    result = runner.invoke(args=["retention", "apply"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 closed conversation(s)" in result.output
    session.expire_all()
    assert session.get(Conversation, conversation.id) is None
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "retention_applied")).one()
    assert event.detail["via"] == "cli"


@pytest.mark.postgres_only
def test_only_one_worker_applies_retention_at_a_time(app: Flask) -> None:
    engine = databases(app).inbox
    with engine.connect() as other_worker:
        other_worker.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
        skipped = run_daily(engine=engine, now=NOW, timezone="UTC", default_key_days=30)
        other_worker.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
        other_worker.commit()
    assert skipped is None
    assert run_daily(engine=engine, now=NOW, timezone="UTC", default_key_days=30) is not None
