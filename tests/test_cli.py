"""The socialcare command line."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from flask.testing import FlaskCliRunner
from sqlmodel import Session, col, func, select

from inbox import create_app, migrate
from inbox.cli import main
from inbox.db import databases
from inbox.demo import DEMO_USERS, demo_config, prepare
from inbox.models import Account, AuditEvent, Role, User
from inbox.users import authenticate
from inbox.workflow_models import AccountMember, CannedReply
from tests.conftest import DatabaseUrls, app_config


def test_gen_key_prints_a_usable_fernet_key_and_a_long_secret() -> None:
    fernet_key = CliRunner().invoke(main, ["gen-key", "fernet"]).output.strip()
    Fernet(fernet_key)  # raises if it is not a valid key
    secret = CliRunner().invoke(main, ["gen-key", "secret"]).output.strip()
    assert len(secret) >= 48
    assert secret != CliRunner().invoke(main, ["gen-key", "secret"]).output.strip()


def test_commands_refuse_to_run_without_keys_and_say_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SOCIALCARE_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code != 0
    assert "socialcare gen-key secret" in result.output


def test_db_upgrade_migrates_both_databases(database_urls: DatabaseUrls, tmp_path: Path) -> None:
    app = create_app(app_config(database_urls, tmp_path))
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    dbs = databases(app)
    try:
        assert migrate.pending(dbs.inbox, "inbox") == []
        assert migrate.pending(dbs.research, "research") == []
    finally:
        dbs.inbox.dispose()
        dbs.research.dispose()


def test_user_create_prints_the_password_once_and_it_works(
    runner: FlaskCliRunner, session: Session
) -> None:
    result = runner.invoke(
        args=["user", "create", "--email", "Ada@Example.com", "--name", "Ada", "--role", "agent"]
    )
    assert result.exit_code == 0, result.output
    password = re.search(r"password: (\S+)", result.output)
    assert password
    user = authenticate(session=session, email="ada@example.com", password=password.group(1))
    assert user is not None and user.role == Role.agent
    created = session.exec(select(AuditEvent).where(AuditEvent.action == "user_created")).one()
    assert (created.target_id, created.detail) == (user.id, {"role": "agent", "via": "cli"})
    assert password.group(1) not in str(created.detail)
    again = runner.invoke(
        args=["user", "create", "--email", "ada@example.com", "--name", "Ada", "--role", "agent"]
    )
    assert again.exit_code != 0 and "exists already" in again.output


def test_demo_config_generates_private_secrets_once(tmp_path: Path) -> None:
    first = demo_config(tmp_path / "demo")
    second = demo_config(tmp_path / "demo")
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["ENCRYPTION_KEYS"] == second["ENCRYPTION_KEYS"]
    mode = os.stat(tmp_path / "demo" / "demo-secrets.json").st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert first["DEMO"] is True


def test_demo_preparation_migrates_seeds_users_and_connects_the_demo_account(
    tmp_path: Path,
) -> None:
    app = create_app(demo_config(tmp_path / "demo"))
    created = prepare(app, rate=6, seed=7)
    assert [role for role, _, _ in created] == [role for role, _, _ in DEMO_USERS]
    dbs = databases(app)
    try:
        assert migrate.pending(dbs.inbox, "inbox") == []
        with Session(dbs.inbox) as session:
            for _role, email, password in created:
                assert authenticate(session=session, email=email, password=password)
            account = session.exec(select(Account)).one()
            assert account.platform == "demo"
            # Credentials are stored encrypted, never as the token itself.
            assert b"token" not in account.credentials_encrypted
            # The agent signs replies on the demo account, and canned replies are ready.
            member = session.exec(select(AccountMember)).one()
            assert member.signature == "^JS"
            canned = session.exec(select(CannedReply).order_by(col(CannedReply.language))).all()
            assert [c.language for c in canned] == ["de", "en"]
            assert all("{first_name}" in c.text for c in canned)
        # A second start keeps users and account and prints no passwords.
        assert prepare(app, rate=6, seed=7) == []
        with Session(dbs.inbox) as session:
            assert session.exec(select(func.count()).select_from(User)).one() == len(DEMO_USERS)
            assert session.exec(select(func.count()).select_from(Account)).one() == 1
            assert session.exec(select(func.count()).select_from(CannedReply)).one() == 2
    finally:
        dbs.inbox.dispose()
        dbs.research.dispose()
