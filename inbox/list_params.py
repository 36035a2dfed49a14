"""The conversation list's URL parameters: filters and signed keyset cursors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Literal, get_args

from itsdangerous import BadData, URLSafeSerializer

# Overdue, due within the list's NEARLY_DUE, due later, no reply due.
SlaState = Literal["late", "soon", "later", "none"]
SLA_STATES: tuple[SlaState, ...] = get_args(SlaState)
KINDS = ("mention", "comment", "dm")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True, slots=True)
class Filters:
    """What the agent narrowed the list to; None means any."""

    account: int | None = None
    platform: str | None = None
    kind: str | None = None
    tag: str | None = None
    language: str | None = None
    sla: SlaState | None = None

    def as_args(self) -> dict[str, str]:
        """The filters as query parameters, only those that are set."""
        values = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {name: str(value) for name, value in values if value is not None}

    @property
    def active(self) -> bool:
        """Whether any filter narrows the list."""
        return bool(self.as_args())


_FILTER_NAMES = tuple(f.name for f in fields(Filters))


def parse_filters(args: Mapping[str, str]) -> Filters:
    """Filters from query parameters; empty means any, malformed raises ValueError."""
    given = {name: (args.get(name) or "").strip() for name in _FILTER_NAMES}
    account = given["account"]
    # Beyond 9 digits no id exists, and PostgreSQL would refuse to compare it with an integer.
    if account and not (account.isascii() and account.isdigit() and len(account) <= 9):
        raise ValueError("account")
    for name, limit in (("platform", 32), ("tag", 64)):
        if len(given[name]) > limit or "\x00" in given[name]:
            raise ValueError(name)
    if given["kind"] and given["kind"] not in KINDS:
        raise ValueError("kind")
    if given["language"] and not _LANGUAGE.match(given["language"]):
        raise ValueError("language")
    if given["sla"] and given["sla"] not in SLA_STATES:
        raise ValueError("sla")
    return Filters(
        account=int(account) if account else None,
        platform=given["platform"] or None,
        kind=given["kind"] or None,
        tag=given["tag"] or None,
        language=given["language"] or None,
        sla=given["sla"] or None,
    )


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: after this sort key and id, in this phase of the order."""

    order: str
    # 0: rows with a sort time (due or closed), 1: the rest by last activity.
    phase: int
    key: datetime
    id: int


def encode_cursor(cursor: Cursor, *, secret: str | bytes) -> str:
    """An opaque, signed token for a cursor, fit for a URL."""
    payload = [cursor.order, cursor.phase, cursor.key.isoformat(), cursor.id]
    return str(URLSafeSerializer(secret, salt="conversation-list").dumps(payload))


def decode_cursor(token: str, *, secret: str | bytes) -> Cursor:
    """The cursor in a token; ValueError if it was tampered with or is malformed."""
    try:
        order, phase, key, row_id = URLSafeSerializer(secret, salt="conversation-list").loads(token)
        cursor = Cursor(order=order, phase=phase, key=datetime.fromisoformat(key), id=row_id)
    except (BadData, TypeError, ValueError) as error:
        raise ValueError("cursor") from error
    if cursor.phase not in (0, 1) or not isinstance(cursor.id, int) or cursor.key.tzinfo is None:
        raise ValueError("cursor")
    return cursor
