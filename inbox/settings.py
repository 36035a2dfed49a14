"""Settings admins change in the UI: per account (polling, SLA, research policy, ID patterns,
Messenger tag) and for the whole instance (the privacy defaults of reports)."""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from inbox.models import Account
from inbox.privacy_models import Setting
from inbox.types import utcnow

POLL_MIN, POLL_MAX = 30, 86400
SLA_MIN, SLA_MAX = 1, 10080
PATTERN_MAX = 200
PATTERNS_MAX = 20
K_DEFAULT, K_MIN, K_MAX = 5, 2, 100
EPSILON_MIN, EPSILON_MAX = 0.01, 10.0
REPORT_K, REPORT_EPSILON = "report_k", "report_epsilon"
# Platforms whose messaging API knows the human-agent tag (answers after 24 hours, for 7 days).
HUMAN_AGENT_PLATFORMS = frozenset({"facebook", "instagram"})
# A quantified group that is itself quantified, e.g. (a+)+ or (\w*)*: the classic shape of
# catastrophic backtracking. A heuristic, but it catches what people write by accident.
_NESTED_QUANTIFIER = re.compile(
    r"\((?:[^()\\]|\\.)*(?:[+*]|,\d*\})(?:[^()\\]|\\.)*\)\s*(?:[+*]|\{\d*,)"
)


class SettingsError(ValueError):
    """A setting cannot be saved as entered; `field` names the culprit, `value` the input."""

    def __init__(self, field: str, value: str = "") -> None:
        super().__init__(field)
        self.field = field
        self.value = value


@dataclass(frozen=True, slots=True)
class PatternCheck:
    """What one ID pattern finds in the admin's sample text."""

    pattern: str
    matches: tuple[str, ...]


def parse_patterns(text: str) -> list[str]:
    """ID patterns from a text area, one a line, each checked: it compiles, is at most 200
    characters, does not match the empty string and has no nested quantifier."""
    patterns = [line.strip() for line in text.splitlines() if line.strip()]
    if len(patterns) > PATTERNS_MAX:
        raise SettingsError("id_patterns_count")
    for pattern in patterns:
        if len(pattern) > PATTERN_MAX:
            raise SettingsError("id_pattern_long", pattern[:40])
        try:
            compiled = re.compile(pattern)
        except re.error:
            raise SettingsError("id_pattern_invalid", pattern) from None
        if compiled.search("") is not None:
            raise SettingsError("id_pattern_empty", pattern)
        if _NESTED_QUANTIFIER.search(pattern):
            raise SettingsError("id_pattern_nested", pattern)
    return patterns


def check_patterns(*, patterns: Sequence[str], sample: str) -> list[PatternCheck]:
    """What each (already validated) pattern matches in the sample, at most 20 matches each."""
    sample = sample[:5000]
    return [
        PatternCheck(p, tuple(m.group(0) for m in re.finditer(p, sample))[:20]) for p in patterns
    ]


def bounded_int(field: str, value: str, low: int, high: int) -> int:
    """The value as a whole number from low to high, or a SettingsError naming the field."""
    try:
        number = int(value.strip())
    except ValueError:
        raise SettingsError(field, value) from None
    if not low <= number <= high:
        raise SettingsError(field, value)
    return number


def update_account_settings(
    *, session: Session, account: Account, form: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Apply the settings form to the account; returns {field: {old, new}} of what changed
    (the caller audits and commits). Raises SettingsError before changing anything."""
    new: dict[str, Any] = {
        "poll_interval_seconds": bounded_int(
            "poll_interval_seconds", form.get("poll_interval_seconds", ""), POLL_MIN, POLL_MAX
        ),
        "sla_minutes": bounded_int("sla_minutes", form.get("sla_minutes", ""), SLA_MIN, SLA_MAX),
        "research_dms": form.get("research_dms") == "1",
        "id_patterns": parse_patterns(form.get("id_patterns", "")),
    }
    if account.platform in HUMAN_AGENT_PLATFORMS:
        new["human_agent_enabled"] = form.get("human_agent_enabled") == "1"
    old: dict[str, Any] = {
        "poll_interval_seconds": account.poll_interval_seconds,
        "sla_minutes": account.sla_minutes,
        "research_dms": account.research_dms,
        "id_patterns": list(account.settings.get("id_patterns", [])),
        "human_agent_enabled": account.settings.get("human_agent_enabled", False) is True,
    }
    changes = {k: {"old": old[k], "new": v} for k, v in new.items() if old[k] != v}
    account.poll_interval_seconds = new["poll_interval_seconds"]
    account.sla_minutes = new["sla_minutes"]
    account.research_dms = new["research_dms"]
    settings = {**account.settings, "id_patterns": new["id_patterns"]}
    if "human_agent_enabled" in new:
        settings["human_agent_enabled"] = new["human_agent_enabled"]
    # A new dict, so the JSON column sees the change.
    account.settings = settings
    session.add(account)
    return changes


def _get(session: Session, key: str) -> Any:
    setting = session.get(Setting, key)
    return setting.value if setting is not None else None


def _put(session: Session, key: str, value: Any) -> None:
    setting = session.get(Setting, key) or Setting(key=key, value=value)
    setting.value = value
    setting.updated_at = utcnow()
    session.add(setting)


def report_privacy(*, session: Session) -> tuple[int, float | None]:
    """The instance's report defaults: the smallest group shown (k) and the differential-privacy
    epsilon (None: no noise)."""
    k, epsilon = _get(session, REPORT_K), _get(session, REPORT_EPSILON)
    k = k if isinstance(k, int) and K_MIN <= k <= K_MAX else K_DEFAULT
    if not isinstance(epsilon, int | float) or not EPSILON_MIN <= epsilon <= EPSILON_MAX:
        epsilon = None
    return k, None if epsilon is None else float(epsilon)


def set_report_privacy(*, session: Session, k: str, epsilon: str) -> dict[str, dict[str, Any]]:
    """Save k (2..100) and epsilon (empty, or 0.01..10) from the form; returns what changed
    (the caller audits and commits)."""
    new_k = bounded_int("report_k", k, K_MIN, K_MAX)
    new_epsilon: float | None = None
    if epsilon.strip():
        try:
            new_epsilon = float(epsilon.strip().replace(",", "."))
        except ValueError:
            raise SettingsError("report_epsilon", epsilon) from None
        if not EPSILON_MIN <= new_epsilon <= EPSILON_MAX:
            raise SettingsError("report_epsilon", epsilon)
    old_k, old_epsilon = report_privacy(session=session)
    _put(session, REPORT_K, new_k)
    _put(session, REPORT_EPSILON, new_epsilon)
    changes: dict[str, dict[str, Any]] = {}
    if old_k != new_k:
        changes["k"] = {"old": old_k, "new": new_k}
    if old_epsilon != new_epsilon:
        changes["epsilon"] = {"old": old_epsilon, "new": new_epsilon}
    return changes


# Seconds an instance setting read through cached_setting() is reused by this process. A change
# saved through the ORM in this process (an admin's form) takes effect at once: every write of a
# Setting row, on flush and again on commit, drops what this process remembers. Other processes
# (gunicorn's other workers) only catch up when their copy runs out, so a change reaches every
# request within this many seconds.
SETTING_TTL_SECONDS = 5.0
_remembered: weakref.WeakKeyDictionary[Engine, dict[str, tuple[float, int, Any]]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()
_generation = 0
_CHANGED = "inbox.settings.changed"


def cached_setting(*, session: Session, key: str, ttl: float | None = None) -> Any:
    """The instance setting's value (None when unset), read from the database at most every
    `ttl` seconds (default SETTING_TTL_SECONDS) per process and database."""
    ttl = SETTING_TTL_SECONDS if ttl is None else ttl
    engine = session.get_bind()
    clock = time.monotonic()
    generation = _generation
    by_key = _remembered.get(engine) if isinstance(engine, Engine) else None
    found = by_key.get(key) if by_key is not None else None
    if found is not None and found[0] > clock and found[1] == generation:
        return found[2]
    value = _get(session, key)
    if ttl > 0 and isinstance(engine, Engine):
        with _lock:
            _remembered.setdefault(engine, {})[key] = (clock + ttl, generation, value)
    return value


def forget_cached_settings() -> None:
    """Drop every remembered setting of this process: the next read goes to the database."""
    global _generation
    with _lock:
        _generation += 1
        _remembered.clear()


def _writes_settings(objects: Iterable[object]) -> bool:
    return any(isinstance(item, Setting) for item in objects)


@event.listens_for(OrmSession, "after_flush")
def _setting_flushed(session: OrmSession, _context: Any) -> None:
    # Still the pre-flush lists here. Forgotten now for this session's own next read, and
    # again after the commit: another request may have read the old value in between.
    if any(_writes_settings(found) for found in (session.new, session.dirty, session.deleted)):
        session.info[_CHANGED] = True
        forget_cached_settings()


@event.listens_for(OrmSession, "after_commit")
def _setting_committed(session: OrmSession) -> None:
    if session.info.pop(_CHANGED, False):
        forget_cached_settings()
