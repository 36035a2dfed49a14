"""`socialcare demo`: all on one machine, offline, with generated secrets and seeded users."""

from __future__ import annotations

import json
import os
import secrets as pysecrets
from pathlib import Path
from typing import Any

import click
from apscheduler.schedulers.background import BackgroundScheduler
from cryptography.fernet import Fernet
from flask import Flask
from sqlmodel import Session, select
from werkzeug.serving import run_simple

from inbox import create_app, migrate
from inbox.accounts import connect_account
from inbox.config import multi_fernet
from inbox.db import databases
from inbox.models import Account, Role, User
from inbox.types import utcnow
from inbox.users import create_user, generate_password
from inbox.worker import configure, context_from_app
from inbox.workflow_models import AccountMember, CannedReply

DEMO_USERS = (
    (Role.admin, "admin@example.com", "Alex Admin"),
    (Role.agent, "agent@example.com", "Jana Schneider"),
    (Role.marketing, "marketing@example.com", "Mia Marketing"),
    (Role.dpo, "dpo@example.com", "Dana Datenschutz"),
)
DEMO_POLL_SECONDS = 3


def demo_config(instance: Path) -> dict[str, Any]:
    """Configuration of a demo instance, with secrets generated once into the instance folder."""
    instance.mkdir(parents=True, exist_ok=True)
    secrets_file = instance / "demo-secrets.json"
    if not secrets_file.exists():
        generated = {
            "SECRET_KEY": pysecrets.token_urlsafe(48),
            "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        }
        # Created owner-only before anything is written into it.
        fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(generated, handle)
    stored = json.loads(secrets_file.read_text())
    return {
        "INSTANCE_PATH": str(instance.resolve()),
        "DEMO": True,
        "SECRET_KEY": stored["SECRET_KEY"],
        "ENCRYPTION_KEYS": stored["ENCRYPTION_KEYS"],
        "WORKER_DRAIN_SECONDS": 3,
        "WORKER_ACCOUNT_SYNC_SECONDS": 10,
        # Someone watches the demo in a terminal: readable lines, unless asked for JSON.
        "LOG_FORMAT": os.environ.get("SOCIALCARE_LOG_FORMAT", "text"),
    }


def prepare(app: Flask, *, rate: float, seed: int) -> list[tuple[Role, str, str]]:
    """Migrate, seed users and connect the demo account; return the users created now."""
    dbs = databases(app)
    migrate.upgrade(dbs.inbox, "inbox")
    migrate.upgrade(dbs.research, "research")
    created = []
    with Session(dbs.inbox) as session:
        for role, email, name in DEMO_USERS:
            if session.exec(select(User).where(User.email == email)).first() is None:
                password = generate_password()
                create_user(session=session, email=email, name=name, role=role, password=password)
                created.append((role, email, password))
        if session.exec(select(Account).where(Account.platform == "demo")).first() is None:
            account = connect_account(
                session=session,
                fernet=multi_fernet(app.config["ENCRYPTION_KEYS"]),
                platform="demo",
                credentials={"token": pysecrets.token_urlsafe(16)},
                settings={"seed": seed, "rate": rate, "start": utcnow().isoformat()},
                poll_interval_seconds=DEMO_POLL_SECONDS,
            )
            _seed_workflow(session, account)
    return created


# What a care team sets up on day one, so the demo shows signatures and canned replies.
DEMO_CANNED = (
    (
        "de",
        "Paket verspätet",
        "Hallo {first_name}, das tut uns leid! Bitte schicken Sie uns Ihre Bestellnummer per "
        "Direktnachricht, dann sehen wir sofort nach. {agent_signature}",
    ),
    (
        "en",
        "Parcel late",
        "Hi {first_name}, sorry about that! Please send us your order number by direct "
        "message and we will look into it right away. {agent_signature}",
    ),
)


def _seed_workflow(session: Session, account: Account) -> None:
    agent = session.exec(select(User).where(User.role == Role.agent)).first()
    assert account.id is not None
    if agent is not None and agent.id is not None:
        initials = "".join(part[0] for part in agent.name.split()[:2]).upper()
        session.add(
            AccountMember(account_id=account.id, user_id=agent.id, signature=f"^{initials}")
        )
    for language, title, text in DEMO_CANNED:
        session.add(CannedReply(account_id=account.id, language=language, title=title, text=text))
    session.commit()


def run_demo(*, instance: Path, host: str, port: int, rate: float, seed: int) -> None:
    """Prepare the instance, start the worker in a thread and serve the web app."""
    app = create_app(demo_config(instance))
    created = prepare(app, rate=rate, seed=seed)
    if created:
        click.echo("Demo users (passwords are shown only now):")
        for role, email, password in created:
            click.echo(f"  {role.value:<10} {email:<24} {password}")
    else:
        click.echo(f"Demo users exist already in {instance}; delete the folder to start afresh.")
    scheduler = configure(BackgroundScheduler(timezone="UTC"), context_from_app(app))
    scheduler.start()
    click.echo(f"Open http://{host}:{port}/ and log in.", err=False)
    try:
        # Werkzeug's server directly: Flask's app.run() refuses to start under the CLI.
        run_simple(host, port, app, use_reloader=False, threaded=True)
    finally:
        scheduler.shutdown(wait=False)
