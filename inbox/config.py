"""Configuration defaults and the checks that keep a production instance from starting unsafe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, MultiFernet

# Defaults. Database URLs left empty default to SQLite files in the instance folder.
DATABASE_URL = ""
RESEARCH_DATABASE_URL = ""
SECRET_KEY = ""
ENCRYPTION_KEYS = ""
# Days after a month ends until its author-pseudonym key is destroyed: from then on that
# month's research records cannot be linked to anyone, not even by us.
PSEUDONYM_KEY_RETENTION_DAYS = 30
DEMO = False
LANGUAGES = ["de", "en"]
BABEL_DEFAULT_LOCALE = "en"
# Times are stored in UTC and shown in the team's zone.
BABEL_DEFAULT_TIMEZONE = "Europe/Berlin"
OUTBOX_BATCH_SIZE = 200
WORKER_ACCOUNT_SYNC_SECONDS = 30
WORKER_DRAIN_SECONDS = 5
WORKER_LEASE_SECONDS = 120
# First wait after a transient platform failure; it doubles per failure, up to 30 minutes.
WORKER_BACKOFF_BASE_SECONDS = 30
# Webhooks answer 404 while these are empty. Meta: the app secret signs deliveries; the verify
# token is what you type into the app dashboard. X: the consumer (API) secret, not a token.
META_APP_SECRET = ""
META_VERIFY_TOKEN = ""
X_CONSUMER_SECRET = ""
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# None means: secure (sent over HTTPS only) unless DEMO or TESTING is on, so that the demo on
# http://127.0.0.1 can log in. Set it to false explicitly only behind nothing but plain HTTP.
SESSION_COOKIE_SECURE: bool | None = None
# A session ends after this many minutes without the user doing anything (the list's refresh
# and presence beats while not typing do not count), and this many hours after the login at
# the latest: a forgotten browser on a shared device does not stay logged in.
SESSION_IDLE_MINUTES = 30
SESSION_MAX_HOURS = 12
# Login throttling: this many failed logins for one e-mail address (existing or not) within
# the window lock that address for the lockout time; a higher limit applies per client address.
# Behind a reverse proxy, fix request.remote_addr (ProxyFix) or every client shares one address.
LOGIN_EMAIL_MAX_FAILURES = 5
LOGIN_IP_MAX_FAILURES = 50
LOGIN_WINDOW_MINUTES = 15
LOGIN_LOCKOUT_MINUTES = 15
# Minutes between the right password and the second factor before the login starts over.
LOGIN_CODE_MINUTES = 5
WTF_CSRF_TIME_LIMIT = None
# Operations. How many reverse proxies in front set X-Forwarded-For/-Proto/-Host (0: none,
# the headers are ignored). /metrics answers only with this bearer token (unset: 404).
PROXY_HOPS = 0
METRICS_TOKEN = ""
# Where each worker serves its own metrics ("host:port", e.g. "127.0.0.1:9464"); "" = off.
# Needs METRICS_TOKEN as well.
WORKER_METRICS_BIND = ""
# "json" (one object per line, for log shippers) or "text" (for a terminal).
LOG_FORMAT = "json"
LOG_LEVEL = "INFO"
# /readyz and `socialcare check` call the workers down when none beat for this long.
WORKER_HEARTBEAT_MAX_AGE_SECONDS = 90

PLACEHOLDER_SECRETS = frozenset({"", "dev", "change-me", "changeme", "secret", "please-change"})
MIN_SECRET_LENGTH = 32

SIGNING_KEY_HELP = (
    "SOCIALCARE_SECRET_KEY is missing or a placeholder. Generate one with "
    "`socialcare gen-key secret` and set it in the environment."
)
ENCRYPTION_KEYS_HELP = (
    "SOCIALCARE_ENCRYPTION_KEYS must hold one or more comma-separated Fernet keys, newest "
    "first. Generate one with `socialcare gen-key fernet`."
)


class ConfigError(RuntimeError):
    """The configuration is unsafe or incomplete; the message says how to fix it."""


def encryption_keys(value: str | list[str]) -> list[str]:
    """Split the configured Fernet keys, newest first."""
    parts = value if isinstance(value, list) else value.split(",")
    return [part.strip() for part in parts if part.strip()]


def multi_fernet(value: str | list[str]) -> MultiFernet:
    """Build the MultiFernet for the configured keys, or raise ConfigError."""
    keys = encryption_keys(value)
    if not keys:
        raise ConfigError(ENCRYPTION_KEYS_HELP)
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ConfigError(f"{ENCRYPTION_KEYS_HELP} ({exc})") from None


def check(config: Mapping[str, Any]) -> None:
    """Refuse unsafe settings outside demo and tests."""
    if config.get("DEMO") or config.get("TESTING"):
        return
    secret = str(config.get("SECRET_KEY") or "")
    if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(SIGNING_KEY_HELP)
    multi_fernet(config.get("ENCRYPTION_KEYS") or "")
