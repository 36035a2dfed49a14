"""Marketing's trend reports, read from the research store's rollups only."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_babel import format_date, get_locale
from flask_babel import lazy_gettext as _l

from anonymizer import report_queries as queries
from anonymizer.disclosure import Shown
from anonymizer.report_queries import ReportFilter
from inbox import db
from inbox.auth import roles_required
from inbox.models import Role
from inbox.reports_charts import columns_chart, heat_chart, horizontal_chart, stacked_chart
from inbox.reports_kpis import ServiceSummary, service_summary
from inbox.reports_secondary import report_tables
from inbox.reports_tables import SENTIMENTS, Row, Table, report_privacy
from inbox.types import utcnow

bp = Blueprint("reports", __name__, url_prefix="/reports")
RANGES = (7, 30, 90)
LONGEST = 731
FILTERS = ("account_label", "platform", "channel_kind", "language", "topic")
SENTIMENT_LABELS = {
    "negative": _l("negative"),
    "neutral": _l("neutral"),
    "positive": _l("positive"),
}
LANGUAGE_LABELS = {"de": _l("German"), "en": _l("English")}


def language_name(code: str) -> str:
    """A language code's name in the reader's language (CLDR via Babel), else the code."""
    if code in LANGUAGE_LABELS:
        return str(LANGUAGE_LABELS[code])
    try:
        return str(get_locale().languages.get(code, code))
    except (AttributeError, ValueError):
        return code


@dataclass(frozen=True, slots=True)
class Choice:
    """The range and filters a reader picked, as the page echoes them."""

    days: int | None
    start: date
    end: date
    values: dict[str, str]


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def parse_range(args: Any, today: date) -> tuple[int | None, date, date]:
    """The range: a preset of days, or a custom one of up to two years (days is then None)."""
    start, end = _date(args.get("from")), _date(args.get("to"))
    if start and end and start <= end and (end - start).days < LONGEST and end <= today:
        return None, start, end
    days = args.get("days", type=int) or 30
    days = days if days in RANGES else 30
    return days, today - timedelta(days=days - 1), today


def parse_choice(args: Any, options: dict[str, list[str]], today: date) -> Choice:
    """The range and the filter values that occur in it (unknown values are ignored)."""
    days, start, end = parse_range(args, today)
    values = {name: args[name] for name in FILTERS if args.get(name) in options.get(name, ())}
    return Choice(days=days, start=start, end=end, values=values)


def _label(table: Table, index: int) -> str:
    row = table.rows[index]
    if table.name in ("volume", "sentiment", "service"):
        day = date.fromisoformat(row.key)
        return str(format_date(day, "medium"))
    if table.name == "hours":
        return str(format_date(date(2024, 1, 1) + timedelta(days=int(row.key)), "EEE"))
    if table.name == "languages":
        return language_name(row.key)
    return row.label


def service_table(summary: ServiceSummary, k: int) -> Table:
    """The service KPIs per day; a day's SLA share only from k decided conversations."""
    table = Table(name="service", columns=["opened", "answered", "within_sla", "closed"])
    for day in summary.days:
        share = f"{100 * day.within_sla / day.sla_decided:.0f} %" if day.sla_decided >= k else ""
        table.rows.append(
            Row(
                key=day.day.isoformat(),
                label="day",
                cells=[Shown(day.opened), Shown(day.answered), share, Shown(day.closed)],
            )
        )
    table.add_totals()
    return table


def _defused(text: str) -> str:
    # A spreadsheet runs cells that start like a formula; hashtags are anyone's words.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_cell(cell: Shown, k: int) -> str:
    if cell.secondary:
        return "hidden"
    return f"< {k}" if cell.value is None else str(cell.value)


def csv_response(table: Table, labels: list[str], k: int) -> Response:
    """One table as a CSV download, suppressed cells as "< k", formulas defused."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["label", *table.columns] + (["total"] if table.row_totals else [])
    writer.writerow(header + (["flag"] if table.name == "topics" else []))
    for row, label in zip(table.rows, labels, strict=True):
        key = row.key if table.name in ("volume", "sentiment", "service") else label
        cells = [_csv_cell(cell, k) if isinstance(cell, Shown) else cell for cell in row.cells]
        extra = [str(row.total)] if table.row_totals else []
        flag = [row.flag] if table.name == "topics" else []
        writer.writerow([_defused(value) for value in [key, *cells, *extra, *flag]])
    totals = ["" if value is None else str(value) for value in table.totals]
    writer.writerow(
        ["total of shown cells", *totals] + ([str(table.grand_total)] if table.row_totals else [])
    )
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="report-{table.name}.csv"'},
    )


@bp.get("")
@roles_required(Role.marketing, Role.admin)
def index() -> Any:
    """The trend report: volume, sentiment, topics, hashtags, keywords, languages and hours."""
    research = db.research_session()
    today = utcnow().date()
    _days, start, end = parse_range(request.args, today)
    # The previous period too, so a filter on something that has just stopped stays valid.
    options = queries.options(
        session=research,
        since=start - (end - start) - timedelta(days=1),
        until=end + timedelta(days=1),
    )
    choice = parse_choice(request.args, options, today)
    where = ReportFilter(
        since=choice.start,
        until=choice.end + timedelta(days=1),
        **{name: choice.values.get(name) for name in FILTERS},
    )
    protection = report_privacy(
        session=db.session(), secret=str(current_app.config["SECRET_KEY"]).encode()
    )
    signature = "|".join(f"{name}={choice.values.get(name, '')}" for name in FILTERS)
    tables = report_tables(session=research, where=where, protection=protection, report=signature)
    service = service_summary(
        session=db.session(),
        since=where.since,
        until=where.until,
        now=utcnow(),
        account_label=where.account_label,
        platform=where.platform,
        channel_kind=where.channel_kind,
    )
    tables["service"] = service_table(service, protection.k)
    labels = {
        name: [_label(table, i) for i in range(len(table.rows))] for name, table in tables.items()
    }
    if request.args.get("format") == "csv":
        name = request.args.get("table", "")
        if name not in tables:
            abort(404)
        return csv_response(tables[name], labels[name], protection.k)
    k = protection.k
    charts = {
        "volume": columns_chart(tables["volume"], labels["volume"], k),
        "sentiment": stacked_chart(
            tables["sentiment"],
            labels["sentiment"],
            [(s, str(SENTIMENT_LABELS[s])) for s in SENTIMENTS],
        ),
        "topics": horizontal_chart(tables["topics"], labels["topics"], k),
        "hashtags": horizontal_chart(tables["hashtags"], labels["hashtags"], k),
        "keywords": horizontal_chart(tables["keywords"], labels["keywords"], k),
        "languages": horizontal_chart(tables["languages"], labels["languages"], k),
        "hours": heat_chart(tables["hours"], labels["hours"], k),
    }
    shown_topics = [
        row.key
        for row in tables["topics"].rows
        if isinstance(row.cells[0], Shown) and row.cells[0].value
    ][:5]
    examples = {
        topic: queries.examples(session=research, where=where, topic=topic)
        for topic in shown_topics
    }
    return render_template(
        "reports/index.html",
        tables=tables,
        labels=labels,
        charts=charts,
        examples=examples,
        options=options,
        choice=choice,
        ranges=RANGES,
        protection=protection,
        sentiments=SENTIMENTS,
        sentiment_labels=SENTIMENT_LABELS,
        language_name=language_name,
        has_data=any(
            isinstance(row.cells[0], Shown) and (row.cells[0].value or row.cells[0].suppressed)
            for row in tables["volume"].rows
        ),
        service=service,
    )
