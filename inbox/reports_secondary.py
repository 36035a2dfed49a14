"""Secondary suppression across the tables of one trend report page.

The tables of a page describe the same messages in different cuts, so their cells are tied by
sums a reader can use:

- the days (or weeks) of the volume add up to the period's total, and so do the previous
  period's; the languages add up to it, and so does the weekday × hour grid;
- a day's three sentiment cells add up to that day's volume;
- a weekday's 24 hours add up to the volume of the days that fall on that weekday (in ranges
  counted by day).

Period totals are taken as known to the reader (published elsewhere, or from another filter),
which is the cautious assumption. With the topic filter the volume counts that topic's
messages while sentiment, languages and hours count all of them; their links to the volume
then become sums known from elsewhere too.

`anonymizer.disclosure.suppress_secondary` then hides further cells until no hidden one can be
solved for. What is left open: the same cell compared across reports of overlapping ranges or
different filters; noise is the protection against that.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlmodel import Session

from anonymizer.disclosure import Cell, Protection, Relation, Shown, suppress_secondary
from anonymizer.report_queries import ReportFilter
from inbox.reports_tables import Table, all_tables

Key = tuple[str, int, int]


def _column(table: Table, column: int) -> tuple[Key, ...]:
    return tuple((table.name, row, column) for row in range(len(table.rows)))


def relations(tables: dict[str, Table], where: ReportFilter) -> list[Relation]:
    """The sums that tie the page's cells together."""
    volume, sentiment = tables["volume"], tables["sentiment"]
    found = [
        Relation(parts=_column(volume, 0)),
        Relation(parts=_column(volume, 1)),
        Relation(parts=_column(tables["languages"], 0)),
        Relation(parts=tuple(("hours", w, h) for w in range(7) for h in range(24))),
    ]
    linked = where.topic is None
    for row in range(len(sentiment.rows)):
        found.append(
            Relation(
                parts=tuple(("sentiment", row, column) for column in range(3)),
                whole=(("volume", row, 0),) if linked else (),
            )
        )
    by_day = all(row.label == "day" for row in volume.rows)
    weekdays: dict[int, list[Key]] = defaultdict(list)
    if linked and by_day:
        for index, bucket in enumerate(volume.rows):
            weekdays[date.fromisoformat(bucket.key).weekday()].append(("volume", index, 0))
    for weekday in range(7):
        found.append(
            Relation(
                parts=tuple(("hours", weekday, hour) for hour in range(24)),
                whole=tuple(weekdays.get(weekday, ())),
            )
        )
    return found


def protect_across(tables: dict[str, Table], where: ReportFilter, k: int) -> int:
    """Hide more cells across the page's tables, then redo their totals; how many were hidden."""
    names = ("volume", "sentiment", "languages", "hours")
    cells: dict[Key, Cell] = {}
    shown: dict[Key, Shown] = {}
    for name in names:
        for (row, column), cell in tables[name].true_counts.items():
            value = tables[name].rows[row].cells[column]
            assert isinstance(value, Shown)
            cells[(name, row, column)] = cell
            shown[(name, row, column)] = value
    hidden = suppress_secondary(relations=relations(tables, where), cells=cells, shown=shown, k=k)
    for name, row, column in hidden:  # type: ignore[misc]
        tables[name].rows[row].cells[column] = shown[(name, row, column)]
    for name in names:
        tables[name].add_totals()
    return len(hidden)


def report_tables(
    *, session: Session, where: ReportFilter, protection: Protection, report: str
) -> dict[str, Table]:
    """Every table of the report page, protected cell by cell and across tables."""
    tables = all_tables(session=session, where=where, protection=protection, report=report)
    protect_across(tables, where, protection.k)
    return tables
