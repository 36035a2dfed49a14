"""Reading conversations for the agents' list: views, filters, counts and keyset pages.

The list's URL parameters (filters, page cursors) are parsed in inbox.list_params.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, get_args

from sqlalchemy import (
    ColumnElement,
    Integer,
    Subquery,
    bindparam,
    false,
    func,
    null,
    or_,
    true,
    tuple_,
)
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from inbox.list_params import Cursor, Filters, SlaState
from inbox.models import Account, Contact, Conversation, ConversationStatus, Message, User
from inbox.types import UTCDateTime
from inbox.workflow_models import ConversationTag

View = Literal["mine", "unassigned", "open", "pending", "snoozed", "closed", "spam"]
VIEWS: tuple[View, ...] = get_args(View)
NEARLY_DUE = timedelta(minutes=10)
PAGE_SIZE = 50
# Counting every open conversation of a big inbox costs a full index scan per view; nobody
# needs to know whether 4,000 or 40,000 wait, only that it is "a lot".
COUNT_CAP = 1000
PREVIEW_CHARS = 200
_OPEN, _PENDING, _CLOSED = (
    ConversationStatus.open,
    ConversationStatus.pending,
    ConversationStatus.closed,
)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the conversation list: just the columns it shows."""

    id: int
    kind: str
    status: str
    sla_due_at: datetime | None
    display_name: str | None
    handle: str | None
    platform_user_id: str
    account_name: str
    platform: str
    assignee: str | None
    preview: str
    tags: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """How the customer is called: display name, else handle, else platform id."""
        return self.display_name or self.handle or self.platform_user_id

    def sla_state(self, now: datetime) -> SlaState:
        """Whether the reply is overdue, nearly due, due later or not due at all."""
        due = self.sla_due_at
        if due is None or self.status == _CLOSED:
            return "none"
        if due < now:
            return "late"
        return "soon" if due < now + NEARLY_DUE else "later"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a view, and where the next one starts (None on the last page)."""

    rows: list[Row]
    next: Cursor | None


def _view_where(view: View, *, user_id: Any, now: Any) -> list[ColumnElement[bool]]:
    status = col(Conversation.status)
    awake = or_(col(Conversation.snoozed_until).is_(None), col(Conversation.snoozed_until) <= now)
    # "= 0" / "= 1", not "IS 0": SQLite only uses the spam view's partial index (WHERE is_spam
    # = 1) for a term written exactly like its condition.
    not_spam = col(Conversation.is_spam) == false()
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
            return [col(Conversation.is_spam) == true()]


def _filter_where(
    filters: Filters,
    *,
    now: Any,
    view: View,
    dialect: str,
    accounts: Collection[int] | None = None,
    bound: bool = False,
) -> list[ColumnElement[bool]]:
    """The filters' terms; `bound`: with parameters named like _page_params' keys in place of
    the values (now, soon, accounts and the filters' own), for a statement kept for reuse."""

    def value(name: str, given: Any) -> Any:
        return bindparam(name) if bound else given

    where: list[ColumnElement[bool]] = []
    if accounts is not None:
        # The agent's own accounts: what they are not a member of is not in their inbox.
        members = bindparam("accounts", expanding=True) if bound else sorted(accounts)
        where.append(col(Conversation.account_id).in_(members))
    if filters.account is not None:
        where.append(col(Conversation.account_id) == value("account", filters.account))
    if filters.platform is not None:
        on_platform = select(Account.id).where(
            Account.platform == value("platform", filters.platform)
        )
        where.append(col(Conversation.account_id).in_(on_platform))
    if filters.kind is not None:
        where.append(col(Conversation.kind) == value("kind", filters.kind))
    if filters.language is not None:
        where.append(col(Conversation.language) == value("language", filters.language))
    if filters.tag is not None:
        # The tag's conversations are read once off ix_conversationtag_tag, never probed per
        # candidate. Left alone, SQLite then fetches every tagged conversation by id, whatever
        # the view; that suits the closed view, which grows without end, but the working views
        # are a small backlog better walked on their own index, testing each id against the
        # list ("+ 0" keeps SQLite from using the id as the way in). PostgreSQL weighs both.
        tagged = select(ConversationTag.conversation_id).where(
            col(ConversationTag.tag) == value("tag", filters.tag)
        )
        by_view = dialect == "sqlite" and view != "closed"
        where.append((col(Conversation.id) + 0 if by_view else col(Conversation.id)).in_(tagged))
    due = col(Conversation.sla_due_at)
    soon = bindparam("soon", type_=UTCDateTime()) if bound else now + NEARLY_DUE
    match filters.sla:
        case "late":
            where.append(due < now)
        case "soon":
            where.extend([due >= now, due < soon])
        case "later":
            where.append(due >= soon)
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
    accounts: Collection[int] | None = None,
) -> Page:
    """One page of a view on `accounts` (None: all): earliest due first (closed: latest
    closed), then by last activity."""
    filters = filters or Filters()
    name = _order(view)[0]
    if after is not None and after.order != name:
        raise ValueError("cursor")
    dialect = session.get_bind().dialect.name
    shape = _Shape(
        view=view,
        dialect=dialect,
        accounts=accounts is not None,
        set_filters=tuple(getattr(filters, field) is not None for field in _FILTER_FIELDS),
        sla=filters.sla,
    )
    params: dict[str, Any] = {
        "user_id": user_id,
        "now": now,
        "soon": now + NEARLY_DUE,
        "accounts": sorted(accounts) if accounts is not None else [],
        **{field: getattr(filters, field) for field in _FILTER_FIELDS},
    }
    if after is not None:
        params.update(after_key=after.key, after_id=after.id)
    found: list[Any] = []
    # Two index range scans instead of one sort with NULLS LAST: each phase reads only its rows.
    if after is None or after.phase == 0:
        statement = _page_statement(shape, phase=0, resumed=after is not None)
        found.extend(_read(session, statement, {**params, "limit": limit + 1}))
    if len(found) <= limit:
        resumed = after is not None and after.phase == 1
        statement = _page_statement(shape, phase=1, resumed=resumed)
        found.extend(_read(session, statement, {**params, "limit": limit + 1 - len(found)}))
    shown = found[:limit]
    following: Cursor | None = None
    if len(found) > limit:
        last = shown[-1]
        key = last.closed_at if name == "closed" else last.sla_due_at
        phase = 0 if key is not None else 1
        following = Cursor(order=name, phase=phase, key=key or last.last_message_at, id=last.id)
    return Page(rows=_rows(session, shown), next=following)


_FILTER_FIELDS = ("account", "platform", "kind", "tag", "language")


@dataclass(frozen=True, slots=True)
class _Shape:
    """What decides a page statement's SQL; the values go in as parameters."""

    view: View
    dialect: str
    accounts: bool
    set_filters: tuple[bool, ...]
    sla: SlaState | None


@lru_cache(maxsize=512)
def _page_statement(shape: _Shape, *, phase: int, resumed: bool) -> Any:
    """The statement of one phase of a page, built once per shape and reused: building it
    and its cache key cost more than running it. Parameters: user_id, now, soon, accounts,
    the filters', limit, and after_key and after_id when `resumed` (after a cursor)."""
    view = shape.view
    now = bindparam("now", type_=UTCDateTime())
    where = _view_where(view, user_id=bindparam("user_id"), now=now)
    # Stand-ins: only whether each filter is set matters, bound=True puts parameters in.
    stand_ins: dict[str, Any] = {
        field: "" if used else None
        for field, used in zip(_FILTER_FIELDS, shape.set_filters, strict=True)
    }
    filters = Filters(**stand_ins, sla=shape.sla)
    where += _filter_where(
        filters,
        now=now,
        view=view,
        dialect=shape.dialect,
        accounts=() if shape.accounts else None,
        bound=True,
    )
    name, timed, newest_first = _order(view)
    identity = col(Conversation.id)
    query = select_columns(*_PAGE_COLUMNS).where(*where)
    mark = tuple_(bindparam("after_key", type_=UTCDateTime()), bindparam("after_id"))
    if phase == 0:
        query = query.where(timed.is_not(None))
        if resumed:
            position = tuple_(timed, identity)
            query = query.where(position < mark if newest_first else position > mark)
        keys = (timed.desc(), identity.desc()) if newest_first else (timed, identity)
    else:
        activity = col(Conversation.last_message_at)
        query = query.where(_untimed(name, timed, dialect=shape.dialect))
        if resumed:
            query = query.where(tuple_(activity, identity) < mark)
        keys = (activity.desc(), identity.desc())
    limited = query.order_by(*keys).limit(bindparam("limit", type_=Integer()))
    return _with_previews(limited, name, phase)


# Only what a row shows (and the cursor needs): no whole ORM objects, no credentials.
_PAGE_COLUMNS: tuple[Any, ...] = (
    col(Conversation.id),
    col(Conversation.kind),
    col(Conversation.status),
    col(Conversation.sla_due_at),
    col(Conversation.closed_at),
    col(Conversation.last_message_at),
    col(Conversation.contact_id),
    col(Conversation.account_id),
    col(Conversation.assignee_id),
)


def _untimed(order: str, timed: Any, *, dialect: str) -> ColumnElement[bool]:
    """The rows of the second phase, those without a sort time.

    Closed conversations nearly all have a closing time: the index finds the few without one.
    Conversations without a due time can be most of a view (pending ones, answered ones), but
    SQLite's statistics keep no share of NULLs and guess a handful; hiding the column in a
    COALESCE keeps SQLite from reading them all through ix_conversation_status_due and sorting,
    so it walks ix_conversation_status_activity in order and stops after a page. PostgreSQL
    knows the share of NULLs and plans the plain test well (and the COALESCE badly).
    """
    if order == "closed" or dialect != "sqlite":
        return timed.is_(None)  # type: ignore[no-any-return]
    return func.coalesce(timed, null()).is_(None)


def _with_previews(query: Any, order: str, phase: int) -> Any:
    """The page's rows with their contact, account, assignee and latest message's start.

    Names and the preview are looked up in an outer query over the limited page, so they cost
    one index seek each per shown row, never one per candidate of a view that must be sorted.
    """
    page: Subquery = query.subquery()
    latest = (
        select(func.substr(col(Message.text), 1, PREVIEW_CHARS))
        .where(col(Message.conversation_id) == page.c.id)
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(1)
        .scalar_subquery()
    )
    keys: tuple[Any, ...]
    if phase == 1:
        keys = (page.c.last_message_at.desc(), page.c.id.desc())
    elif order == "closed":
        keys = (page.c.closed_at.desc(), page.c.id.desc())
    else:
        keys = (page.c.sla_due_at, page.c.id)
    outer = (
        select_columns(
            page,
            col(Contact.display_name),
            col(Contact.handle),
            col(Contact.platform_user_id),
            col(Account.display_name).label("account_name"),
            col(Account.platform),
            col(User.name).label("assignee"),
            func.coalesce(latest, "").label("preview"),
        )
        .join(Contact, col(Contact.id) == page.c.contact_id)
        .join(Account, col(Account.id) == page.c.account_id)
        .join(User, col(User.id) == page.c.assignee_id, isouter=True)
        .order_by(*keys)
    )
    return outer


def _read(session: Session, statement: Any, params: dict[str, Any]) -> Any:
    """Plain rows of a column query, straight off the session's connection: the ORM's
    execution layer (entity loading, identity map) costs more than the page query itself."""
    session.flush()  # what session.execute would do first; nothing is pending in the views
    return session.connection().execute(statement, params).all()


_TAGS = (
    select_columns(col(ConversationTag.conversation_id), col(ConversationTag.tag))
    .where(col(ConversationTag.conversation_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(ConversationTag.tag))
)


def _rows(session: Session, found: list[Any]) -> list[Row]:
    tags: dict[int, list[str]] = {}
    if found:
        for row_id, tag in _read(session, _TAGS, {"ids": [row.id for row in found]}):
            tags.setdefault(row_id, []).append(tag)
    return [
        Row(
            id=row.id,
            kind=row.kind,
            status=row.status,
            sla_due_at=row.sla_due_at,
            display_name=row.display_name,
            handle=row.handle,
            platform_user_id=row.platform_user_id,
            account_name=row.account_name,
            platform=row.platform,
            assignee=row.assignee,
            preview=row.preview,
            tags=tuple(tags.get(row.id, ())),
        )
        for row in found
    ]


def count_views(
    *,
    session: Session,
    user_id: int,
    now: datetime,
    filters: Filters | None = None,
    accounts: Collection[int] | None = None,
    views: tuple[View, ...] = VIEWS,
) -> dict[View, int]:
    """How many conversations each of `views` holds under the filters on `accounts` (None:
    all), counted up to COUNT_CAP."""
    dialect = session.get_bind().dialect.name
    counts = []
    for view in views:
        where = _view_where(view, user_id=user_id, now=now)
        where += _filter_where(
            filters or Filters(), now=now, view=view, dialect=dialect, accounts=accounts
        )
        capped = select(Conversation.id).where(*where).limit(COUNT_CAP).subquery()
        counts.append(select(func.count()).select_from(capped).scalar_subquery().label(view))
    # One statement, one round trip: each view's count is a scalar subquery of its own.
    found = session.execute(select(*counts)).one()
    return {view: int(count) for view, count in zip(views, found, strict=True)}
