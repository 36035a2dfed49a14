"""The configuration report of `socialcare check`: what is fine, doubtful or broken.

Nothing secret is ever part of a finding: keys are counted, passwords in database URLs are
masked, and database errors are named by their type only (their messages can hold hosts and
user names).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, col, select

from inbox import migrate
from inbox.config import (
    MIN_SECRET_LENGTH,
    PLACEHOLDER_SECRETS,
    ConfigError,
    encryption_keys,
    multi_fernet,
)
from inbox.heartbeat import WorkerHeartbeat
from inbox.models import Account, AccountStatus, PseudonymKey, User
from inbox.privacy_models import StoredKey
from inbox.revisions import pending_revisions
from inbox.serve import DEFAULT_FORWARDED_ALLOW_IPS


class Level(StrEnum):
    """How bad a finding is; any problem makes `socialcare check` fail."""

    ok = "ok"
    warning = "warning"
    problem = "problem"


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    level: Level
    subject: str
    text: str

    def line(self) -> str:
        """The finding as printed: level, subject, what was found."""
        return f"{self.level.value:<8} {self.subject}: {self.text}"


def masked_url(url: str) -> str:
    """A database URL with its password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a valid database URL)"


def check_secrets(config: Mapping[str, Any]) -> list[Finding]:
    """The signing secret and the encryption keys: present, not placeholders, usable."""
    findings = []
    secret = str(config.get("SECRET_KEY") or "")
    if secret.lower() in PLACEHOLDER_SECRETS:
        findings.append(Finding(Level.problem, "secret key", "missing or a placeholder"))
    elif len(secret) < MIN_SECRET_LENGTH:
        findings.append(
            Finding(Level.problem, "secret key", f"shorter than {MIN_SECRET_LENGTH} characters")
        )
    else:
        findings.append(Finding(Level.ok, "secret key", "set"))
    try:
        multi_fernet(config.get("ENCRYPTION_KEYS") or "")
    except ConfigError:
        findings.append(
            Finding(Level.problem, "encryption keys", "missing, or not all valid Fernet keys")
        )
    else:
        count = len(encryption_keys(config.get("ENCRYPTION_KEYS") or ""))
        what = "1 encryption key" if count == 1 else f"{count} encryption keys, newest first"
        findings.append(Finding(Level.ok, "encryption keys", what))
    return findings


def check_database(name: str, url: str, engine: Engine, target: migrate.Target) -> list[Finding]:
    """Where a database is, whether it answers, and whether migrations are pending."""
    subject = f"{name} database"
    findings = [Finding(Level.ok, subject, masked_url(url))]
    if url.startswith("sqlite"):
        findings.append(
            Finding(Level.warning, subject, "SQLite: one machine only; use PostgreSQL for more")
        )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        pending = pending_revisions(engine, target)
    except SQLAlchemyError as exc:
        findings.append(Finding(Level.problem, subject, f"unreachable ({type(exc).__name__})"))
        return findings
    findings.append(Finding(Level.ok, subject, "reachable"))
    if pending is None:
        findings.append(
            Finding(
                Level.warning,
                subject,
                "newer than this release: finish upgrading the software on this machine",
            )
        )
    elif pending:
        which = pending[0] if len(pending) == 1 else f"{pending[0]} … {pending[-1]}"
        findings.append(
            Finding(
                Level.problem,
                subject,
                f"{len(pending)} migration(s) pending ({which}): run `socialcare db upgrade`",
            )
        )
    else:
        findings.append(Finding(Level.ok, subject, "migrations at head"))
    return findings


def check_accounts(session: Session, now: datetime) -> list[Finding]:
    """Connected accounts by state, with the count of each."""
    accounts = session.exec(select(Account)).all()
    if not accounts:
        return [Finding(Level.warning, "accounts", "none connected yet")]
    states: Counter[str] = Counter()
    limited_until: list[datetime] = []
    for account in accounts:
        if account.status == AccountStatus.paused:
            states["paused"] += 1
        elif account.status == AccountStatus.needs_reconnection:
            states["needs reconnection"] += 1
        elif account.rate_limited_until and account.rate_limited_until > now:
            states["rate-limited"] += 1
            limited_until.append(account.rate_limited_until)
        elif account.backoff_until and account.backoff_until > now:
            states["backing off"] += 1
        else:
            states["active"] += 1
    findings = []
    for state, count in sorted(states.items()):
        level = Level.ok if state in ("active", "paused") else Level.warning
        what = f"{count} {state}"
        if state == "rate-limited":
            what += f" until {max(limited_until).isoformat(timespec='seconds')} at the latest"
        if state == "needs reconnection":
            what += ": an admin must reconnect them"
        findings.append(Finding(level, "accounts", what))
    return findings


def _stored_secrets(session: Session) -> dict[str, list[bytes]]:
    """Every encrypted blob in the inbox database, by what it is."""
    return {
        "account credentials": list(session.exec(select(Account.credentials_encrypted))),
        "second-factor secrets": [
            blob for blob in session.exec(select(User.totp_secret_encrypted)) if blob is not None
        ],
        "pseudonym keys": [
            blob for blob in session.exec(select(PseudonymKey.key_encrypted)) if blob is not None
        ],
        "instance keys": list(session.exec(select(StoredKey.key_encrypted))),
    }


def check_stored_secrets(session: Session, keys: list[str]) -> list[Finding]:
    """Whether the configured keys open every stored secret, and which need a rotation."""
    newest, every = Fernet(keys[0]), MultiFernet([Fernet(key) for key in keys])
    findings = []
    for kind, blobs in _stored_secrets(session).items():
        if not blobs:
            continue
        older = unreadable = 0
        for blob in blobs:
            try:
                newest.decrypt(blob)
            except InvalidToken:
                try:
                    every.decrypt(blob)
                    older += 1
                except InvalidToken:
                    unreadable += 1
        if unreadable:
            findings.append(
                Finding(
                    Level.problem,
                    "stored secrets",
                    f"{unreadable} of {len(blobs)} {kind} cannot be opened with the configured "
                    "keys: a key is missing from SOCIALCARE_ENCRYPTION_KEYS",
                )
            )
        elif older:
            findings.append(
                Finding(
                    Level.warning,
                    "stored secrets",
                    f"{older} of {len(blobs)} {kind} are under an older key: "
                    "run `socialcare rotate-keys`",
                )
            )
        else:
            findings.append(Finding(Level.ok, "stored secrets", f"all {len(blobs)} {kind} open"))
    return findings


def check_workers(session: Session, now: datetime, max_age_seconds: float) -> list[Finding]:
    """Workers that beat recently, and when the last one did."""
    beats = session.exec(select(col(WorkerHeartbeat.seen_at))).all()
    alive = [seen for seen in beats if now - seen <= timedelta(seconds=max_age_seconds)]
    if alive:
        ago = int((now - max(alive)).total_seconds())
        word = "worker" if len(alive) == 1 else "workers"
        return [Finding(Level.ok, "workers", f"{len(alive)} {word} alive, last beat {ago} s ago")]
    if beats:
        ago = int((now - max(beats)).total_seconds())
        return [Finding(Level.problem, "workers", f"none alive; the last beat was {ago} s ago")]
    return [Finding(Level.problem, "workers", "none ever ran: start `socialcare worker`")]


def check_web_settings(config: Mapping[str, Any]) -> list[Finding]:
    """Metrics token, proxy hops and the session cookie's Secure flag."""
    findings = []
    token = str(config.get("METRICS_TOKEN") or "")
    if not token:
        findings.append(Finding(Level.warning, "metrics", "no token: /metrics answers 404"))
    elif len(token) < 16:
        findings.append(Finding(Level.warning, "metrics", "token set, but shorter than 16"))
    else:
        findings.append(Finding(Level.ok, "metrics", "token set"))
    hops = int(config.get("PROXY_HOPS") or 0)
    # `socialcare serve` reads SOCIALCARE_FORWARDED_ALLOW_IPS; Flask keeps a copy in config.
    proxies = str(config.get("FORWARDED_ALLOW_IPS") or DEFAULT_FORWARDED_ALLOW_IPS)
    if hops and proxies.strip() == "*":
        findings.append(
            Finding(
                Level.warning,
                "proxy hops",
                f"{hops}, and forwarding headers are taken from any peer: set "
                "SOCIALCARE_FORWARDED_ALLOW_IPS to the proxies' addresses",
            )
        )
    elif hops:
        findings.append(
            Finding(
                Level.ok,
                "proxy hops",
                f"{hops}: X-Forwarded-* trusted from {hops} proxy, accepted from {proxies}",
            )
        )
    else:
        findings.append(
            Finding(
                Level.warning,
                "proxy hops",
                "0: behind a reverse proxy every client would share its address",
            )
        )
    if config.get("SESSION_COOKIE_SECURE") is False:
        findings.append(Finding(Level.warning, "session cookie", "sent over plain HTTP too"))
    return findings


def run_checks(
    *,
    config: Mapping[str, Any],
    inbox_engine: Engine,
    research_engine: Engine,
    now: datetime,
) -> list[Finding]:
    """Every finding of the report, in the order printed."""
    secrets = check_secrets(config)
    keys_usable = secrets[-1].level == Level.ok
    findings = list(secrets)
    inbox_findings = check_database("inbox", config["DATABASE_URL"], inbox_engine, "inbox")
    findings += inbox_findings
    findings += check_database(
        "research", config["RESEARCH_DATABASE_URL"], research_engine, "research"
    )
    if config["DATABASE_URL"] == config["RESEARCH_DATABASE_URL"]:
        findings.append(
            Finding(Level.warning, "research database", "the same database as the inbox")
        )
    if any(f.level == Level.problem for f in inbox_findings):
        findings.append(
            Finding(Level.warning, "accounts and workers", "not checked: fix the inbox database")
        )
    else:
        with Session(inbox_engine) as session:
            if keys_usable:
                keys = encryption_keys(config.get("ENCRYPTION_KEYS") or "")
                findings += check_stored_secrets(session, keys)
            findings += check_accounts(session, now)
            max_age = float(config["WORKER_HEARTBEAT_MAX_AGE_SECONDS"])
            findings += check_workers(session, now, max_age)
    findings += check_web_settings(config)
    return findings
