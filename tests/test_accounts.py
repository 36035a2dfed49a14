"""Connecting official accounts from the CLI and seeing what the worker does with them."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskCliRunner
from sqlmodel import Session, select

from inbox.models import Account, AccountStatus, AuditEvent
from inbox.types import utcnow


def _account(session: Session) -> Account:
    session.expire_all()
    return session.exec(select(Account)).one()


def test_connecting_encrypts_credentials_read_from_stdin_and_audits_it(
    runner: FlaskCliRunner, session: Session
) -> None:
    result = runner.invoke(
        args=["account", "connect", "demo", "--credentials-json", "-", "--sla-minutes", "15"],
        input='{"token": "s3cr3t-demo-token"}',
    )
    assert result.exit_code == 0, result.output
    assert "Connected demo account Quendelmarkt" in result.output
    assert "s3cr3t" not in result.output
    account = _account(session)
    assert account.sla_minutes == 15
    assert b"s3cr3t-demo-token" not in account.credentials_encrypted
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "account_connected")).one()
    assert event.target_id == account.id


def test_missing_credentials_are_refused(runner: FlaskCliRunner, session: Session) -> None:
    result = runner.invoke(
        args=[
            "account",
            "connect",
            "facebook",
            "--setting",
            "page_id=1",
            "--credentials-json",
            "-",
        ],
        input="{}",
    )
    assert result.exit_code != 0
    assert "Missing credentials: page_access_token" in result.output
    assert session.exec(select(Account)).first() is None


def test_bad_settings_are_refused_with_the_reason(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["account", "connect", "demo", "--setting", "rate", "--credentials-json", "-"],
        input="{}",
    )
    assert result.exit_code != 0 and "expected KEY=VALUE" in result.output


def test_list_pause_and_resume_show_what_the_worker_does(
    runner: FlaskCliRunner, session: Session
) -> None:
    runner.invoke(args=["account", "connect", "demo", "--credentials-json", "-"], input="{}")
    account = _account(session)
    assert (
        "active, polled every 60 s, last poll never"
        in runner.invoke(args=["account", "list"]).output
    )

    account.rate_limited_until = utcnow() + timedelta(minutes=10)
    account.last_error = "429 Too Many Requests"
    session.add(account)
    session.commit()
    listing = runner.invoke(args=["account", "list"]).output
    assert "rate-limited until" in listing and "last error: 429 Too Many Requests" in listing

    assert runner.invoke(args=["account", "pause", str(account.id)]).exit_code == 0
    assert _account(session).status == AccountStatus.paused
    assert "paused" in runner.invoke(args=["account", "list"]).output

    assert runner.invoke(args=["account", "resume", str(account.id)]).exit_code == 0
    resumed = _account(session)
    assert resumed.status == AccountStatus.active
    assert resumed.rate_limited_until is None
    assert runner.invoke(args=["account", "pause", "999"]).exit_code != 0


def test_research_policy_and_topics_are_set_and_checked(
    runner: FlaskCliRunner, session: Session
) -> None:
    runner.invoke(args=["account", "connect", "demo", "--credentials-json", "-"], input="{}")
    account_id = str(_account(session).id)
    result = runner.invoke(
        args=["account", "research", account_id, "--no-dms", "--topics", "-"],
        input='{"lieferung": "Paket OR Lieferung*", "lob": "danke"}',
    )
    assert result.exit_code == 0, result.output
    assert "DMs do not go to research" in result.output
    account = _account(session)
    assert account.research_dms is False
    assert account.settings["topics"] == {"lieferung": "Paket OR Lieferung*", "lob": "danke"}

    broken = runner.invoke(
        args=["account", "research", account_id, "--topics", "-"], input='{"x": "(Paket AND"}'
    )
    assert broken.exit_code != 0 and "Topics not saved" in broken.output
    assert _account(session).settings["topics"]["lob"] == "danke"  # unchanged
