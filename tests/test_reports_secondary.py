"""Secondary suppression: no hidden cell of a report page can be worked out from the others.

The attack here is written independently of `inbox.reports_secondary`: it lists the sums a
reader knows (the period's total, a day's volume as the sum of its sentiment cells, a weekday's
volume as the sum of its hours, the language split), substitutes every shown number, and asks
with exact fractions whether the equations pin a hidden cell down. It must succeed against the
tables before secondary suppression, or it would prove nothing.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import date, datetime, timedelta
from fractions import Fraction

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session

from anonymizer.disclosure import Cell, Protection, Relation, Shown, determined, suppress_secondary
from anonymizer.report_queries import ReportFilter
from anonymizer.rollups import refresh_days
from anonymizer.store import ResearchRecord
from inbox.models import Role
from inbox.reports_secondary import protect_across
from inbox.reports_tables import SENTIMENTS, Table, all_tables
from tests.conftest import login, make_user

K = 5
LANGUAGES = ("de", "en", "fr", "it")
Key = tuple[str, int, int]


def _rank(rows: list[list[Fraction]]) -> int:
    matrix = [row[:] for row in rows if any(row)]
    rank, columns = 0, len(matrix[0]) if matrix else 0
    for column in range(columns):
        pivot = next((r for r in range(rank, len(matrix)) if matrix[r][column] != 0), None)
        if pivot is None:
            continue
        matrix[rank], matrix[pivot] = matrix[pivot], matrix[rank]
        for r in range(len(matrix)):
            if r != rank and matrix[r][column] != 0:
                factor = matrix[r][column] / matrix[rank][column]
                matrix[r] = [a - factor * b for a, b in zip(matrix[r], matrix[rank], strict=True)]
        rank += 1
    return rank


def recoverable(equations: list[dict[Key, int]], hidden: list[Key]) -> list[Key]:
    """Hidden cells the equations determine: adding the cell's unit row keeps the rank."""
    rows = [[Fraction(eq.get(key, 0)) for key in hidden] for eq in equations]
    base = _rank(rows)
    found = []
    for index, key in enumerate(hidden):
        unit = [Fraction(int(i == index)) for i in range(len(hidden))]
        if _rank([*rows, unit]) == base:
            found.append(key)
    return found


def known_sums(tables: dict[str, Table], topic: bool) -> list[dict[Key, int]]:
    """What a reader knows: each equation as {cell: coefficient} summing to a known number."""
    volume = tables["volume"]
    days = len(volume.rows)
    equations: list[dict[Key, int]] = [
        {("volume", row, 0): 1 for row in range(days)},
        {("volume", row, 1): 1 for row in range(days)},
        {("languages", row, 0): 1 for row in range(len(tables["languages"].rows))},
        {("hours", w, h): 1 for w in range(7) for h in range(24)},
    ]
    for row in range(days):
        equation = {("sentiment", row, column): 1 for column in range(len(SENTIMENTS))}
        if not topic:
            equation[("volume", row, 0)] = -1
        equations.append(equation)
    for weekday in range(7):
        equation = {("hours", weekday, hour): 1 for hour in range(24)}
        if not topic and volume.rows[0].label == "day":
            for row, bucket in enumerate(volume.rows):
                if date.fromisoformat(bucket.key).weekday() == weekday:
                    equation[("volume", row, 0)] = -1
        equations.append(equation)
    return equations


def attack(tables: dict[str, Table], topic: bool = False) -> list[Key]:
    """The hidden cells a reader of the page can compute exactly."""
    hidden = [
        (name, r, c)
        for name in ("volume", "sentiment", "languages", "hours")
        for r, row in enumerate(tables[name].rows)
        for c, cell in enumerate(row.cells)
        if isinstance(cell, Shown) and cell.suppressed
    ]
    return recoverable(known_sums(tables, topic), hidden)


def seed_week(research: Session, rng: random.Random, first: date, days: int) -> None:
    """Random traffic: a few busy cells, many small ones, in four languages."""
    records = []
    for offset in range(days):
        day = datetime.combine(first + timedelta(days=offset), datetime.min.time())
        for _ in range(rng.randrange(3, 9)):
            hour = rng.choice((9, 10, 11, 14, 20, 23))
            language = rng.choices(LANGUAGES, (6, 3, 1, 1))[0]
            label = rng.choice(SENTIMENTS)
            authors = rng.choice((1, 2, 3, 6, 9))
            for n in range(authors + rng.randrange(3)):
                records.append(
                    ResearchRecord(
                        account_label="Quendelmarkt",
                        platform="demo",
                        channel_kind="comment",
                        language=language,
                        sentiment_label=label,
                        time_bucket=day + timedelta(hours=hour),
                        redacted_text="Paket kam nicht an",
                        author_pseudonym=f"{offset}-{hour}-{language}-{n % authors}",
                        topics=["delivery"],
                    )
                )
    research.add_all(records)
    research.commit()
    refresh_days(session=research, days={first + timedelta(days=n) for n in range(days)})
    research.commit()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("days", [7, 21, 45])
def test_no_hidden_cell_can_be_solved_for_across_the_tables(
    research: Session, seed: int, days: int
) -> None:
    rng = random.Random(seed)
    first = date(2026, 3, 2)
    seed_week(research, rng, first, days)
    where = ReportFilter(since=first, until=first + timedelta(days=days))
    protection = Protection(k=K)

    before = all_tables(session=research, where=where, protection=protection, report="t")
    # Without secondary suppression the attack works: otherwise this test could not fail.
    assert attack(before), "the random data should expose a hidden cell"

    tables = all_tables(session=research, where=where, protection=protection, report="t")
    added = protect_across(tables, where, K)
    assert added > 0
    assert attack(tables) == []
    # Secondary cells are marked, and totals still add up the shown cells only.
    secondary = [
        cell
        for table in tables.values()
        for row in table.rows
        for cell in row.cells
        if isinstance(cell, Shown) and cell.secondary
    ]
    assert len(secondary) == added
    for name in ("volume", "sentiment", "languages", "hours"):
        table = tables[name]
        for column, value in enumerate(table.totals):
            if value is not None:
                shown = [row.cells[column] for row in table.rows]
                assert value == sum(c.value or 0 for c in shown if isinstance(c, Shown))


def test_with_a_topic_filter_the_links_to_all_messages_count_as_known(research: Session) -> None:
    first = date(2026, 3, 2)
    seed_week(research, random.Random(5), first, 7)
    where = ReportFilter(since=first, until=first + timedelta(days=7), topic="delivery")
    tables = all_tables(session=research, where=where, protection=Protection(k=K), report="t")
    protect_across(tables, where, K)
    assert attack(tables, topic=True) == []


def test_a_known_total_never_leaves_a_lone_hidden_cell_or_a_small_hidden_sum() -> None:
    cells = {"a": Cell(3, 2), "b": Cell(40, 30), "c": Cell(1, 1), "d": Cell(2, 2), "e": Cell(9, 9)}
    shown = {key: Shown(None if c.authors < K else c.count) for key, c in cells.items()}
    # a, c, d hidden (3 + 1 + 2 = 6 ≥ 5): safe as is.
    assert (
        suppress_secondary(relations=[Relation(tuple(cells))], cells=cells, shown=shown, k=K) == []
    )

    cells = {"a": Cell(3, 2), "b": Cell(40, 30), "e": Cell(9, 9)}
    shown = {key: Shown(None if c.authors < K else c.count) for key, c in cells.items()}
    # Alone, a would be total - 49; the smallest shown cell, e, goes with it.
    assert suppress_secondary(
        relations=[Relation(tuple(cells))], cells=cells, shown=shown, k=K
    ) == ["e"]
    assert shown["e"] == Shown(None, secondary=True)
    assert shown["b"] == Shown(40)


def test_a_hidden_whole_comes_back_from_its_shown_parts_unless_a_part_is_hidden() -> None:
    # Day 1 is hidden; day 2 is hidden so that day 1 can't be subtracted from the period; but
    # day 2's sentiment cells are all shown, which would give day 2 and then day 1 back.
    cells = {
        "day1": Cell(4, 4),
        "day2": Cell(30, 20),
        "day3": Cell(50, 40),
        "neg2": Cell(10, 8),
        "neu2": Cell(12, 9),
        "pos2": Cell(8, 6),
    }
    shown = {key: Shown(None if c.authors < K else c.count) for key, c in cells.items()}
    relations = [
        Relation(("day1", "day2", "day3")),
        Relation(("neg2", "neu2", "pos2"), whole=("day2",)),
    ]
    assert determined(relations, {"day1"}) == {"day1"}
    suppress_secondary(relations=relations, cells=cells, shown=shown, k=K)
    hidden = {key for key, value in shown.items() if value.suppressed}
    assert {"day1", "day2"} <= hidden
    assert hidden & {"neg2", "neu2", "pos2"}
    assert determined(relations, hidden) == set()


def test_the_page_marks_secondary_cells_and_says_why(
    client: FlaskClient, session: Session, research: Session
) -> None:
    today = date.today()
    first = today - timedelta(days=7)
    seed_week(research, random.Random(2), first, 7)
    marketing = make_user(session, role=Role.marketing)
    assert login(client, marketing.email).status_code == 302

    body = client.get("/reports?days=7").get_data(as_text=True)
    csv_text = client.get("/reports?days=7&format=csv&table=hours").get_data(as_text=True)

    assert 'class="suppressed secondary"' in body and "×" in body
    assert "further numbers are hidden" in body
    assert any(cell == "hidden" for line in csv.reader(io.StringIO(csv_text)) for cell in line)
