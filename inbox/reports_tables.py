"""The trend report's tables: query results protected cell by cell, with totals of shown cells.

Tables keep the true counts of their cells beside the shown ones (never rendered), so that
`inbox.reports_secondary` can hide more cells across the tables of a page before the totals
are added up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlmodel import Session

from anonymizer import report_queries as queries
from anonymizer.disclosure import Cell, Protection, Shown, merge, protect, total
from anonymizer.report_queries import ReportFilter
from inbox import settings

SENTIMENTS = ("negative", "neutral", "positive")
TOP_HASHTAGS = 20
# A topic is rising when it grew by half and by at least this many messages.
RISING_MIN = 3


def report_privacy(*, session: Session, secret: bytes) -> Protection:
    """k and epsilon as admins set them (defaults 5 and no noise), with the noise secret."""
    k, epsilon = settings.report_privacy(session=session)
    return Protection(k=k, epsilon=epsilon, secret=secret)


@dataclass
class Row:
    """One table row: a label, shown cells (or plain text), and the row total of shown cells."""

    key: str
    label: str
    cells: list[Shown | str]
    total: int | None = None
    flag: str = ""


@dataclass
class Table:
    """A report table with its column totals, computed from shown cells only."""

    name: str
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    totals: list[int | None] = field(default_factory=list)
    row_totals: bool = False
    # The true counts behind the shown cells, by (row, column), for secondary suppression.
    # Never rendered: templates and CSV read rows and totals only.
    true_counts: dict[tuple[int, int], Cell] = field(default_factory=dict, repr=False)

    def add_totals(self) -> None:
        """Column totals (and the grand total) as sums of shown cells, never of true counts."""
        self.totals = []
        for index in range(len(self.columns)):
            shown = [row.cells[index] for row in self.rows]
            numeric = [cell for cell in shown if isinstance(cell, Shown)]
            self.totals.append(total(numeric) if numeric else None)
        if self.row_totals:
            for row in self.rows:
                row.total = total(cell for cell in row.cells if isinstance(cell, Shown))

    @property
    def grand_total(self) -> int:
        """The sum of every shown cell."""
        return sum(value for value in self.totals if value is not None)


def _shown(cells: dict[str, Cell], protection: Protection, report: str) -> dict[str, Shown]:
    return {
        key: protect(cell=cell, protection=protection, report=report, key=key)
        for key, cell in cells.items()
    }


def _buckets(where: ReportFilter) -> tuple[str, list[date]]:
    if where.days <= 31:
        return "day", [where.since + timedelta(days=n) for n in range(where.days)]
    weeks = sorted({queries.week_of(where.since + timedelta(days=n)) for n in range(where.days)})
    return "week", weeks


def _bucketed(unit: str, cells: dict[date, Cell]) -> dict[date, Cell]:
    return queries.by_week(cells) if unit == "week" else cells


def volume_table(
    *, session: Session, where: ReportFilter, protection: Protection, report: str
) -> Table:
    """Messages per day or week, next to the same bucket of the previous period."""
    unit, buckets = _buckets(where)
    now = _bucketed(unit, queries.volume(session=session, where=where))
    before_where = where.previous()
    before = _bucketed(unit, queries.volume(session=session, where=before_where))
    offset = timedelta(days=where.days)
    table = Table(name="volume", columns=["current", "previous"])
    for index, bucket in enumerate(buckets):
        earlier = queries.week_of(bucket - offset) if unit == "week" else bucket - offset
        pair = (now.get(bucket, Cell(0, 0)), before.get(earlier, Cell(0, 0)))
        keys = (bucket, earlier)
        cells: list[Shown | str] = []
        for column, (cell, key) in enumerate(zip(pair, keys, strict=True)):
            table.true_counts[(index, column)] = cell
            cells.append(
                protect(
                    cell=cell, protection=protection, report=report, key=("volume", key.isoformat())
                )
            )
        table.rows.append(Row(key=bucket.isoformat(), label=unit, cells=cells))
    table.add_totals()
    return table


def sentiment_table(
    *, session: Session, where: ReportFilter, protection: Protection, report: str
) -> Table:
    """Messages per day or week and sentiment, with the average score where it may be shown."""
    unit, buckets = _buckets(where)
    found = queries.sentiment(session=session, where=where)
    grouped: dict[tuple[date, str], list[Cell]] = {}
    scores: dict[date, float] = {}
    for (day, label), cell in found.cells.items():
        bucket = queries.week_of(day) if unit == "week" else day
        grouped.setdefault((bucket, label), []).append(cell)
    for day, score in found.score_sums.items():
        bucket = queries.week_of(day) if unit == "week" else day
        scores[bucket] = scores.get(bucket, 0.0) + score
    table = Table(name="sentiment", columns=[*SENTIMENTS, "average"], row_totals=True)
    for index, bucket in enumerate(buckets):
        cells = [merge(grouped.get((bucket, label), [])) for label in SENTIMENTS]
        table.true_counts.update({(index, column): cell for column, cell in enumerate(cells)})
        shown: list[Shown | str] = [
            protect(cell=cell, protection=protection, report=report, key=(bucket.isoformat(), lab))
            for cell, lab in zip(cells, SENTIMENTS, strict=True)
        ]
        whole = merge(cells)
        # An average is an exact statistic: shown only for a cell of k authors and without noise.
        average = ""
        if whole.count and whole.authors >= protection.k and protection.epsilon is None:
            average = f"{scores.get(bucket, 0.0) / whole.count:+.2f}"
        table.rows.append(Row(key=bucket.isoformat(), label=unit, cells=[*shown, average]))
    table.add_totals()
    return table


def topic_table(
    *, session: Session, where: ReportFilter, protection: Protection, report: str
) -> Table:
    """Messages per topic in this and the previous period; rising topics flagged."""
    now = _shown(queries.topics(session=session, where=where), protection, report + "|now")
    before = _shown(
        queries.topics(session=session, where=where.previous()), protection, report + "|before"
    )
    table = Table(name="topics", columns=["current", "previous"])
    order = sorted(now, key=lambda topic: (-(now[topic].value or 0), topic))
    for topic in order:
        current, previous = now[topic], before.get(topic, Shown(0))
        rising = (
            current.value is not None
            and previous.value is not None
            and current.value >= previous.value * 1.5
            and current.value - previous.value >= RISING_MIN
        )
        table.rows.append(
            Row(key=topic, label=topic, cells=[current, previous], flag="rising" if rising else "")
        )
    table.add_totals()
    return table


def labelled_table(
    *,
    name: str,
    cells: dict[str, Cell],
    protection: Protection,
    report: str,
    hide_suppressed: bool,
    limit: int | None = None,
) -> Table:
    """One count per label, largest first; suppressed ones left out when a label may identify."""
    shown = _shown(cells, protection, report)
    keys = [key for key in shown if not (hide_suppressed and shown[key].suppressed)]
    keys.sort(key=lambda key: (-(shown[key].value or 0), key))
    table = Table(name=name, columns=["count"])
    for key in keys[:limit]:
        table.true_counts[(len(table.rows), 0)] = cells[key]
        table.rows.append(Row(key=key, label=key, cells=[shown[key]]))
    table.add_totals()
    return table


def hour_table(
    *, session: Session, where: ReportFilter, protection: Protection, report: str
) -> Table:
    """Messages per weekday (rows) and UTC hour (columns), with row and column totals."""
    found = queries.hour_of_week(session=session, where=where)
    table = Table(name="hours", columns=[f"{hour:02d}" for hour in range(24)], row_totals=True)
    table.true_counts = {
        (weekday, hour): found.get((weekday, hour), Cell(0, 0))
        for weekday in range(7)
        for hour in range(24)
    }
    for weekday in range(7):
        cells: list[Shown | str] = [
            protect(
                cell=found.get((weekday, hour), Cell(0, 0)),
                protection=protection,
                report=report,
                key=(weekday, hour),
            )
            for hour in range(24)
        ]
        table.rows.append(Row(key=str(weekday), label="weekday", cells=cells))
    table.add_totals()
    return table


def all_tables(
    *, session: Session, where: ReportFilter, protection: Protection, report: str
) -> dict[str, Table]:
    """Every table of the report, by name.

    `report` names the filters, not the range: a day's cell then gets the same noise in every
    range it shows up in. Cells spanning the whole range also carry the range in their seed.
    """
    span = f"{report}|{where.since.isoformat()}..{where.until.isoformat()}"
    arguments = {"session": session, "where": where, "protection": protection}
    tables = [
        volume_table(**arguments, report=report + "|volume"),  # type: ignore[arg-type]
        sentiment_table(**arguments, report=report + "|sentiment"),  # type: ignore[arg-type]
        topic_table(**arguments, report=span + "|topics"),  # type: ignore[arg-type]
        labelled_table(
            name="hashtags",
            cells=queries.hashtags(session=session, where=where),
            protection=protection,
            report=span + "|hashtags",
            hide_suppressed=True,
            limit=TOP_HASHTAGS,
        ),
        # Keywords may be names the detectors missed: only those of k authors are listed.
        labelled_table(
            name="keywords",
            cells=queries.keywords(session=session, where=where),
            protection=protection,
            report=span + "|keywords",
            hide_suppressed=True,
            limit=TOP_HASHTAGS,
        ),
        labelled_table(
            name="languages",
            cells=queries.languages(session=session, where=where),
            protection=protection,
            report=span + "|languages",
            hide_suppressed=False,
        ),
        hour_table(**arguments, report=span + "|hours"),  # type: ignore[arg-type]
    ]
    return {table.name: table for table in tables}


def shown_values(rows: Sequence[Row], index: int) -> list[int | None]:
    """One column's shown values (None where suppressed or not a count)."""
    return [row.cells[index].value if isinstance(row.cells[index], Shown) else None for row in rows]  # type: ignore[union-attr]
