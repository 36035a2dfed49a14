"""Geometry of the report's SVG charts; templates draw them, Jinja escapes every label."""

from __future__ import annotations

from dataclasses import dataclass

from anonymizer.disclosure import Shown
from inbox.reports_tables import Table

WIDTH = 720
BAR_AREA = 180
LABEL_WIDTH = 200
ROW_HEIGHT = 22


@dataclass(frozen=True, slots=True)
class Bar:
    """One rectangle with its label and the text a reader sees for its value."""

    x: float
    y: float
    width: float
    height: float
    label: str
    text: str
    css: str


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG drawing: its size and its bars."""

    width: int
    height: int
    bars: list[Bar]


def _text(cell: Shown | str, k: int) -> str:
    if isinstance(cell, str):
        return cell
    if cell.secondary:
        return "×"
    return f"< {k}" if cell.value is None else str(cell.value)


def _value(cell: Shown | str) -> int:
    return cell.value or 0 if isinstance(cell, Shown) else 0


def columns_chart(table: Table, labels: list[str], k: int) -> Chart:
    """Vertical bars per row: this period filled, the previous period as a thin bar beside it."""
    peak = max((_value(cell) for row in table.rows for cell in row.cells[:2]), default=0) or 1
    slot = WIDTH / max(1, len(table.rows))
    bars: list[Bar] = []
    for index, (row, label) in enumerate(zip(table.rows, labels, strict=True)):
        for series, css, share in ((0, "bar", 0.6), (1, "bar-previous", 0.2)):
            cell = row.cells[series]
            height = BAR_AREA * _value(cell) / peak
            width = slot * share
            x = index * slot + (0 if series == 0 else slot * 0.62)
            suppressed = isinstance(cell, Shown) and cell.suppressed
            bars.append(
                Bar(
                    x=round(x, 1),
                    y=round(BAR_AREA - height, 1),
                    width=round(width, 1),
                    height=round(height, 1),
                    label=label,
                    text=_text(cell, k),
                    css=css + (" suppressed" if suppressed else ""),
                )
            )
    return Chart(width=WIDTH, height=BAR_AREA + 4, bars=bars)


def stacked_chart(table: Table, labels: list[str], series: list[tuple[str, str]]) -> Chart:
    """One 100 % column per row, split into the shown shares of each series."""
    slot = WIDTH / max(1, len(table.rows))
    bars: list[Bar] = []
    for index, (row, label) in enumerate(zip(table.rows, labels, strict=True)):
        values = [_value(cell) for cell in row.cells[: len(series)]]
        whole = sum(values)
        top = 0.0
        for (key, name), value in zip(series, values, strict=True):
            if not whole or not value:
                continue
            height = BAR_AREA * value / whole
            bars.append(
                Bar(
                    x=round(index * slot, 1),
                    y=round(top, 1),
                    width=round(slot * 0.8, 1),
                    height=round(height, 1),
                    label=label,
                    text=f"{name}: {round(100 * value / whole)} %",
                    css=f"share-{key}",
                )
            )
            top += height
    return Chart(width=WIDTH, height=BAR_AREA + 4, bars=bars)


def horizontal_chart(table: Table, labels: list[str], k: int) -> Chart:
    """One horizontal bar per row, labels to the left."""
    peak = max((_value(row.cells[0]) for row in table.rows), default=0) or 1
    bars: list[Bar] = []
    for index, (row, label) in enumerate(zip(table.rows, labels, strict=True)):
        cell = row.cells[0]
        suppressed = isinstance(cell, Shown) and cell.suppressed
        bars.append(
            Bar(
                x=LABEL_WIDTH,
                y=index * ROW_HEIGHT,
                width=round((WIDTH - LABEL_WIDTH - 60) * _value(cell) / peak, 1),
                height=ROW_HEIGHT - 6,
                label=label,
                text=_text(cell, k),
                css=("bar-rising " if row.flag else "bar ") + ("suppressed" if suppressed else ""),
            )
        )
    return Chart(width=WIDTH, height=max(1, len(bars)) * ROW_HEIGHT, bars=bars)


def heat_chart(table: Table, labels: list[str], k: int) -> Chart:
    """A weekday by hour grid; darker cells had more messages."""
    peak = max((_value(cell) for row in table.rows for cell in row.cells), default=0) or 1
    cell_width = (WIDTH - 60) / 24
    bars: list[Bar] = []
    for index, (row, label) in enumerate(zip(table.rows, labels, strict=True)):
        for hour, cell in enumerate(row.cells):
            suppressed = isinstance(cell, Shown) and cell.suppressed
            level = 0 if suppressed else min(4, -(-4 * _value(cell) // peak))
            bars.append(
                Bar(
                    x=round(60 + hour * cell_width, 1),
                    y=index * ROW_HEIGHT,
                    width=round(cell_width - 2, 1),
                    height=ROW_HEIGHT - 2,
                    label=f"{label} {hour:02d}:00",
                    text=_text(cell, k),
                    css="suppressed" if suppressed else f"heat-{level}",
                )
            )
    return Chart(width=WIDTH, height=7 * ROW_HEIGHT + 16, bars=bars)
