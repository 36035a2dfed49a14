"""Reading conversations for the agents' list: views, filters, counts and keyset pages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import ColumnElement, exists, false, func, or_, text, tuple_
from sqlmodel import Session, col, select

from inbox.models import Account, Contact, Conversation, ConversationStatus, Message, User
from inbox.workflow_models import ConversationTag

View = Literal["mine", "unassigned", "open", "pending", "snoozed", "closed", "spam"]
VIEWS: tuple[View, ...] = get_args(View)
# Overdue, due within NEARLY_DUE, due later, no reply due.
SlaState = Literal["late", "soon", "later", "none"]
SLA_STATES: tuple[SlaState, ...] = get_args(SlaState)
KINDS = ("mention", "comment", "dm")
NEARLY_DUE = timedelta(minutes=10)
PAGE_SIZE = 50
# Counting every open conversation of a big inbox costs a full index scan per view; nobody
# needs to know whether 4,000 or 40,000 wait, only that it is "a lot".
COUNT_CAP = 1000
PREVIEW_CHARS = 200
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_OPEN, _PENDING, _CLOSED = (
    ConversationStatus.open,
    ConversationStatus.pending,
    ConversationStatus.closed,
)


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


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the conversation list."""

    conversation: Conversation
    contact: Contact
    account: Account
    assignee: str | None
    preview: str
    tags: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """How the customer is called: display name, else handle, else platform id."""
        contact = self.contact
        return contact.display_name or contact.handle or contact.platform_user_id

    def sla_state(self, now: datetime) -> SlaState:
        """Whether the reply is overdue, nearly due, due later or not due at all."""
        due = self.conversation.sla_due_at
        if due is None or self.conversation.status == _CLOSED:
            return "none"
        if due < now:
            return "late"
        return "soon" if due < now + NEARLY_DUE else "later"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a view, and where the next one starts (None on the last page)."""

    rows: list[Row]
    next: Cursor | None


def _view_where(view: View, *, user_id: int, now: datetime) -> list[ColumnElement[bool]]:
    status = col(Conversation.status)
    awake = or_(col(Conversation.snoozed_until).is_(None), col(Conversation.snoozed_until) <= now)
    not_spam = col(Conversation.is_spam).is_(false())
    working = [awake, not_spam]
    match view:
        case "mine":
            mine = col(Conversation.assignee_id) == user_id
            return [mine, status.in_([_OPEN, _PENDING])] + working
        case "unassigned":
            return [status == _OPEN, col(Conversation.assignee_id).is_(None)] + working
        case "open":
            return [status == _OPEN] + working
        case "pending":
            return [status == _PENDING] + working
        case "snoozed":
            return [col(Conversation.snoozed_until) > now, status != _CLOSED, not_spam]
        case "closed":
            return [status == _CLOSED, not_spam]
        case "spam":
            return [col(Conversation.is_spam).is_(True)]


def _filter_where(filters: Filters, *, now: datetime) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if filters.account is not None:
        where.append(col(Conversation.account_id) == filters.account)
    if filters.platform is not None:
        on_platform = select(Account.id).where(Account.platform == filters.platform)
        where.append(col(Conversation.account_id).in_(on_platform))
    if filters.kind is not None:
        where.append(col(Conversation.kind) == filters.kind)
    if filters.language is not None:
        where.append(col(Conversation.language) == filters.language)
    if filters.tag is not None:
        tagged = exists().where(
            col(ConversationTag.conversation_id) == Conversation.id,
            col(ConversationTag.tag) == filters.tag,
        )
        where.append(tagged)
    due = col(Conversation.sla_due_at)
    match filters.sla:
        case "late":
            where.append(due < now)
        case "soon":
            where.extend([due >= now, due < now + NEARLY_DUE])
        case "later":
            where.append(due >= now + NEARLY_DUE)
        case "none":
            where.append(due.is_(None))
    return where


def _order(view: View) -> tuple[str, Any, bool]:
    """The order's name, its time column and whether it runs newest first."""
    if view == "closed":
        return "closed", col(Conversation.closed_at), True
    return "due", col(Conversation.sla_due_at), False


def list_conversations(
    *,
    session: Session,
    view: View,
    user_id: int,
    now: datetime,
    filters: Filters | None = None,
    after: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """One page of a view: earliest due first (closed: latest closed), then by last activity."""
    where = _view_where(view, user_id=user_id, now=now)
    where += _filter_where(filters or Filters(), now=now)
    name, timed, newest_first = _order(view)
    if after is not None and after.order != name:
        raise ValueError("cursor")
    identity = col(Conversation.id)
    base = (
        select(Conversation, Contact, Account, User.name)
        .join(Contact, col(Contact.id) == Conversation.contact_id)
        .join(Account, col(Account.id) == Conversation.account_id)
        .join(User, col(User.id) == Conversation.assignee_id, isouter=True)
        .where(*where)
    )
    found: list[Any] = []
    # Two index range scans instead of one sort with NULLS LAST: each phase reads only its rows.
    if after is None or after.phase == 0:
        query = base.where(timed.is_not(None))
        if after is not None:
            position = tuple_(timed, identity)
            mark = tuple_(after.key, after.id)
            query = query.where(position < mark if newest_first else position > mark)
        keys = (timed.desc(), identity.desc()) if newest_first else (timed, identity)
        found.extend(session.exec(query.order_by(*keys).limit(limit + 1)).all())
    if len(found) <= limit:
        activity = col(Conversation.last_message_at)
        query = base.where(timed.is_(None))
        if after is not None and after.phase == 1:
            query = query.where(tuple_(activity, identity) < tuple_(after.key, after.id))
        query = query.order_by(activity.desc(), identity.desc()).limit(limit + 1 - len(found))
        found.extend(session.exec(query).all())
    shown = found[:limit]
    rows = _rows(session, shown)
    following: Cursor | None = None
    if len(found) > limit:
        last = shown[-1][0]
        key = getattr(last, "closed_at" if name == "closed" else "sla_due_at")
        phase = 0 if key is not None else 1
        following = Cursor(order=name, phase=phase, key=key or last.last_message_at, id=last.id)
    return Page(rows=rows, next=following)


def _rows(session: Session, found: list[Any]) -> list[Row]:
    ids = [conversation.id for conversation, *_ in found]
    previews: dict[int, str] = {}
    tags: dict[int, list[str]] = {}
    if ids:
        newest = func.row_number().over(
            partition_by=col(Message.conversation_id),
            order_by=(col(Message.created_at).desc(), col(Message.id).desc()),
        )
        ranked = (
            select(
                col(Message.conversation_id).label("conversation_id"),
                func.substr(col(Message.text), 1, PREVIEW_CHARS).label("text"),
                newest.label("newest"),
            )
            .where(col(Message.conversation_id).in_(ids))
            .subquery()
        )
        latest = select(ranked.c.conversation_id, ranked.c.text).where(ranked.c.newest == 1)
        previews = dict(session.exec(latest).all())
        tagged = (
            select(ConversationTag.conversation_id, ConversationTag.tag)
            .where(col(ConversationTag.conversation_id).in_(ids))
            .order_by(col(ConversationTag.tag))
        )
        for row_id, tag in session.exec(tagged).all():
            tags.setdefault(row_id, []).append(tag)
    return [
        Row(
            conversation=c,
            contact=contact,
            account=account,
            assignee=assignee,
            preview=previews.get(c.id, ""),
            tags=tags.get(c.id, []),
        )
        for c, contact, account, assignee in found
    ]


def count_views(
    *, session: Session, user_id: int, now: datetime, filters: Filters | None = None
) -> dict[View, int]:
    """How many conversations each view holds under the filters, counted up to COUNT_CAP."""
    narrowed = _filter_where(filters or Filters(), now=now)
    counts: dict[View, int] = {}
    for view in VIEWS:
        where = _view_where(view, user_id=user_id, now=now) + narrowed
        capped = select(Conversation.id).where(*where).limit(COUNT_CAP).subquery()
        counts[view] = session.exec(select(func.count()).select_from(capped)).one()
    return counts


@dataclass(frozen=True, slots=True)
class FilterOptions:
    """What the filter form offers."""

    accounts: list[Account]
    platforms: list[str]
    tags: list[str]


# A loose index scan: one index seek per distinct tag instead of reading every tagging.
_DISTINCT_TAGS = text(
    """
    WITH RECURSIVE t(tag) AS (
        SELECT MIN(tag) FROM conversationtag
        UNION ALL
        SELECT (SELECT MIN(tag) FROM conversationtag WHERE tag > t.tag) FROM t
        WHERE t.tag IS NOT NULL
    )
    SELECT tag FROM t WHERE tag IS NOT NULL LIMIT :limit
    """
)


def filter_options(*, session: Session, tag_limit: int = 200) -> FilterOptions:
    """The accounts, platforms and tags there are to filter by."""
    accounts = list(session.exec(select(Account).order_by(col(Account.display_name))).all())
    tags = [tag for (tag,) in session.execute(_DISTINCT_TAGS, {"limit": tag_limit}).all()]
    return FilterOptions(
        accounts=accounts,
        platforms=sorted({account.platform for account in accounts}),
        tags=tags,
    )
