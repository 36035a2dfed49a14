"""The conversation list and the rows it refreshes itself with."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from babel import dates
from flask import abort, current_app, render_template, request, url_for
from flask_babel import get_locale, get_timezone, get_translations
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from anonymizer.enrich import SUPPORTED_LANGUAGES
from inbox import db
from inbox.agent import AGENT_ROLES, bp, visible_account_ids
from inbox.auth import roles_required, wrote_within
from inbox.conversation_list import (
    COUNT_CAP,
    VIEWS,
    Page,
    Row,
    View,
    count_views,
    list_conversations,
)
from inbox.filter_options import FilterOptions, filter_options
from inbox.i18n import KIND_LABELS
from inbox.list_params import (
    KINDS,
    SLA_STATES,
    Cursor,
    Filters,
    decode_cursor,
    encode_cursor,
    parse_filters,
)
from inbox.types import utcnow

VIEW_LABELS = {
    "mine": _l("Mine"),
    "unassigned": _l("Unassigned"),
    "open": _l("All open"),
    "pending": _l("Pending"),
    "snoozed": _l("Snoozed"),
    "closed": _l("Closed"),
    "spam": _l("Spam"),
}
SLA_LABELS = {
    "late": _l("Overdue"),
    "soon": _l("Due within 10 minutes"),
    "later": _l("Due later"),
    "none": _l("No reply due"),
}
LANGUAGE_LABELS = {"de": _l("German"), "en": _l("English")}


@dataclass(frozen=True, slots=True)
class _Request:
    view: View
    filters: Filters
    deeper: bool
    page: Page


def _load(now: datetime) -> _Request:
    """The page the query string asks for; malformed filters or cursors are a 400."""
    asked = request.args.get("view", "open")
    # An unknown view is a stale bookmark, not an attack: show the default one.
    view: View = next((known for known in VIEWS if known == asked), "open")
    try:
        filters = parse_filters(request.args)
        token = request.args.get("cursor", "")
        after = decode_cursor(token, secret=current_app.secret_key or b"") if token else None
        page = _page(view, filters, after, now)
    except ValueError:
        abort(400)
    return _Request(view=view, filters=filters, deeper=after is not None, page=page)


# Seconds a page of rows is shared by everyone who asks for the same one (same view, filters,
# cursor and accounts; "mine" per user), per process and app. A busy team opens and refreshes
# the same first pages many times a second, and the query is most of a request's database
# time. At worst a row shows another agent's change (or a new message) this much later, which
# the open tab's refresh every few seconds would anyway. A user's own change shows at once:
# after they send one, they read their pages fresh for as long (inbox.auth.wrote_within).
# The conversation itself, and every action on it, always reads the database.
ROWS_TTL_SECONDS = 1.0


def _page(view: View, filters: Filters, after: Cursor | None, now: datetime) -> Page:
    accounts = visible_account_ids()
    return _remembered(
        "CONVERSATION_ROWS_TTL",
        ROWS_TTL_SECONDS,
        ("rows", view, filters, after, accounts, current_user.id if view == "mine" else None),
        lambda: list_conversations(
            session=db.session(),
            view=view,
            user_id=current_user.id,
            now=now,
            filters=filters,
            after=after,
            accounts=accounts,
        ),
        # A user who just sent a change reads fresh; what they read is still shared onwards.
        fresh=wrote_within,
    )


_T = TypeVar("_T")
_MAX_CACHED = 2000


def _remembered(
    setting: str,
    default: float,
    key: tuple[Any, ...],
    compute: Callable[[], _T],
    *,
    fresh: Callable[[float], bool] | None = None,
) -> _T:
    """compute(), or what it gave for the same key less than the `setting`'s seconds ago
    (`default` unless configured; 0 turns remembering off), per process and app. `fresh(ttl)`
    true: compute anew (and remember that)."""
    ttl = float(current_app.config.get(setting, default))
    cache: dict[tuple[Any, ...], tuple[float, Any]] = current_app.extensions.setdefault(
        "conversation_list_cache", {}
    )
    clock = time.monotonic()
    cached = cache.get(key)
    if ttl > 0 and cached is not None and cached[0] > clock and not (fresh and fresh(ttl)):
        found: _T = cached[1]
        return found
    value = compute()
    if ttl > 0:
        if len(cache) >= _MAX_CACHED:
            cache.clear()
        cache[key] = (clock + ttl, value)
    return value


def _count_label(count: int) -> str:
    return f"{COUNT_CAP - 1}+" if count >= COUNT_CAP else str(count)


# Seconds the view counts are reused for the same filters and accounts (the "mine" count per
# user, the others shared by everyone who sees the same accounts). Safe because the counts are
# an orientation beside the list, never what the agent acts on. At worst a count lags a change
# (an assignment, a snooze running out) by this long. Per process and per app, so tests and
# workers never share them.
COUNTS_TTL_SECONDS = 5.0
_SHARED_VIEWS: tuple[View, ...] = tuple(view for view in VIEWS if view != "mine")


def _counts(filters: Filters, now: datetime) -> dict[View, int]:
    """The view counts for this user and filters, computed at most every few seconds."""
    accounts = visible_account_ids()
    mine = _remembered_counts(("mine",), (current_user.id, filters, accounts), filters, now)
    shared = _remembered_counts(_SHARED_VIEWS, (filters, accounts), filters, now)
    return {view: (mine | shared)[view] for view in VIEWS}


def _remembered_counts(
    views: tuple[View, ...], key: tuple[Any, ...], filters: Filters, now: datetime
) -> dict[View, int]:
    return _remembered(
        "CONVERSATION_COUNTS_TTL",
        COUNTS_TTL_SECONDS,
        ("counts", views, *key),
        lambda: count_views(
            session=db.session(),
            user_id=current_user.id,
            now=now,
            filters=filters,
            accounts=visible_account_ids(),
            views=views,
        ),
    )


# Seconds the filter form's choices (accounts, platforms, tags) are reused, per process and app
# and per set of visible accounts. A tag or account added meanwhile shows up in the form this
# much later; the list itself filters by whatever the URL names, fresh on every request.
FILTERS_TTL_SECONDS = 30.0


def _filter_options() -> FilterOptions:
    """What the filter form offers the user, looked up at most every FILTERS_TTL_SECONDS."""
    accounts = visible_account_ids()
    return _remembered(
        "CONVERSATION_FILTERS_TTL",
        FILTERS_TTL_SECONDS,
        ("filters", accounts),
        lambda: filter_options(session=db.session(), accounts=accounts),
    )


def _due_formatter() -> Callable[[datetime], str]:
    """Flask-Babel's format_datetime(value, "short") for this request's locale and zone, with
    the same output; the patterns are looked up once per process and each due time is
    formatted once: the first page shows the same due times request after request."""
    locale, zone = get_locale(), get_timezone()
    key = (str(locale), str(zone))
    found = _FORMATTERS.get(key)
    if found is None:
        found = _FORMATTERS[key] = _short_formatter(locale, zone)
    return found


# Per process: (locale, zone) -> a formatter remembering what it wrote, up to _MAX_FORMATTED.
_FORMATTERS: dict[tuple[str, str], Callable[[datetime], str]] = {}
_MAX_FORMATTED = 4096


def _short_formatter(locale: Any, zone: Any) -> Callable[[datetime], str]:
    glue = str(dates.get_datetime_format("short", locale=locale)).replace("'", "")
    date_pattern = dates.parse_pattern(dates.get_date_format("short", locale=locale))
    time_pattern = dates.parse_pattern(dates.get_time_format("short", locale=locale))
    written: dict[datetime, str] = {}

    def short(value: datetime) -> str:
        text = written.get(value)
        if text is None:
            local = value.astimezone(zone)
            at, on = time_pattern.apply(local, locale), date_pattern.apply(local, locale)
            text = glue.replace("{0}", str(at)).replace("{1}", str(on))
            if len(written) >= _MAX_FORMATTED:
                written.clear()
            written[value] = text
        return text

    return short


def _page_gettext() -> Callable[..., str]:
    """The templates' `_()` for this page: what Jinja's i18n extension installs for
    Flask-Babel (newstyle: Markup when autoescaping, always %-formatted), with the request's
    translations looked up once instead of on each of the page's ~50 calls. Passed to
    render_template as `gettext`, which `_()` resolves through the render context, so the
    base template and its includes use it too."""
    translations = get_translations()

    @pass_context
    def gettext(context: Context, string: str, **variables: Any) -> str:
        text = translations.ugettext(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704  (our own catalogue, as Jinja does it)
        return text % variables  # type: ignore[no-any-return]

    return gettext


# Per process and locale: the page's labels, translated once (the catalogues never change while
# the process runs).
_WORDS: dict[str, dict[str, Any]] = {}


def _words() -> dict[str, Any]:
    """The labels of views, due states, languages and kinds in this request's language."""
    locale = str(get_locale())
    found = _WORDS.get(locale)
    if found is None:
        found = _WORDS[locale] = {
            "view_labels": {view: str(label) for view, label in VIEW_LABELS.items()},
            "sla_labels": {state: str(label) for state, label in SLA_LABELS.items()},
            "languages": [
                (code, str(LANGUAGE_LABELS.get(code, code))) for code in SUPPORTED_LANGUAGES
            ],
            "kind_names": {kind: str(KIND_LABELS.get(kind, kind)) for kind in KINDS},
        }
    return found


def _row_context(now: datetime) -> dict[str, Any]:
    """What the rows template needs besides the rows, resolved once per page."""
    context = {
        "kind_names": _words()["kind_names"],
        "gettext": _page_gettext(),
        "format_due": _due_formatter(),
        # The thread links differ only in the id: build one and fill the id in per row.
        "thread_url": url_for("agent.thread", conversation_id=0).removesuffix("0"),
    }
    row_html = _row_renderer(now, context)
    return {**context, "rows_html": _page_renderer(now, context, row_html)}


# Per process: (language, time zone, link prefix, due state, row) -> the row's HTML, up to
# _MAX_ROWS_HTML. A row's markup follows from those alone, and the first pages show the same
# rows request after request: rendering each of them anew was a third of the list's CPU time.
_ROWS_HTML: dict[tuple[str, str, str, str, Row], Markup] = {}
_MAX_ROWS_HTML = 20_000


def _row_renderer(now: datetime, context: dict[str, Any]) -> Callable[[Row], Markup]:
    """The templates' `row_html(row)`: agent/_row.html for one row, rendered once per process
    for the same row, due state, language and time zone."""
    template = current_app.jinja_env.get_template("agent/_row.html")
    language, zone, prefix = str(get_locale()), str(get_timezone()), context["thread_url"]

    def row_html(row: Row) -> Markup:
        state = row.sla_state(now)
        key = (language, zone, prefix, state, row)
        html = _ROWS_HTML.get(key)
        if html is None:
            html = Markup(template.render(row=row, state=state, **context))  # noqa: S704
            if len(_ROWS_HTML) >= _MAX_ROWS_HTML:
                _ROWS_HTML.clear()
            _ROWS_HTML[key] = html
        return html

    return row_html


# Per process: the HTML of whole pages of rows, for a page shared by many requests (see _page):
# (id of its row list, language, time zone, link prefix, due states) -> (the list, its HTML).
# The list is kept with its HTML, so its id cannot be reused by another while remembered.
_PAGES_HTML: dict[tuple[Any, ...], tuple[list[Row], Markup]] = {}
_MAX_PAGES_HTML = 500


def _page_renderer(
    now: datetime, context: dict[str, Any], row_html: Callable[[Row], Markup]
) -> Callable[[list[Row]], Markup]:
    """The templates' `rows_html(rows)`: all rows of a page, joined once per shared page."""
    language, zone, prefix = str(get_locale()), str(get_timezone()), context["thread_url"]

    def rows_html(rows: list[Row]) -> Markup:
        states = tuple(row.sla_state(now) for row in rows)
        key = (id(rows), language, zone, prefix, states)
        found = _PAGES_HTML.get(key)
        if found is not None and found[0] is rows:
            return found[1]
        html = Markup("\n").join(row_html(row) for row in rows)
        if len(_PAGES_HTML) >= _MAX_PAGES_HTML:
            _PAGES_HTML.clear()
        _PAGES_HTML[key] = (rows, html)
        return html

    return rows_html


@bp.get("")
@roles_required(*AGENT_ROLES)
@db.read_only
def conversations() -> str:
    """The conversation list of one view, filtered, most urgent first, one page at a time."""
    now = utcnow()
    loaded = _load(now)
    # Every link of the page keeps the view's filters: other views, further pages, the refresh.
    args: dict[str, Any] = {"view": loaded.view, **loaded.filters.as_args()}
    # Deeper pages leave the counts out: they cost more than the page and the agent saw them on
    # the first page.
    counts = None if loaded.deeper else _counts(loaded.filters, now)
    following = loaded.page.next
    next_url = None
    if following is not None:
        token = encode_cursor(following, secret=current_app.secret_key or b"")
        next_url = url_for("agent.conversations", **args, cursor=token)
    return render_template(
        "agent/conversations.html",
        rows=loaded.page.rows,
        view=loaded.view,
        views=VIEWS,
        view_labels=_words()["view_labels"],
        counts={view: _count_label(count) for view, count in (counts or {}).items()},
        filters=loaded.filters,
        filter_args=loaded.filters.as_args(),
        options=_filter_options(),
        kinds=KINDS,
        sla_states=SLA_STATES,
        sla_labels=_words()["sla_labels"],
        languages=_words()["languages"],
        deeper=loaded.deeper,
        next_url=next_url,
        refresh_url=url_for("agent.conversation_rows", **args),
        **_row_context(now),
    )


@bp.get("/rows")
@roles_required(*AGENT_ROLES)
@db.read_only
def conversation_rows() -> str:
    """Just the rows of a view's first page, fetched every few seconds so new items appear."""
    now = utcnow()
    loaded = _load(now)
    return render_template(
        "agent/_rows.html", rows=loaded.page.rows, filters=loaded.filters, **_row_context(now)
    )
